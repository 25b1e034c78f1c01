"""Writes tests/test_stories.yml: the conversation test stories run by `rasa test core`.

Kept as a generator because most stories share a shape (one question, verified or not); the
phrasings below are new sentences, not copies of the training examples. Re-run after editing:
    .venv-app/bin/python scripts/make_test_stories.py
"""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# (intent, action for a verified borrower, phrasings)
ACCOUNT = [
    ("query_balance", "action_answer_balance", ["帮我看看还欠你们多少钱", "我现在总共还差多少没还", "這個月要還多少錢"]),
    ("query_repayment_schedule", "action_answer_schedule", ["每个月几号扣款啊", "我的还款计划发我看看", "还剩几期没还"]),
    ("query_loan_status", "action_answer_loan_status", ["我现在算逾期了吗", "我那笔贷款结清了没有"]),
    ("query_payment_history", "action_answer_payment_history", ["把我最近的还款记录调出来", "上个月还的那笔你们收到没"]),
    ("request_early_repayment", None, ["我想把剩下的一次性提前结清", "提前还款怎么办理"]),
    ("report_payment_made", "action_check_payment_made", ["我刚刚已经还过了", "钱昨天就转过去了"]),
]
KNOWLEDGE = [
    ("ask_overdue_consequences", "action_answer_overdue_consequences", ["逾期了会不会影响征信", "晚还几天有什么后果"]),
    ("ask_repayment_method", "action_answer_repayment_method", ["我该怎么还款", "可以用微信还吗"]),
    ("ask_interest_fees", "action_answer_interest_fees", ["你们利息是怎么算的", "罚息是多少"]),
    ("query_complaint_status", "action_answer_complaint_status", ["我上次的投诉处理得怎么样了", "投诉有结果了吗"]),
    ("unsubscribe", "action_unsubscribe", ["退订", "以后别给我发提醒短信了"]),
    ("resubscribe", "action_resubscribe", ["提醒还是给我开着吧", "我退订错了，想恢复还款短信"]),
    ("busy_later", "action_busy_later", ["在开会，过会再说", "我在开车，晚点聊"]),
    ("request_human", "action_handoff", ["转人工", "我要找真人客服"]),
    ("wrong_person", "action_wrong_person", ["你打错了，我不是他", "我不认识这个人"]),
    ("out_of_scope", "action_out_of_scope", ["帮我推荐个好看的电视剧", "明年房价会跌吗"]),
]
SMALL_TALK = [
    ("greet", "utter_greet", ["你好呀", "在吗客服"]),
    ("goodbye", "utter_goodbye", ["好的拜拜", "就这些，再见"]),
    ("thank", "utter_you_are_welcome", ["太感谢了", "谢谢你啊"]),
    ("bot_challenge", "utter_iamabot", ["你是机器人吧", "跟我聊天的是真人吗"]),
    ("affirm", "utter_anything_else", ["好的"]),
    ("deny", "utter_anything_else", ["不用了"]),
]
VERIFIED = {"slot_was_set": [{"verified": True}]}


def user(text: str, intent: str) -> dict:
    return {"user": text, "intent": intent}


def stories() -> list[dict]:
    out = []
    for intent, action, texts in ACCOUNT:
        for i, text in enumerate(texts if action else []):
            out.append({"story": f"{intent} verified {i + 1}", "steps": [VERIFIED, user(text, intent), {"action": action}]})
        out.append({"story": f"{intent} unverified starts verification", "steps": [
            user(texts[0], intent), {"action": "action_remember_question"}, {"action": "identity_form"},
            {"active_loop": "identity_form"}]})
    for group in (KNOWLEDGE, SMALL_TALK):
        for intent, action, texts in group:
            for i, text in enumerate(texts):
                out.append({"story": f"{intent} {i + 1}", "steps": [user(text, intent), {"action": action}]})
    out += [
        {"story": "promise to pay with a date (verified)", "steps": [
            VERIFIED, user("[后天](date)一定还", "promise_to_pay"), {"action": "promise_form"},
            {"active_loop": "promise_form"}, {"slot_was_set": [{"promise_date": "2026-11-25"}]},
            {"active_loop": None}, {"slot_was_set": [{"requested_slot": None}]},
            {"action": "action_record_promise"}]},
        {"story": "promise to pay without a date asks for it", "steps": [
            VERIFIED, user("发工资了我就还", "promise_to_pay"), {"action": "promise_form"},
            {"active_loop": "promise_form"}, {"slot_was_set": [{"requested_slot": "promise_date"}]},
            user("[下周五](date)吧", "promise_to_pay"), {"action": "promise_form"},
            {"slot_was_set": [{"promise_date": "2026-12-04"}]}, {"active_loop": None},
            {"slot_was_set": [{"requested_slot": None}]}, {"action": "action_record_promise"}]},
        {"story": "verification end to end, then the pending answer", "steps": [
            user("我还欠多少钱", "query_balance"), {"action": "action_remember_question"},
            {"action": "identity_form"}, {"active_loop": "identity_form"},
            {"slot_was_set": [{"requested_slot": "identity_phone"}]},
            user("我的手机号是[13812345678](phone)", "provide_identity"), {"action": "identity_form"},
            {"slot_was_set": [{"identity_phone": "13812345678"}, {"requested_slot": "identity_id_last4"}]},
            user("身份证后四位[123X](id_last4)", "provide_identity"), {"action": "identity_form"},
            {"slot_was_set": [{"identity_id_last4": "123X"}, {"requested_slot": "identity_otp"}]},
            user("验证码[482913](otp_code)", "provide_identity"), {"action": "identity_form"},
            {"slot_was_set": [{"identity_otp": "482913"}, {"verified": True}]},
            {"active_loop": None}, {"slot_was_set": [{"requested_slot": None}]},
            {"action": "action_after_verification"}, {"slot_was_set": [{"workflow_next": "done"}]},
            user("那还款计划呢", "query_repayment_schedule"), {"action": "action_answer_schedule"}]},
        {"story": "wrong person in the middle of verification", "steps": [
            user("我的账单还有多少", "query_balance"), {"action": "action_remember_question"},
            {"action": "identity_form"}, {"active_loop": "identity_form"},
            {"slot_was_set": [{"requested_slot": "identity_phone"}]},
            user("你们找错人了，我不是本人", "wrong_person"), {"action": "action_wrong_person"},
            {"action": "action_deactivate_loop"}, {"active_loop": None}]},
        {"story": "borrower gives identity details unprompted", "steps": [
            user("我手机号[13912345678](phone)", "provide_identity"), {"action": "action_remember_question"},
            {"action": "identity_form"}, {"active_loop": "identity_form"}]},
        {"story": "verified borrower greets, asks, thanks, leaves", "steps": [
            VERIFIED, user("您好", "greet"), {"action": "utter_greet"},
            user("我还有多少没还清", "query_balance"), {"action": "action_answer_balance"},
            user("每月几号还", "query_repayment_schedule"), {"action": "action_answer_schedule"},
            user("谢谢", "thank"), {"action": "utter_you_are_welcome"},
            user("再见", "goodbye"), {"action": "utter_goodbye"}]},
        {"story": "asks consequences then asks for a plan (unverified: verification first)", "steps": [
            user("不还会怎么样", "ask_overdue_consequences"), {"action": "action_answer_overdue_consequences"},
            user("那我能申请分期吗", "request_repayment_plan"), {"action": "action_remember_question"},
            {"action": "identity_form"}, {"active_loop": "identity_form"}]},
        {"story": "asks for a person in the middle of verification", "steps": [
            user("我还欠多少", "query_balance"), {"action": "action_remember_question"}, {"action": "identity_form"},
            {"active_loop": "identity_form"}, {"slot_was_set": [{"requested_slot": "identity_phone"}]},
            user("算了直接给我转人工", "request_human"), {"action": "action_handoff"},
            {"action": "action_deactivate_loop"}, {"active_loop": None}]},
        {"story": "staff return the conversation and the borrower rates it", "steps": [
            {"intent": "EXTERNAL_handoff_closed"}, {"action": "action_handoff_closed"}, {"action": "csat_form"},
            {"active_loop": "csat_form"}, {"slot_was_set": [{"requested_slot": "csat_score"}]},
            user("5", "provide_identity"), {"action": "csat_form"},
            {"slot_was_set": [{"csat_score": "5"}, {"requested_slot": "csat_comment"}]},
            user("客服很耐心", "thank"), {"action": "csat_form"},
            {"slot_was_set": [{"csat_comment": "客服很耐心"}, {"requested_slot": None}]}, {"active_loop": None},
            {"action": "action_submit_csat"}]},
        {"story": "verified borrower asks interest then early settlement", "steps": [
            VERIFIED, user("利率多少", "ask_interest_fees"), {"action": "action_answer_interest_fees"},
            user("那我想提前全部还清", "request_early_repayment"), *opens("action_settlement_start", "settlement_form")]},
    ]
    return out + workflow_stories()


def opens(start: str, form: str) -> list[dict]:
    return [{"action": start}, {"slot_was_set": [{"workflow_next": form}]}, {"action": form}, {"active_loop": form}]


def asks(form: str, slot: str) -> list[dict]:
    return [{"action": form}, {"slot_was_set": [{"requested_slot": slot}]}]


def finished(form: str, submit: str) -> list[dict]:
    return [{"action": form}, {"slot_was_set": [{"requested_slot": None}]}, {"active_loop": None}, {"action": submit}]


def workflow_stories() -> list[dict]:
    """Repayment plan, early settlement and complaint forms. Answers typed inside a form are mapped
    from the text whatever the classifier says, so those turns give only an intent."""
    plan = [VERIFIED, user("能不能分[12期](months)还", "request_repayment_plan"), *opens("action_plan_start", "plan_form"),
            {"slot_was_set": [{"requested_slot": "plan_reason"}]}]
    settle = [VERIFIED, user("我想提前结清", "request_early_repayment"),
              *opens("action_settlement_start", "settlement_form"), {"slot_was_set": [{"requested_slot": "settle_confirm"}]}]
    complaint = [user("我要投诉你们的催收", "complaint"), *opens("action_complaint_start", "complaint_form"),
                 {"slot_was_set": [{"requested_slot": "complaint_description"}]}]
    return [
        {"story": "plan request: reason, confirm, submitted", "steps": [
            *plan, {"intent": "request_repayment_plan"}, *asks("plan_form", "plan_confirm"),
            {"intent": "affirm"}, *finished("plan_form", "action_submit_plan")]},
        {"story": "plan request: an interest question in the middle, then back to the form", "steps": [
            *plan, user("利息是怎么算的", "ask_interest_fees"),
            *asks("plan_form", "plan_reason"), {"intent": "request_repayment_plan"}, *asks("plan_form", "plan_confirm")]},
        {"story": "plan request: a balance question in the middle", "steps": [
            *plan, user("我现在一共还欠多少", "query_balance"),
            *asks("plan_form", "plan_reason")]},
        {"story": "plan request: 算了 cancels", "steps": [
            *plan, {"intent": "deny"}, *finished("plan_form", "action_submit_plan")]},
        {"story": "plan request: a person in the middle", "steps": [
            *plan, user("还是给我转人工吧", "request_human"), {"action": "action_handoff"},
            {"action": "action_deactivate_loop"}, {"active_loop": None}]},
        {"story": "plan request status needs no form", "steps": [
            VERIFIED, user("我的分期申请怎么样了", "request_repayment_plan"), {"action": "action_plan_start"},
            {"slot_was_set": [{"workflow_next": "done"}]}]},
        {"story": "plan request after verification", "steps": [
            user("我想申请延期还款", "request_repayment_plan"), {"action": "action_remember_question"},
            {"action": "identity_form"}, {"active_loop": "identity_form"},
            {"slot_was_set": [{"requested_slot": "identity_otp"}]}, user("[482913](otp_code)", "provide_identity"),
            {"action": "identity_form"}, {"slot_was_set": [{"verified": True}]}, {"slot_was_set": [{"requested_slot": None}]},
            {"active_loop": None}, {"action": "action_after_verification"},
            {"slot_was_set": [{"workflow_next": "plan_form"}]}, {"action": "plan_form"}, {"active_loop": "plan_form"}]},
        {"story": "early settlement: quote, then record the intent", "steps": [
            *settle, {"intent": "affirm"}, *finished("settlement_form", "action_submit_settlement")]},
        {"story": "early settlement: a schedule question before deciding", "steps": [
            *settle, user("每个月几号扣款", "query_repayment_schedule"),
            *asks("settlement_form", "settle_confirm"), {"intent": "deny"},
            *finished("settlement_form", "action_submit_settlement")]},
        {"story": "early settlement: a date read as a promise re-quotes inside the form", "steps": [
            *settle, {"intent": "promise_to_pay"}, *asks("settlement_form", "settle_confirm")]},
        {"story": "plan request: a complaint in the middle is noted, the form goes on", "steps": [
            *plan, {"slot_was_set": [{"requested_slot": "plan_type"}]}, {"intent": "complaint"},
            *asks("plan_form", "plan_type")]},
        {"story": "plan request: 就这样吧 confirms, it is not goodbye", "steps": [
            *plan, {"slot_was_set": [{"requested_slot": "plan_confirm"}]}, {"intent": "goodbye"},
            *finished("plan_form", "action_submit_plan")]},
        {"story": "complaint: stop calling my family is the outcome, not an unsubscribe", "steps": [
            *complaint, {"intent": "complaint"}, *asks("complaint_form", "complaint_outcome"),
            {"intent": "unsubscribe"}, *asks("complaint_form", "complaint_contact")]},
        {"story": "complaint: description, outcome, contact, filed, then a person", "steps": [
            *complaint, {"intent": "complaint"}, *asks("complaint_form", "complaint_outcome"),
            {"intent": "deny"}, *asks("complaint_form", "complaint_contact"), {"intent": "affirm"},
            *finished("complaint_form", "action_submit_complaint"),
            user("给我转人工", "request_human"), {"action": "action_handoff"}]},
        {"story": "complaint: a person straight away in the middle", "steps": [
            *complaint, user("转人工", "request_human"), {"action": "action_handoff"},
            {"action": "action_deactivate_loop"}, {"active_loop": None}]},
        {"story": "complaint status by reference", "steps": [
            user("投诉编号CP20261120-0003处理到哪了", "query_complaint_status"), {"action": "action_answer_complaint_status"}]},
        # Notices (reminders, decisions, rating requests) are not intents: the backend delivers them as
        # bot messages with the slots they set (backend/services/outreach/render.py), so these stories
        # start where such a delivery leaves the conversation.
        {"story": "after a due-date reminder the borrower asks for a plan", "steps": [
            VERIFIED, user("好的，能不能分期？", "request_repayment_plan"), *opens("action_plan_start", "plan_form")]},
        {"story": "a rating follow-up the day after a person helped (the delivery opened csat_form)", "steps": [
            {"active_loop": "csat_form"}, {"slot_was_set": [{"requested_slot": "csat_score"}]},
            user("4", "provide_identity"), {"action": "csat_form"},
            {"slot_was_set": [{"csat_score": "4"}, {"requested_slot": "csat_comment"}]},
            user("没有", "deny"), {"action": "csat_form"},
            {"slot_was_set": [{"csat_comment": "none"}, {"requested_slot": None}]}, {"active_loop": None},
            {"action": "action_submit_csat"}]},
        {"story": "after an overdue notice the borrower promises to pay", "steps": [
            VERIFIED, user("[明天](date)就还", "promise_to_pay"), {"action": "promise_form"},
            {"active_loop": "promise_form"}]},
    ]


def main() -> None:
    # Entities are annotated inline ([后天](date)); rasa reads that markup in test stories.
    data = {"version": "3.1", "stories": stories()}
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=200)
    (ROOT / "tests" / "test_stories.yml").write_text(
        "# Generated by scripts/make_test_stories.py: edit that file, then re-run it.\n" + text, encoding="utf-8")
    print(f"{len(data['stories'])} stories")


if __name__ == "__main__":
    main()
