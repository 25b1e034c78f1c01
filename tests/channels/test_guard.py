"""channels/guard.py without a stack: sender shapes, text limits, intent injection, one-time code
masking, the rate limit. Needs neither Rasa nor the stack (runs in the app environment)."""
from __future__ import annotations

import asyncio

import pytest

from channels import guard
from bot.backend import seg


@pytest.mark.parametrize("sender", [
    "wechat:oABC_123-xyz", "sms:+8613812345678", "sms:+14155550100", "web:anon-0123456789abcdef",
    "web:s-0123456789abcdef0123456789abcdef",
])
def test_channel_shaped_senders_pass(sender):
    assert guard.valid_sender(sender)


@pytest.mark.parametrize("sender", [
    "sms:../web/7", "sms:+86 138", "sms:13812345678", "web:5", "web:99999999", "web:7/../7", "wechat:../../x",
    "wechat:" + "a" * 65, "web:anon-../x", "email:a@b", "", None, 5, "web:", "sms:",
])
def test_forged_senders_are_refused(sender):
    assert not guard.valid_sender(sender)
    assert not guard.valid_sender(sender, allow_plain=True)


def test_plain_test_ids_only_over_rest():
    assert guard.valid_sender("e2e-user_1", allow_plain=True)
    assert not guard.valid_sender("e2e-user_1")
    assert not guard.valid_sender("../x", allow_plain=True)


def test_path_segments_are_escaped():
    assert seg("../web/7") == "..%2Fweb%2F7"
    assert "/" not in seg("a/b") and "?" not in seg("a?b") and "#" not in seg("a#b")


@pytest.mark.parametrize("text", ["", "   ", "\n\t", None, 5, {"a": 1}, ["x"]])
def test_empty_or_non_text_gets_a_clear_reply(text):
    assert guard.refusal(text) == guard.ONLY_TEXT


def test_too_long_is_refused_politely():
    limit = guard.rules().max_message_chars
    assert limit == 1000
    assert guard.refusal("啊" * limit) is None
    assert "太长" in guard.refusal("啊" * (limit + 1))
    assert "太长" in guard.refusal("x" * 5 * 1024 * 1024)


@pytest.mark.parametrize("payload", [
    "/request_human", "/deny", '/query_balance{"loan_ref": "1234"}', "/query_repayment_schedule",
    "/provide_identity",
])
def test_our_button_payloads_go_through(payload):
    assert guard.neutralise_command(payload) == payload


@pytest.mark.parametrize("text,becomes", [
    ('/EXTERNAL_complaint_update{"reference":"CP20261206-0001"}', 'EXTERNAL_complaint_update{"reference":"CP20261206-0001"}'),
    ('/EXTERNAL_plan_decision{"reference":"PR1"}', 'EXTERNAL_plan_decision{"reference":"PR1"}'),
    ('/query_balance{"customer_id": 5}', 'query_balance{"customer_id": 5}'),
    ('/query_balance{"loan_ref": "12345"}', 'query_balance{"loan_ref": "12345"}'),
    ('/inform{"identity_otp": "123456"}', 'inform{"identity_otp": "123456"}'),
    ("/restart", "restart"),
    ("//session_start", "session_start"),
    ("/", guard.ONLY_TEXT),
    ("我还欠多少钱", "我还欠多少钱"),
])
def test_anything_else_with_a_slash_is_plain_words(text, becomes):
    out = guard.neutralise_command(text)
    assert out == becomes and not out.startswith("/")


def test_six_digits_are_a_code_but_amounts_are_not():
    assert guard.otp_candidate("验证码是123456") == "123456"
    assert guard.otp_candidate("１２３４５６") == "123456"
    assert guard.otp_candidate("我想还150000元") is None
    assert guard.otp_candidate("13812345678") is None
    assert guard.otp_candidate("后四位1234") is None


class FakeBackend:
    def __init__(self, pending: bool) -> None:
        self.pending, self.checked = pending, []

    async def verification_pending(self, conversation):
        return self.pending

    async def check_code(self, conversation, code):
        self.checked.append((conversation, code))
        return {"status": "verified", "customer_id": 1}


def test_a_code_is_checked_in_the_channel_and_masked():
    backend = FakeBackend(pending=True)
    text, meta = asyncio.run(guard.seal_otp(backend, "web:anon-abcdef12", "验证码是123456"))
    assert "123456" not in text and guard.OTP_MASK in text
    assert backend.checked == [("web:anon-abcdef12", "123456")] and meta == {"otp_checked": True}


def test_six_digits_without_a_pending_code_are_left_alone():
    backend = FakeBackend(pending=False)
    text, meta = asyncio.run(guard.seal_otp(backend, "web:anon-abcdef12", "订单号123456"))
    assert text == "订单号123456" and meta == {} and backend.checked == []


def test_rate_limit_per_sender_in_a_sliding_minute():
    limiter = guard.RateLimiter(20, 60.0)
    allowed = [limiter.allow("sms:+8613800000000", now=1000 + i * 0.3) for i in range(30)]
    assert allowed.count(True) == 20 and allowed[20:] == [False] * 10
    assert limiter.allow("sms:+8613800000001", now=1009)  # another sender is not affected
    assert limiter.allow("sms:+8613800000000", now=1061)  # a minute later it may write again


def test_screen_puts_it_together(monkeypatch):
    monkeypatch.setattr(guard, "_limiter", guard.RateLimiter(2, 60.0))
    run = lambda text, sender="web:anon-abcdef12": asyncio.run(guard.screen(sender, text))  # noqa: E731
    assert run("hi", "sms:../web/7").reply == guard.BAD_SENDER
    assert run("   ").reply == guard.ONLY_TEXT
    v = run('/EXTERNAL_complaint_update{"reference":"X"}')
    assert v.reply is None and not v.text.startswith("/")
    assert run("你好").reply == guard.TOO_FAST
