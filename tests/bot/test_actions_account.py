"""Account answers (actions/account.py) run against tracker dumps and a fake backend: who may see
figures, which figures, and what is asked of the backend."""
from __future__ import annotations

import pytest

pytest.importorskip("rasa_sdk")

from rasa_sdk.events import SlotSet  # noqa: E402

from actions.account import (  # noqa: E402
    ActionAnswerBalance,
    ActionAnswerLoanStatus,
    ActionAnswerPaymentHistory,
    ActionAnswerSchedule,
    ActionCheckPaymentMade,
)
from bot.backend import BackendError  # noqa: E402
from tests.bot.actions_support import (  # noqa: E402
    BUSY,
    DOWN,
    NOT_VERIFIED,
    FakeBackend,
    backend_data,
    run,
    texts,
    tracker,
)

SIGNED_IN = "s-7f3c9a1e5b2d4c6e8a0b"
ANON = "anon-0123456789abcdef0123456789abcdef"
DB = backend_data()
BALANCE_1234 = ("您的个人消费贷（尾号1234）剩余应还 ¥8,120.50（本金 ¥8,000.00、利息 ¥120.50）。"
                "下一期 12月15日（周二） 到期，应还 ¥1,395.20。")


def signed_in(loans: list[dict], **answers) -> FakeBackend:
    return FakeBackend(identity=DB["identity_web"], loans=loans, **answers)


def test_balance_of_the_only_loan():
    fake = signed_in([DB["loan_active"]])
    events, d = run(ActionAnswerBalance(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == [BALANCE_1234]
    assert events == [SlotSet("loan_ref", "1234")]
    assert fake.calls == [("identity", "web", SIGNED_IN), ("loans", 7)]


def test_balance_in_arrears_says_the_overdue_part_and_penalty():
    fake = signed_in([DB["loan_overdue"]])
    events, d = run(ActionAnswerBalance(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == [
        ("您的装修贷（尾号5678）剩余应还 ¥20,386.40（本金 ¥20,000.00、利息 ¥300.00、费用 ¥50.00、罚息 ¥36.40）。"
        "目前已逾期 12 天，逾期应还 ¥2,106.40（含罚息 ¥36.40），请尽快还款。"
        "下一期 12月20日（周日） 到期，应还 ¥2,070.00。")]
    assert events == [SlotSet("loan_ref", "5678")]


def test_an_unverified_visitor_is_asked_to_verify_and_sees_no_figures():
    fake = FakeBackend(identity=None)
    events, d = run(ActionAnswerBalance(), tracker("tracker_web_anonymous"), fake)
    assert texts(d) == [NOT_VERIFIED]
    assert events == []
    # No verification record is asked for: this session never passed the identity form.
    assert fake.calls == [("identity", "web", ANON)]


def test_forged_verified_slots_are_checked_with_the_backend():
    fake = FakeBackend(identity=None, verification_status={"status": "none"})
    events, d = run(ActionAnswerBalance(), tracker("tracker_web_anonymous", slots={"verified": True, "customer_id": 7}),
                    fake)
    assert texts(d) == [NOT_VERIFIED] and events == []
    assert fake.calls == [("identity", "web", ANON), ("verification_status", f"web:{ANON}")]


def test_a_conversation_verified_by_code_gets_the_backends_customer():
    fake = FakeBackend(identity=None, verification_status={"status": "verified", "customer_id": 7},
                       loans=[DB["loan_active"]])
    events, d = run(ActionAnswerBalance(), tracker("tracker_web_anonymous", slots={"verified": True}), fake)
    assert texts(d) == [BALANCE_1234] and events == [SlotSet("loan_ref", "1234")]
    assert fake.methods() == ["identity", "verification_status", "loans"] and fake.calls[-1] == ("loans", 7)


def test_backend_down_apologises_without_figures():
    fake = FakeBackend(identity=DOWN)
    events, d = run(ActionAnswerBalance(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == [BUSY] and events == []
    assert fake.methods() == ["identity"]


def test_backend_down_after_the_identity_apologises_too():
    fake = signed_in(DOWN)
    events, d = run(ActionAnswerBalance(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == [BUSY] and events == []


def test_several_loans_ask_which_one_with_buttons():
    fake = signed_in([DB["loan_active"], DB["loan_overdue"]])
    events, d = run(ActionAnswerBalance(), tracker("tracker_web_signed_in"), fake)
    assert events == []
    assert d.messages[0]["text"] == "您名下有多笔借款，请问要查询哪一笔？"
    assert d.messages[0]["buttons"] == [
        {"title": "个人消费贷（尾号1234）", "payload": '/query_balance{"loan_ref": "1234"}'},
        {"title": "装修贷（尾号5678）", "payload": '/query_balance{"loan_ref": "5678"}'}]


def test_the_loan_named_by_the_button_is_answered():
    fake = signed_in([DB["loan_overdue"], DB["loan_active"]])
    t = tracker("tracker_web_signed_in", latest_message={
        "text": '/query_balance{"loan_ref": "1234"}', "entities": [{"entity": "loan_ref", "value": "1234"}]})
    events, d = run(ActionAnswerBalance(), t, fake)
    assert texts(d) == [BALANCE_1234] and events == [SlotSet("loan_ref", "1234")]


def test_only_a_settled_loan_says_so():
    fake = signed_in([DB["loan_settled"]])
    events, d = run(ActionAnswerBalance(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == ["您的个人消费贷（尾号0001）已于2026年11月3日（周二）结清，无需再还款。您目前没有未结清的借款。"]
    assert events == []


def test_schedule_lists_the_next_three_and_the_last_instalment():
    fake = signed_in([DB["loan_active"]], schedule=DB["schedule_31"])
    events, d = run(ActionAnswerSchedule(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == [("您的个人消费贷（尾号1234）还剩 4 期未还，最近几期：12月15日（周二） ¥1,395.20；"
                        "1月15日（周五） ¥1,395.20；2月15日（周一） ¥1,395.20。最后一期在2027年3月15日（周一）。")]
    assert events == [SlotSet("loan_ref", "1234")]
    assert fake.calls == [("identity", "web", SIGNED_IN), ("loans", 7), ("schedule", 31)]


def test_a_refusal_is_told_in_the_backends_words():
    refused = BackendError(422, "loan_locked", "该借款正在处理中，暂时无法查询")
    fake = signed_in([DB["loan_active"]], schedule=refused)
    events, d = run(ActionAnswerSchedule(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == ["该借款正在处理中，暂时无法查询"] and events == []


def test_payment_history_shows_the_last_three():
    fake = signed_in([DB["loan_active"]], payments=DB["payments_31"])
    events, d = run(ActionAnswerPaymentHistory(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == [("您的个人消费贷（尾号1234）最近的还款记录：2026年12月4日（周五） ¥500.00；"
                        "2026年11月15日（周日） ¥1,395.20；2026年10月15日（周四） ¥1,395.20。共 4 笔还款。")]
    assert events == [SlotSet("loan_ref", "1234")]
    assert fake.calls[-1] == ("payments", 31)


def test_payment_history_without_payments():
    fake = signed_in([DB["loan_active"]], payments=[])
    _, d = run(ActionAnswerPaymentHistory(), tracker("tracker_web_signed_in"), fake)
    assert texts(d) == ["您的个人消费贷（尾号1234）暂时没有还款记录。"]


def test_loan_status_covers_every_loan_settled_ones_included():
    fake = signed_in([DB["loan_active"], DB["loan_overdue"], DB["loan_settled"]])
    t = tracker("tracker_web_signed_in", latest_message={"text": "我的借款状态正常吗",
                                                          "intent": {"name": "query_loan_status"}})
    events, d = run(ActionAnswerLoanStatus(), t, fake)
    assert texts(d) == [("个人消费贷（尾号1234）：正常还款中，没有逾期。\n"
                        "装修贷（尾号5678）：已逾期 12 天，逾期应还 ¥2,106.40。\n"
                        "您的个人消费贷（尾号0001）已于2026年11月3日（周二）结清，无需再还款。")]
    assert events == []
    assert fake.methods() == ["identity", "loans"]


def test_a_payment_on_the_day_named_is_found():
    fake = signed_in([DB["loan_active"]], payments=DB["payments_31"])
    t = tracker("tracker_web_signed_in", latest_message={
        "text": "我12月4号已经还了", "intent": {"name": "report_payment_made"},
        "entities": [{"entity": "date", "value": "2026-12-04", "start": 1, "end": 6}]})
    events, d = run(ActionCheckPaymentMade(), t, fake)
    assert texts(d) == ["已收到您12月4日（周五）的还款 ¥500.00，已入账到个人消费贷（尾号1234）。"]
    assert events == [SlotSet("loan_ref", "1234")]
    assert fake.calls == [("identity", "web", SIGNED_IN), ("loans", 7), ("payments", 31)]
