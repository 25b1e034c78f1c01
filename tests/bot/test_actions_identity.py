"""The identity form, the answer after it, session start and the unsubscribe, run against tracker
dumps and a fake backend (actions/verification.py, actions/session.py, actions/service.py)."""
from __future__ import annotations

import pytest

pytest.importorskip("rasa_sdk")

from rasa_sdk.events import ActionExecuted, ConversationPaused, SessionStarted, SlotSet  # noqa: E402

from actions.service import ActionUnsubscribe  # noqa: E402
from actions.session import ActionSessionStart  # noqa: E402
from actions.verification import ActionAfterVerification, ValidateIdentityForm  # noqa: E402
from bot.backend import BackendError  # noqa: E402
from tests.bot.actions_support import (  # noqa: E402
    DOWN,
    FakeBackend,
    backend_data,
    run,
    slots,
    texts,
    tracker,
)

DB = backend_data()
OPENID = "oUser_7xyzABC123"
FORM_DOMAIN = {"forms": {"identity_form": {"required_slots": ["identity_phone", "identity_id_last4", "identity_otp"]}},
               "slots": {}}


def test_phone_and_id_send_a_code():
    fake = FakeBackend(start_verification={"status": "sent", "phone_masked": "138****0001"})
    events, d = run(ValidateIdentityForm(), tracker("tracker_wechat_identity_form"), fake, FORM_DOMAIN)
    assert texts(d) == ["验证码已发送至 138****0001，5分钟内有效。"]
    assert events == [SlotSet("identity_outcome", "sent"), SlotSet("identity_otp", None)]
    assert fake.calls == [("start_verification", f"wechat:{OPENID}", "13800000001", "123X")]


def test_phone_and_id_that_do_not_match_are_asked_again():
    fake = FakeBackend(start_verification={"status": "mismatch"})
    events, d = run(ValidateIdentityForm(), tracker("tracker_wechat_identity_form"), fake, FORM_DOMAIN)
    assert texts(d) == ["手机号或身份证后四位与我们的记录不一致，请重新输入登记的手机号。"]
    assert events == [SlotSet("identity_phone", None), SlotSet("identity_id_last4", None),
                      SlotSet("identity_outcome", None)]


def test_backend_down_in_the_form_apologises_and_stops_it():
    fake = FakeBackend(start_verification=DOWN)
    events, d = run(ValidateIdentityForm(), tracker("tracker_wechat_identity_form"), fake, FORM_DOMAIN)
    assert texts(d) == ["系统暂时繁忙，请稍后再试。"]
    assert events == [SlotSet("identity_outcome", "locked")]


def test_a_refusal_in_the_form_is_told_and_the_form_starts_over():
    refused = BackendError(429, "too_many_codes", "验证码发送太频繁，请10分钟后再试。")
    fake = FakeBackend(start_verification=refused)
    events, d = run(ValidateIdentityForm(), tracker("tracker_wechat_identity_form"), fake, FORM_DOMAIN)
    assert texts(d) == ["验证码发送太频繁，请10分钟后再试。"]
    assert events == [SlotSet(s, None) for s in ("identity_phone", "identity_id_last4", "identity_otp",
                                                 "identity_outcome")]


def test_a_typed_code_is_checked_with_the_backend():
    fake = FakeBackend(check_code={"status": "verified", "customer_id": 7})
    t = tracker("tracker_wechat_identity_form", slots={"identity_otp": "482913", "identity_outcome": "sent",
                                                       "requested_slot": "identity_otp"})
    events, d = run(ValidateIdentityForm(), t, fake, FORM_DOMAIN)
    assert texts(d) == []
    assert events == [SlotSet("verified", True), SlotSet("customer_id", 7), SlotSet("identity_outcome", "verified"),
                      SlotSet("identity_otp", None)]
    assert fake.calls == [("check_code", f"wechat:{OPENID}", "482913")]


def test_after_verification_wechat_binds_and_answers_the_question():
    fake = FakeBackend(bind=DB["identity_wechat"], identity=DB["identity_wechat"], loans=[DB["loan_active"]])
    t = tracker("tracker_wechat_identity_form", slots={"verified": True, "customer_id": 7, "identity_outcome": "verified"})
    events, d = run(ActionAfterVerification(), t, fake)
    assert texts(d) == [
        "身份验证成功。", "已为您绑定微信账户，以后在公众号内可直接查询。",
        "您的个人消费贷（尾号1234）剩余应还 ¥8,120.50（本金 ¥8,000.00、利息 ¥120.50）。下一期 12月15日（周二） 到期，应还 ¥1,395.20。"]
    assert events == [SlotSet(s, None) for s in ("identity_phone", "identity_id_last4", "identity_otp",
                                                 "identity_outcome")] + [
        SlotSet("pending_action", None), SlotSet("workflow_next", "done"), SlotSet("loan_ref", "1234")]
    assert fake.calls == [("bind", "wechat", OPENID, 7), ("identity", "wechat", OPENID), ("loans", 7)]


def test_a_failed_bind_still_answers():
    fake = FakeBackend(bind=DOWN, identity=DB["identity_wechat"], loans=[DB["loan_active"]])
    t = tracker("tracker_wechat_identity_form", slots={"verified": True, "customer_id": 7})
    _, d = run(ActionAfterVerification(), t, fake)
    assert texts(d)[0] == "身份验证成功。" and "已为您绑定微信账户，以后在公众号内可直接查询。" not in texts(d)
    assert texts(d)[1].startswith("您的个人消费贷（尾号1234）剩余应还 ¥8,120.50")


def test_session_start_takes_verification_from_the_channel_identity():
    fake = FakeBackend(identity=DB["identity_web"], record_session={}, current_handoff=None)
    events, d = run(ActionSessionStart(), tracker("tracker_web_signed_in"), fake)
    assert d.messages == []
    assert events == [SessionStarted(), SlotSet("verified", True), SlotSet("customer_id", 7),
                      SlotSet("verified", True), SlotSet("customer_id", 7), ActionExecuted("action_listen")]
    conversation = "web:s-7f3c9a1e5b2d4c6e8a0b"
    assert fake.calls == [("identity", "web", "s-7f3c9a1e5b2d4c6e8a0b"), ("record_session", conversation, "web", 7),
                          ("current_handoff", conversation)]


def test_session_start_stays_paused_while_staff_have_the_case():
    fake = FakeBackend(identity=DB["identity_web"], record_session={}, current_handoff=DB["handoff_case"])
    events, _ = run(ActionSessionStart(), tracker("tracker_web_signed_in"), fake)
    assert events[-1] == ConversationPaused()


def test_session_start_with_the_backend_down_verifies_no_one():
    fake = FakeBackend(identity=DOWN, record_session=DOWN, current_handoff=DOWN)
    events, d = run(ActionSessionStart(), tracker("tracker_web_signed_in"), fake)
    assert d.messages == []
    assert slots(events) == {"verified": False, "customer_id": None}
    assert ConversationPaused() not in events


def test_unsubscribe_turns_reminders_off_for_the_channels_customer():
    fake = FakeBackend(identity=DB["identity_web"], unsubscribe={})
    events, d = run(ActionUnsubscribe(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == ["已为您退订还款提醒和营销消息（合同约定必须告知的重要通知仍会发送），如需恢复，回复「恢复提醒」即可。"]
    assert events == []
    assert fake.calls == [("identity", "web", "s-7f3c9a1e5b2d4c6e8a0b"), ("unsubscribe", 7)]
