"""The outbox (backend.services.outreach.outbox): a decision and its message commit together or not at
all; the backend's worker delivers each message once through Rasa's HTTP API (fake_rasa.FakeRasa),
retries a failure with the backoff, and two workers never send one twice; the backend words every
notice kind itself, with the texts the bot used to say, and says nothing about what was paid since it
was planned."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backend.core.clock import SHANGHAI
from backend.models import OutboxMessage, OutreachKind, OutreachNotice, PlanRequest
from backend.services import accounts, notices, plans
from backend.services.outreach import dispatcher, planner, render, worker
from backend.services.outreach.context import Outreach
from backend.services.rasa_api import RasaClient
from fake_rasa import FakeRasa
from testkit import HEADERS, ManualClock, RecordingSender, StaffDesk, ok, shanghai

TOKEN = "rasa-outbox-token"
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
HOW_TO_PAY = "可在App「我的借款-立即还款」操作，或保证还款卡余额充足以便当天自动扣款。"


@pytest.fixture(scope="module")
def fake_rasa():
    with FakeRasa(TOKEN) as fake:
        yield fake


@pytest.fixture
def rasa(app, fake_rasa):
    original_rasa, original_clock = app.state.rasa, app.state.clock
    app.state.rasa, app.state.clock = RasaClient(fake_rasa.url, TOKEN), ManualClock(T0)
    StaffDesk.of(app).deliver = False  # these tests run the outbox worker's rounds themselves
    fake_rasa.status, fake_rasa.paused, fake_rasa.silent, fake_rasa.on_request = 200, False, False, None
    fake_rasa.bare_answer, fake_rasa.delay = False, 0.0
    fake_rasa.take()
    yield fake_rasa
    StaffDesk.of(app).deliver = True
    app.state.rasa, app.state.clock = original_rasa, original_clock


def under_review(client, desk, book) -> tuple[str, str]:
    cust = book.customer("周立")
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    conv = f"sms:{cust.sms_id}"
    ref = ok(client.post("/api/v1/plan-requests", headers=HEADERS, json={
        "conversation": conv, "channel": "sms", "customer_id": cust.id, "loan_id": loan.id,
        "reason_category": "income_drop", "plan_type": "instalment", "months": 12}), 201)["reference"]
    ok(desk.act(f"/api/v1/plan-requests/{ref}/review", {"by": "alice"}))
    return ref, conv


def messages(app, ref: str) -> list[OutboxMessage]:
    with app.state.sessionmaker() as db:
        return list(db.scalars(select(OutboxMessage).join(OutreachNotice, OutreachNotice.id == OutboxMessage.notice_id)
                               .where(OutreachNotice.dedupe_key.like(f"%:{ref}:%"))))


def deliveries(fake) -> list:
    return [r for r in fake.take() if r.is_delivery]


# --------------------------------------------------------------------------- one transaction

@pytest.mark.parametrize("commit", [True, False])
def test_a_decision_and_its_message_commit_together_or_not_at_all(app, client, desk, book, rasa, commit):
    ref, conv = under_review(client, desk, book)
    with app.state.sessionmaker() as db:
        db.info.update(rules=app.state.rules, clock=app.state.clock)
        req = plans.reject(db, app.state.rules, ref, "bob", "agent", "收入证明不足", T0.date(), T0, "console")
        notices.plan_decided(db, None, req, "bob", "console")
        assert rasa.take() == []  # nothing reaches Rasa inside the transaction
        db.commit() if commit else db.rollback()
    with app.state.sessionmaker() as db:
        status = db.scalar(select(PlanRequest.status).where(PlanRequest.reference == ref)).value
        n = db.scalar(select(func.count()).select_from(OutreachNotice).where(OutreachNotice.dedupe_key.like(f"plan:{ref}:%")))
    got = messages(app, ref)
    if commit:
        assert (status, n, len(got)) == ("rejected", 1, 1)
        assert (got[0].status.value, got[0].conversation, got[0].channel.value, got[0].events) == ("queued", conv, "sms", [])
        assert got[0].text == (f"很抱歉，您的还款计划申请（编号 {ref}）未获批准，原因：收入证明不足。"
                               "如有疑问或情况有变化，可以回复「转人工」与客服沟通，也可以重新申请。")
    else:
        assert (status, n, got) == ("under_review", 0, [])


# --------------------------------------------------------------------------- the worker

def test_the_worker_retries_a_failure_then_delivers_once(app, client, desk, book, rasa):
    worker.run_once(app)  # what earlier tests left due
    ref, conv = under_review(client, desk, book)
    rasa.take()
    rasa.status = 500
    ok(desk.act(f"/api/v1/plan-requests/{ref}/reject", {"by": "bob", "role": "agent", "reason": "收入证明不足"}))
    assert worker.run_once(app) == {"retry": 1}
    (m,) = messages(app, ref)
    assert (m.status.value, m.attempts, m.last_error) == ("queued", 0, "http_500")  # Rasa failed before taking it
    rasa.status = 200
    assert worker.run_once(app) == {}  # not before the backoff (retry_backoff_minutes[0])
    app.state.clock.at = T0 + timedelta(minutes=1)
    rasa.take()
    assert worker.run_once(app) == {"sent": 1}
    (delivery,) = deliveries(rasa)
    (m,) = messages(app, ref)
    assert (m.status.value, m.attempts, m.last_error) == ("sent", 1, None)
    assert delivery.json == [{"event": "bot", "text": m.text, "metadata": {"notice_id": delivery.json[0]["metadata"]["notice_id"],
                                                                            "kind": "plan_decision"}},
                             {"event": "action", "name": "action_listen"}]
    assert rasa.said(conv).count(m.text) == 1
    app.state.clock.at = T0 + timedelta(hours=1)
    assert worker.run_once(app) == {} and deliveries(rasa) == []  # never again


def test_two_workers_at_once_send_each_message_once(app, client, desk, book, rasa):
    worker.run_once(app)  # what earlier tests left due
    refs = []
    for _ in range(6):
        ref, _ = under_review(client, desk, book)
        ok(desk.act(f"/api/v1/plan-requests/{ref}/approve", {"by": "bob", "role": "agent"}))
        refs.append(ref)
    rasa.take()
    barrier, counts = threading.Barrier(2), []

    def run():
        barrier.wait()
        counts.append(Counter(worker.run_once(app)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [r.json[0]["metadata"]["notice_id"] for r in deliveries(rasa)]
    assert len(sent) == len(set(sent)) == 6 and sum(c["sent"] for c in counts) == 6
    assert all([m.status.value for m in messages(app, ref)] == ["sent"] for ref in refs)


def test_staff_requests_do_not_wait_on_rasa(app, client, desk, book, rasa):
    ref, _ = under_review(client, desk, book)
    rasa.delay = 3.0  # a slow Rasa: the decision returns at once all the same
    started = datetime.now()
    ok(desk.act(f"/api/v1/plan-requests/{ref}/approve", {"by": "bob", "role": "agent"}))
    assert (datetime.now() - started).total_seconds() < 2.5 and rasa.take() == []


# --------------------------------------------------------------------------- what the backend says

def due_loan(book, cust, due: date):
    return book.loan(cust.id, "6000", "0.12", 6, date(due.year, due.month - 1, due.day))


def the_notice(app, kind: OutreachKind) -> OutreachNotice:
    with app.state.sessionmaker() as db:
        return db.scalar(select(OutreachNotice).where(OutreachNotice.kind == kind))


def said(app, notice: OutreachNotice, day: date) -> str | None:
    with app.state.sessionmaker() as db:
        got = render.render(db, app.state.rules, db.get(OutreachNotice, notice.id), day)
        return got.text if got else None


def test_the_texts_borrowers_read(app, empty_book):
    book = empty_book
    cust = book.customer()
    loan = due_loan(book, cust, date(2026, 12, 10))
    with app.state.sessionmaker() as db:
        planner.plan_day(db, app.state.rules, date(2026, 12, 7), shanghai(2026, 12, 7, 7))
        row = next(r for r in accounts.schedule(accounts.get_loan(db, loan.id), app.state.rules, date(2026, 12, 7))
                   if r.seq == 1)
    name = f"{app.state.rules.products['xiaofeidai'].name}（尾号{loan.loan_no[-4:]}）"
    assert said(app, the_notice(app, OutreachKind.due_in_3_days), date(2026, 12, 7)) == (
        f"温馨提醒：您的{name}本期应还 ¥{row.amount_outstanding:,.2f}，还款日为12月10日（周四），还有3天。"
        f"{HOW_TO_PAY}如已还款请忽略本消息。回复「退订」可取消还款提醒。")
    # a week later, overdue: the day's figures, penalty interest included
    with app.state.sessionmaker() as db:
        planner.plan_day(db, app.state.rules, date(2026, 12, 17), shanghai(2026, 12, 17, 7))
        s = accounts.loan_summary(accounts.get_loan(db, loan.id), app.state.rules, date(2026, 12, 17))
    assert s.days_past_due == 7 and s.penalty_interest > 0
    assert said(app, the_notice(app, OutreachKind.overdue_7), date(2026, 12, 17)) == (
        f"您好，您的{name}已逾期7天，目前逾期应还 ¥{s.overdue_amount:,.2f}（含罚息 ¥{s.penalty_interest:,.2f}）。"
        f"请尽快还款，以免继续产生罚息。{HOW_TO_PAY}如暂时有困难，可以回复「申请分期」了解协商还款；如已还款请忽略本消息。")
    rating = OutreachNotice(kind=OutreachKind.csat_followup, payload={"case_id": 7, "reference": "HO20261122-0003"})
    with app.state.sessionmaker() as db:
        got = render.render(db, app.state.rules, rating, date(2026, 12, 7))
    assert (got.text, got.events) == (
        "您好，昨天人工客服为您处理了问题（工单号HO20261122-0003），想请您为这次服务打个分，您的评价会帮助我们改进。",
        [{"event": "slot", "name": "handoff_case", "value": 7},
         # the rating form opens and asks, as it did after the notice (domain.yml utter_ask_csat_score)
         {"event": "active_loop", "name": "csat_form"}, {"event": "slot", "name": "requested_slot", "value": "csat_score"},
         {"event": "bot", "text": "请为本次人工服务打分：5分非常满意，1分非常不满意。", "data": {"buttons": [
             {"title": "5分 非常满意", "payload": "5"}, {"title": "4分", "payload": "4"}, {"title": "3分", "payload": "3"},
             {"title": "2分", "payload": "2"}, {"title": "1分 非常不满意", "payload": "1"}]}}])
    with app.state.sessionmaker() as db:
        offer = render.render(db, app.state.rules, OutreachNotice(kind=OutreachKind.hardship_offer, payload={}), date(2026, 12, 7))
    assert offer.text.startswith("您好，注意到您近半年有过两次还款逾期。") and offer.events == []


def test_paid_since_planned_says_nothing(app, empty_book):
    cust = empty_book.customer()
    loan = due_loan(empty_book, cust, date(2026, 12, 10))
    with app.state.sessionmaker() as db:
        planner.plan_day(db, app.state.rules, date(2026, 12, 7), shanghai(2026, 12, 7, 7))
        for inst in accounts.get_loan(db, loan.id).instalments:  # paid after planning
            if inst.seq == 1:
                inst.paid_principal, inst.paid_interest, inst.paid_fee = inst.principal, inst.interest, inst.fee
        db.commit()
    sender = RecordingSender()
    with app.state.sessionmaker() as db:
        got = dispatcher.dispatch_due(db, Outreach(app.state.rules, ManualClock(shanghai(2026, 12, 7, 8)).now, sender))
    assert got == Counter({"skipped": 1}) and sender.calls == []
    n = the_notice(app, OutreachKind.due_in_3_days)
    assert (n.status.value, n.last_error) == ("skipped", "paid")
    with app.state.sessionmaker() as db:
        assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_the_identity_question_comes_first_on_sms(app, empty_book):
    cust = empty_book.customer("王小明")
    loan = due_loan(empty_book, cust, date(2026, 12, 10))
    with app.state.sessionmaker() as db:
        planner.plan_day(db, app.state.rules, date(2026, 12, 17), shanghai(2026, 12, 17, 7))
    sender = RecordingSender()
    with app.state.sessionmaker() as db:
        dispatcher.dispatch_due(db, Outreach(app.state.rules, ManualClock(shanghai(2026, 12, 17, 8)).now, sender))
    (conv, channel, text, marker), = sender.calls
    n = the_notice(app, OutreachKind.overdue_7)
    assert (conv, channel, marker) == (f"sms:{cust.sms_id}", "sms", {"notice_id": n.notice_id, "kind": "overdue_7"})
    assert text == "您好，这里是示例消费金融客服。请问您是王**本人吗？请回复「是」或「不是」。"
    assert sender.events == [(conv, [{"event": "slot", "name": "answer_context", "value": "identity_check"},
                                     {"event": "slot", "name": "pending_notice", "value": n.notice_id}])]
    assert loan.id == n.loan_id
