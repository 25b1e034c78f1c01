"""Issue 13 through the real stack (Rasa with the trained model, action server, backend):
another lender's product gets the policy answer and none of our figures; before a debt notice on
SMS the assistant asks 「请问您是X**本人吗？」 and reads 「是」「我不是」 from that question; the
question's context ends with the borrower's next message."""
from __future__ import annotations

import uuid


from tests.e2e.conftest import RunningStack, plan_notice, trigger  # noqa: E402
from test_workflows import yuan  # noqa: E402


def overdue_borrower(stack: RunningStack, skip: int = 0) -> tuple[int, str, str, dict]:
    """(customer id, phone, name, loan) of an SMS-reachable borrower with an overdue loan."""
    with stack.db() as conn:
        rows = conn.execute(
            "SELECT c.id, c.phone, c.name, l.id FROM customers c JOIN loans l ON l.customer_id = c.id "
            "JOIN channel_identities i ON i.customer_id = c.id AND i.channel = 'sms' "
            "WHERE l.status IN ('active', 'overdue') AND i.status = 'active' ORDER BY c.id").fetchall()
    overdue = []
    for cid, phone, name, loan_id in rows:
        loan = stack.backend(f"/loans/{loan_id}").json()
        if loan["days_past_due"] > 0:
            overdue.append((cid, phone, name, loan))
    assert len(overdue) > skip, "the demo data has overdue borrowers reachable by SMS"
    return overdue[skip]


def masked(name: str) -> str:
    return name[:1] + "*" * (len(name) - 1)


def test_another_lenders_question_gets_the_policy_answer_and_no_figures(stack):
    cid, phone, name, loan = overdue_borrower(stack)
    sender = stack.web_sender(cid)  # a verified borrower: our figures would be at hand
    reply = stack.texts(sender, "借呗这个月还欠多少")
    assert reply.startswith("您问的是「借呗」吧。我是示例消费金融的客服助手，只能查询和办理您在我们这里的借款")
    assert "¥" not in reply
    reply = stack.texts(sender, "信用卡逾期了会怎么样")
    assert reply.startswith("信用卡的账单、还款和分期由发卡银行办理")
    assert "一般来说，贷款或信用卡逾期都可能产生罚息并影响征信" in reply
    # The same question about our own loan gets our figure.
    assert yuan(loan["total_outstanding"]) in stack.texts(sender, "我在你们这借的还欠多少")


def test_yes_to_the_identity_question_gives_the_notice_held_back(stack):
    cid, phone, name, loan = overdue_borrower(stack)
    sender = f"sms:+86{phone}"
    notice = plan_notice(stack, cid, loan["id"])
    question = trigger(stack, sender, notice)
    assert question == f"您好，这里是示例消费金融客服。请问您是{masked(name)}本人吗？请回复「是」或「不是」。"
    assert "¥" not in question and "逾期" not in question
    reply = stack.texts(sender, "是我")
    assert f"已逾期{loan['days_past_due']}天" in reply and yuan(loan["overdue_amount"]) in reply
    # Confirmed for this session: the next notice is not held back again.
    again = trigger(stack, sender, plan_notice(stack, cid, loan["id"], "overdue_15"))
    assert "请问您是" not in again and "¥" in again


def test_not_me_to_the_identity_question_is_a_wrong_person_and_reveals_nothing(stack):
    cid, phone, name, loan = overdue_borrower(stack, skip=1)
    sender = f"sms:+86{phone}"
    trigger(stack, sender, plan_notice(stack, cid, loan["id"]))
    reply = stack.texts(sender, "我不是")
    assert reply.startswith("非常抱歉打扰您了") and "¥" not in reply and "逾期" not in reply
    ident = stack.backend(f"/identities/sms/+86{phone}").json()
    assert ident["status"] == "wrong_person" and ident["verified"] is False
    assert "¥" not in stack.texts(sender, "那他欠了多少钱")


def test_the_question_s_context_ends_with_the_next_message(stack):
    cid, phone, name, loan = overdue_borrower(stack, skip=2)
    sender = f"sms:+86{phone}"
    trigger(stack, sender, plan_notice(stack, cid, loan["id"]))
    stack.texts(sender, "你是机器人吗")  # another question first: the identity question is no longer open
    reply = stack.texts(sender, "是")
    assert reply == "好的。还有其他可以帮您的吗？"
    assert stack.backend(f"/identities/sms/+86{phone}").json()["status"] == "active"


def test_yes_after_the_offer_of_a_person_hands_over_and_no_declines(stack):
    anon = lambda: f"web:anon-{uuid.uuid4().hex[:10]}"  # noqa: E731
    for answer, handed_over in (("好的", True), ("不用了", False)):
        sender = anon()
        stack.texts(sender, "你们催收天天打电话骚扰我家里人")
        stack.texts(sender, "别再打了，要求道歉")
        filed = stack.texts(sender, "在这里回复我")
        assert "需要现在为您转接人工客服吗" in filed
        reply = stack.texts(sender, answer)
        case = stack.backend(f"/handoffs/by-conversation/{sender}")
        if handed_over:
            assert case.status_code == 200 and case.json()["reason"] == "request_human", reply
        else:
            assert reply == "好的，那我继续为您服务。之后需要人工客服时，随时回复「转人工」。"
            assert case.status_code == 404
