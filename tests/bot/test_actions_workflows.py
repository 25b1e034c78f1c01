"""Workflow actions that write to the backend (plan request, complaint, promise to pay, early
settlement, handoff) run against tracker dumps and a fake backend: the exact request, the exact
answer, the exact slots."""
from __future__ import annotations

import pytest

pytest.importorskip("rasa_sdk")

from rasa_sdk.events import ActionExecuted, ActiveLoop, ConversationPaused, SlotSet  # noqa: E402

from actions.complaint_form import COMPLAINT_SLOTS, ActionSubmitComplaint  # noqa: E402
from actions.handoff import ActionHandoff  # noqa: E402
from actions.plan_request import PLAN_SLOTS, ActionPlanStart, ActionSubmitPlan  # noqa: E402
from actions.promises import ActionRecordPromise  # noqa: E402
from actions.settlement import (  # noqa: E402
    SETTLE_SLOTS,
    ActionAskSettleConfirm,
    ActionSubmitSettlement,
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

DB = backend_data()
WEB = "web:s-7f3c9a1e5b2d4c6e8a0b"
ANON = "web:anon-0123456789abcdef0123456789abcdef"
WECHAT = "wechat:oUser_7xyzABC123"
PLAN_TERMS = ("请注意：这是一份申请，最终方案以公司审核结果为准，预计12月11日（周五）前答复您，结果会通过本渠道通知。 "
              "审核时可能需要您提供收入证明、失业证明、医疗或住院证明等材料，届时客服会联系您。申请完全免费， "
              "只通过本公司官方渠道办理，请勿相信任何收费的「代理协商」「征信修复」。审核通过后按新方案正常还款， "
              "征信按实际还款情况如实报送；方案生效前已发生的逾期记录不会因此删除。")


def signed_in(**answers) -> FakeBackend:
    return FakeBackend(identity=DB["identity_web"], loans=[DB["loan_active"]], **answers)


# --------------------------------------------------------------------------- repayment plan

PLAN_RESET = [SlotSet(s, None) for s in PLAN_SLOTS] + [SlotSet("form_reasks", 0)]


def test_a_confirmed_plan_is_submitted_as_the_borrower_chose_it():
    fake = signed_in(submit_plan=DB["plan_request"])
    events, d = run(ActionSubmitPlan(), tracker("tracker_plan_confirmed"), fake)
    assert texts(d) == ["已提交您的还款计划申请，编号 RP20261206-0003（分期12期）。" + PLAN_TERMS]
    assert events == PLAN_RESET
    assert fake.calls == [("identity", "web", "s-7f3c9a1e5b2d4c6e8a0b"), ("loans", 7), ("submit_plan", {
        "conversation": WEB, "channel": "web", "customer_id": 7, "loan_id": 31, "reason_category": "unemployment",
        "reason_text": "我失业了，想分12期", "plan_type": "instalment", "months": 12})]


def test_a_refused_plan_says_why_and_submits_nothing_else():
    fake = signed_in(submit_plan=BackendError(409, "plan_pending", "您已有一份还款计划申请正在审核中"))
    events, d = run(ActionSubmitPlan(), tracker("tracker_plan_confirmed"), fake)
    assert texts(d) == ["您已有一份还款计划申请正在审核中。"]
    assert events == PLAN_RESET


def test_a_plan_with_the_backend_down_is_not_submitted():
    fake = signed_in(submit_plan=DOWN)
    events, d = run(ActionSubmitPlan(), tracker("tracker_plan_confirmed"), fake)
    assert texts(d) == [BUSY + "您的申请没有提交成功，请稍后再试。"]
    assert events == PLAN_RESET


def test_a_declined_plan_submits_nothing():
    fake = FakeBackend()
    events, d = run(ActionSubmitPlan(), tracker("tracker_plan_confirmed", slots={"plan_confirm": None}), fake)
    assert d.messages == [] and events == PLAN_RESET and fake.calls == []


def test_a_plan_request_needs_verification_first():
    fake = FakeBackend(identity=None)
    t = tracker("tracker_web_anonymous", latest_message={"text": "我想申请分期还款",
                                                          "intent": {"name": "request_repayment_plan"}})
    events, d = run(ActionPlanStart(), t, fake)
    assert texts(d) == [NOT_VERIFIED]
    assert events == [SlotSet("workflow_next", "done")]


# --------------------------------------------------------------------------- complaint

COMPLAINT_RESET = [SlotSet(s, None) for s in COMPLAINT_SLOTS] + [SlotSet("form_reasks", 0),
                                                                 SlotSet("complaint_other_categories", None)]
COMPLAINT_BODY = {
    "conversation": ANON, "channel": "web", "customer_id": None, "category": "collection",
    "other_categories": ["privacy"], "description": "你们的催收天天打电话给我家人，太过分了",
    "desired_outcome": "别再打给我家人", "contact": "本渠道回复"}


def test_a_complaint_is_filed_with_what_the_borrower_said():
    fake = FakeBackend(identity=None, open_complaint=DB["complaint"])
    events, d = run(ActionSubmitComplaint(), tracker("tracker_complaint_filled"), fake)
    assert texts(d) == [
        ("您的投诉已受理，编号 CP20261206-0007（催收方式）。我们会有专人跟进，最晚12月21日（周一）前给您处理结果，"
        "进展会通过本渠道告诉您。在专人处理完您的投诉前，我们已暂停对您的自动还款提醒。"
        "您要求我们不再联系您的家人、同事等其他人，已记录在投诉中并转告催收管理：这笔借款今后只联系您本人。")]
    assert events == COMPLAINT_RESET
    # Anyone may complain: an unverified conversation files it without a customer.
    assert fake.calls == [("identity", "web", ANON.removeprefix("web:")), ("open_complaint", COMPLAINT_BODY)]


def test_a_high_priority_complaint_offers_a_person():
    fake = FakeBackend(identity=None, open_complaint={**DB["complaint"], "pauses_reminders": False, "offer_human": True})
    events, d = run(ActionSubmitComplaint(), tracker("tracker_complaint_filled"), fake)
    assert d.messages[1]["text"] == "这类问题我们会优先处理。需要现在为您转接人工客服吗？"
    assert d.messages[1]["buttons"] == [{"title": "转人工", "payload": "/request_human"},
                                        {"title": "不用了", "payload": "/deny"}]
    assert events == COMPLAINT_RESET + [SlotSet("answer_context", "offer_human")]


def test_a_complaint_with_the_backend_down_is_not_lost_silently():
    fake = FakeBackend(identity=None, open_complaint=DOWN)
    events, d = run(ActionSubmitComplaint(), tracker("tracker_complaint_filled"), fake)
    assert texts(d) == [BUSY + "投诉没有登记成功，请稍后再试或回复「转人工」。"]
    assert events == COMPLAINT_RESET


# --------------------------------------------------------------------------- promise to pay

def test_a_promise_is_recorded_on_the_loan():
    fake = FakeBackend(identity={**DB["identity_web"], "channel": "sms"}, loans=[DB["loan_active"]],
                       record_promise=DB["promise"])
    events, d = run(ActionRecordPromise(), tracker("tracker_promise_date"), fake)
    assert texts(d) == [("好的，已为您登记：12月8日（周二）还款 ¥1,395.20（个人消费贷（尾号1234））。"
                        "请在当天确保还款账户资金充足，感谢您的配合。")]
    assert events == [SlotSet("promise_date", None), SlotSet("promise_amount", None),
                      SlotSet("promise_amount_pending", None), SlotSet("loan_ref", "1234")]
    assert fake.calls == [("identity", "sms", "+8613800000001"), ("loans", 7),
                          ("record_promise", 31, "2026-12-08", None, "sms")]


def test_a_promise_goes_to_the_loan_in_arrears():
    fake = FakeBackend(identity={**DB["identity_web"], "channel": "sms"}, loans=[DB["loan_active"], DB["loan_overdue"]],
                       record_promise={**DB["promise"], "amount": "4176.40"})
    events, d = run(ActionRecordPromise(), tracker("tracker_promise_date"), fake)
    assert fake.calls[-1] == ("record_promise", 32, "2026-12-08", None, "sms")
    assert texts(d)[0].startswith("好的，已为您登记：12月8日（周二）还款 ¥4,176.40（装修贷（尾号5678））。")
    assert events[-1] == SlotSet("loan_ref", "5678")


# --------------------------------------------------------------------------- early settlement

def test_the_settlement_quote_is_the_backends_figure_for_the_date():
    fake = signed_in(payoff=DB["payoff_31"])
    events, d = run(ActionAskSettleConfirm(), tracker("tracker_settlement_form"), fake)
    assert texts(d) == [
        ("如在12月9日（周三）提前结清个人消费贷（尾号1234），需还款 ¥8,121.20（本金 ¥8,000.00、利息 ¥41.20、"
        "提前结清手续费 ¥80.00）。办理方式：在App「我的借款-提前结清」一键还款，或对公转账后联系客服确认。"
        "金额按实际结清日计算，以结清当日为准。"),
        "需要为您登记这次提前结清的意向吗？登记后我们会按这个日期为您准备结清。"]
    assert d.messages[1]["buttons"] == [{"title": "登记结清意向", "payload": "登记"},
                                        {"title": "不用了", "payload": "不用了"}]
    assert events == []
    assert fake.calls == [("identity", "web", "s-7f3c9a1e5b2d4c6e8a0b"), ("loans", 7), ("payoff", 31, "2026-12-09")]


def test_no_quote_when_the_backend_is_down():
    fake = signed_in(payoff=DOWN)
    events, d = run(ActionAskSettleConfirm(), tracker("tracker_settlement_form"), fake)
    assert texts(d) == [BUSY] and events == []


def test_a_settlement_intent_is_recorded():
    fake = signed_in(record_settlement=DB["settlement_intent"])
    events, d = run(ActionSubmitSettlement(), tracker("tracker_settlement_form", slots={"settle_confirm": "yes"}), fake)
    assert texts(d) == [("已为您登记提前结清意向：12月9日（周三）结清个人消费贷（尾号1234），应还 ¥8,121.20。"
                        "请在当天按上面的方式还款，到账后借款即结清。")]
    assert events == [SlotSet(s, None) for s in SETTLE_SLOTS] + [SlotSet("form_reasks", 0)]
    assert fake.calls[-1] == ("record_settlement", 31, {"customer_id": 7, "conversation": WEB, "channel": "web",
                                                        "settle_on": "2026-12-09"})


def test_a_refused_settlement_says_why():
    fake = signed_in(record_settlement=BackendError(409, "already_recorded", "您已登记过这笔借款的提前结清"))
    _, d = run(ActionSubmitSettlement(), tracker("tracker_settlement_form", slots={"settle_confirm": "yes"}), fake)
    assert texts(d) == ["您已登记过这笔借款的提前结清"]


# --------------------------------------------------------------------------- handoff

SUMMARY = "\n".join(["转人工原因：客户要求转人工", "身份已验证：是", "识别到的意图：query_repayment_schedule、request_human",
                     "客户：我的还款日是哪天", "客户：转人工"])


def test_asking_for_a_person_opens_a_case_and_pauses():
    fake = FakeBackend(identity=DB["identity_wechat"], open_handoff=DB["handoff_case"])
    events, d = run(ActionHandoff(), tracker("tracker_asks_for_person"), fake)
    assert texts(d) == [("好的，已为您转接人工客服（工单号HO20261206-0044）。接下来将由我们的人工客服为您服务，"
                        "您前面还有2位客户在等待，预计约6分钟内回复。您可以先把问题发过来，客服接入后会直接看到。")]
    assert events == [SlotSet("handoff_case", 44), ActiveLoop(None), SlotSet("requested_slot", None),
                      ActionExecuted("action_listen"), ConversationPaused()]
    assert fake.calls == [("identity", "wechat", "oUser_7xyzABC123"),
                          ("open_handoff", WECHAT, "wechat", 7, "request_human", SUMMARY)]


def test_no_person_available_keeps_the_bot_serving():
    fake = FakeBackend(identity=DB["identity_wechat"], open_handoff=DOWN)
    events, d = run(ActionHandoff(), tracker("tracker_asks_for_person"), fake)
    assert texts(d) == ["抱歉，人工客服暂时无法接入，请稍后再说「转人工」试一次。我仍可以继续为您查询账户或解答问题。"]
    assert events == []  # not paused: nobody would answer
