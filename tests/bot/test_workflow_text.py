"""How the workflow forms read answers (cancel, reasons, plan type, months, complaint fields) and
word the plan quote, the status and the decisions."""
from __future__ import annotations

import pytest

pytest.importorskip("rasa_sdk")

from rasa_sdk import Tracker  # noqa: E402

from actions.complaint_form import category_of, telling  # noqa: E402
from actions.plan_request import approved_text, months_of, plan_text, plan_type_of, reason_of, status_text  # noqa: E402
from actions.workflows import idle_minutes, is_cancel  # noqa: E402


def tracker(text: str = "", entities: list[dict] | None = None, events: list[dict] | None = None) -> Tracker:
    return Tracker("web:1", {}, {"text": text, "intent": {"name": "x"}, "entities": entities or []},
                   events or [], False, None, None, "action_listen")


@pytest.mark.parametrize("text", ["算了", "算了吧", "那算了", "算了，不申请了", "不申请了", "取消申请", "不投诉了", "算了不分期了"])
def test_cancel_words(text):
    assert is_cancel(text)


@pytest.mark.parametrize("text", ["", "12期", "失业", "他说算了不跟我计较但是第二天又打电话骚扰我的家人", "确认", "不用了"])
def test_not_cancel(text):
    assert not is_cancel(text)


@pytest.mark.parametrize("text, reason", [
    ("失业", "unemployment"), ("公司裁员把我裁了", "unemployment"), ("收入下降", "income_drop"),
    ("这两年生意不好做", "income_drop"), ("疾病或意外", "illness"), ("我妈住院了要手术", "illness"),
    ("家庭变故", "family"), ("离婚了", "family"), ("其他", "other"), ("就是还不上", "other"),
])
def test_reasons_from_free_text(text, reason):
    assert reason_of(text) == reason


@pytest.mark.parametrize("text, entities, plan_type", [
    ("能不能分12期还", [{"entity": "months", "value": "12"}], "instalment"),
    ("分十二期", [], "instalment"),
    ("想延期3期", [{"entity": "plan_type", "value": "延期"}], "deferral"),
    ("减免", [], "waiver"),
    ("能不能停息挂账", [{"entity": "plan_type", "value": "分期"}], "instalment"),
    ("还不上了", [], None),
])
def test_plan_type(text, entities, plan_type):
    assert plan_type_of(text, tracker(text, entities)) == plan_type


@pytest.mark.parametrize("text, entities, months", [
    ("12", [], 12), ("十二", [], 12), ("分24期", [{"entity": "months", "value": "24"}], 24), ("三", [], 3),
    ("好多期", [], None), ("12或者24", [], None),
])
def test_months(text, entities, months):
    assert months_of(text, tracker(text, entities)) == months


def test_idle_minutes_between_the_last_prompt_and_the_reply():
    events = [{"event": "bot", "timestamp": 1000.0}, {"event": "action", "name": "action_listen", "timestamp": 1001.0},
              {"event": "user", "timestamp": 1001.0 + 31 * 60}]
    assert idle_minutes(tracker(events=events)) == pytest.approx(31)
    assert idle_minutes(tracker(events=events[-1:])) == 0.0


@pytest.mark.parametrize("text, category", [
    ("催收方式", "collection"), ("隐私", "privacy"), ("其他", "other"), ("费用争议", "fees"), ("随便说说", None),
])
def test_complaint_category_from_the_buttons(text, category):
    assert category_of(text, tracker(text)) == category


def test_a_telling_first_message_is_the_description():
    assert telling("你们催收天天打电话骚扰我")
    assert not telling("我要投诉")
    assert not telling("我要投诉你们")


INSTALMENT = {"quote": {
    "plan_type": "instalment", "instalments": 12, "monthly_amount": "870.33", "first_due_date": "2026-12-15",
    "last_due_date": "2027-11-15", "total_interest": "443.96", "total_repayable": "10443.96", "carried_total": "0.00",
    "amount": "10000.00", "deferred": [], "waived_amount": "0.00", "waived_penalty_interest": "0.00", "waived_fees": "0.00"}}


def test_instalment_quote_wording():
    assert plan_text(INSTALMENT) == (
        "预估方案（分期12期，仅供参考）：每月应还约 ¥870.33，共 12 期，首期 12月15日（周二），"
        "最后一期 2027年11月15日（周一）；总利息 ¥443.96，合计应还 ¥10,443.96。")
    arrears = {"quote": {**INSTALMENT["quote"], "carried_total": "312.50"}}
    assert plan_text(arrears).endswith("已逾期的利息、费用和罚息共 ¥312.50 不再计息，平摊到各期。")


def test_deferral_and_waiver_wording():
    deferral = {"quote": {**INSTALMENT["quote"], "plan_type": "deferral", "amount": "1740.66",
                          "total_repayable": "9500.00", "deferred": [
                              {"due_date": "2026-12-15", "new_due_date": "2028-01-15"},
                              {"due_date": "2027-01-15", "new_due_date": "2028-02-15"}]}}
    assert plan_text(deferral) == (
        "预估方案（延期2期，仅供参考）：原定12月15日（周二）、1月15日（周五）的 2 期（共 ¥1,740.66）顺延到"
        "2028年1月15日（周六）、2028年2月15日（周二），不另加利息；其余各期仍按原计划还款，合计应还 ¥9,500.00。")
    waiver = {"quote": {**INSTALMENT["quote"], "plan_type": "waiver", "waived_penalty_interest": "35.20",
                        "waived_fees": "50.00", "waived_amount": "85.20", "total_repayable": "3120.00"}}
    assert plan_text(waiver) == ("预估方案（减免，仅供参考）：可申请减免罚息 ¥35.20、费用 ¥50.00，共 ¥85.20；"
                                 "减免后仍需还 ¥3,120.00，本金和利息按原计划还款。")


def test_status_and_decision_wording():
    req = {"reference": "RP20261123-0001", "plan_type_label": "分期", "months": 12, "amount": "10000.00",
           "status": "under_review", "status_label": "审核中", "decision_due_on": "2026-11-26",
           "decision_reason": None, "approved_quote": None, "quote": INSTALMENT["quote"]}
    assert status_text(req) == (
        "您的还款计划申请（编号 RP20261123-0001，分期12期 ¥10,000.00）目前状态：审核中。"
        "我们会在11月26日（周四）前给您答复，结果会通过本渠道通知您。如需撤回，回复「撤回申请」。")
    rejected = {**req, "status": "rejected", "status_label": "未批准", "decision_reason": "收入证明不足"}
    assert status_text(rejected).endswith("目前状态：未批准。原因：收入证明不足。")
    assert approved_text({**req, "approved_quote": INSTALMENT["quote"]}) == (
        "新的还款计划已生效：共 12 期，首期 12月15日（周二） 应还 ¥870.33。")
