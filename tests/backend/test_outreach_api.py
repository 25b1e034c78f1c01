"""The outreach API (GET /api/v1/outreach/notices/{notice_id}, GET /api/v1/outreach/summary), the
dashboard's reminder numbers, and a decision taken at night: told at 08:00 by the scheduler's
dispatcher, not at once. SQLite and PostgreSQL; Rasa is tests/backend/fake_rasa.FakeRasa.
"""
from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import select

from backend.models import OutreachKind, OutreachNotice
from backend.services import dashboard
from backend.services.outreach import dispatcher, planner, worker
from backend.services.outreach.context import Outreach
from backend.services.outreach.sender import RasaSender
from backend.services.rasa_api import RasaClient
from fake_rasa import FakeRasa
from texts.formatting import yuan
from testkit import (
    HEADERS, SCHEDULER, ManualClock, RecordingSender, assert_error, audit_since, last_audit_id, ok, set_customer, set_identity,
    shanghai,
)

TOKEN = "rasa-api-token"


def due_loan(book, cust, due: date):
    return book.loan(cust.id, "6000", "0.12", 6, date(due.year, due.month - 1, due.day))


class FailsFor(RecordingSender):
    """Rasa fails for one conversation."""

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part

    def send(self, conversation, *args):
        self.fail = "http_500" if self.part in conversation else None
        return super().send(conversation, *args)


def dispatch(app, clock, sender, actor="scheduler") -> Counter:
    with app.state.sessionmaker() as db:
        return dispatcher.dispatch_due(db, Outreach(app.state.rules, clock.now, sender, holder="test", actor=actor))


def test_the_bot_reads_a_notice_by_its_id(app, client, empty_book):
    cust = empty_book.customer()
    loan = due_loan(empty_book, cust, date(2026, 12, 10))
    with app.state.sessionmaker() as db:
        planner.plan_day(db, app.state.rules, date(2026, 12, 7), shanghai(2026, 12, 7, 7))
        n = db.scalar(select(OutreachNotice))
    first = loan.rows[0]
    got = ok(client.get(f"/api/v1/outreach/notices/{n.notice_id}", headers=HEADERS))
    text = got.pop("text")  # the message as the backend words it today (held behind the identity question)
    assert got == {
        "notice_id": n.notice_id, "kind": "due_in_3_days", "customer_id": cust.id, "loan_id": loan.id,
        "instalment_seq": 1, "status": "planned", "channel": None,
        "payload": {"due_date": "2026-12-10", "amount": str(first.principal + first.interest), "loan_status": "active"}}
    assert text.startswith("温馨提醒：您的") and f"本期应还 {yuan(first.principal + first.interest)}，还款日为12月10日（周四），还有3天。" in text
    dispatch(app, ManualClock(shanghai(2026, 12, 7, 8)), RecordingSender())
    got = ok(client.get(f"/api/v1/outreach/notices/{n.notice_id}", headers=HEADERS))
    assert (got["status"], got["channel"]) == ("sent", "sms")
    assert_error(client.get("/api/v1/outreach/notices/00000000-0000-4000-8000-000000000000", headers=HEADERS),
                 404, "not_found")
    assert client.get(f"/api/v1/outreach/notices/{n.notice_id}").status_code == 401


def test_a_decision_notice_does_not_show_the_conversation(app, client, empty_book):
    cust = empty_book.customer()
    notice_id = empty_book.outreach_notice(cust.id, kind=OutreachKind.complaint_update, service=True, payload={
        "reference": "CP20261207-0001", "conversation": f"sms:{cust.sms_id}", "channel": "sms"})
    got = ok(client.get(f"/api/v1/outreach/notices/{notice_id}", headers=HEADERS))
    assert got["payload"] == {"reference": "CP20261207-0001", "channel": "sms"}
    assert cust.phone not in str(got)


def test_summary_counts_what_the_log_says(app, client, empty_book):
    book = empty_book
    a, b, c, d = (book.customer() for _ in range(4))
    due_loan(book, a, date(2026, 12, 10))
    due_loan(book, a, date(2026, 12, 6))  # a: two today: the overdue notice goes, the reminder is capped
    due_loan(book, b, date(2026, 12, 10))
    set_identity(app.state.sessionmaker, b.id, "sms", opted_out=True)  # b: no SMS, web not connected
    due_loan(book, c, date(2026, 12, 8))
    set_customer(app.state.sessionmaker, c.id, consent_reminders=False)  # c: unsubscribed
    due_loan(book, d, date(2026, 12, 10))  # d: sent
    with app.state.sessionmaker() as db:
        planner.plan_day(db, app.state.rules, date(2026, 12, 7), shanghai(2026, 12, 7, 7))
    dispatch(app, ManualClock(shanghai(2026, 12, 7, 8)), RecordingSender())
    got = ok(client.get("/api/v1/outreach/summary", headers=SCHEDULER, params={"since": "2026-12-07T00:00:00+08:00"}))
    assert got == {
        "since": "2026-12-07T00:00:00+08:00",
        "sent": {"overdue_1": {"sms": 1}, "due_in_3_days": {"sms": 1}},
        "skipped": {"unsubscribed": {"due_in_1_day": 1}},
        "deferred": {"daily_cap": {"due_in_3_days": 1}, "no_channel": {"due_in_3_days": 1}},
        "failed": {}, "rasa_errors": {}, "no_reply": {}, "expired": {},
        "waiting": {"planned": 2, "sending": 0},
    }
    assert ok(client.get("/api/v1/outreach/summary", headers=SCHEDULER, params={"since": "2026-12-08T00:00:00"}))["sent"] == {}


def test_the_dashboard_counts_reminders_sent_answered_and_failed(app, empty_book):
    book = empty_book
    answered, silent, failing = (book.customer() for _ in range(3))
    for cust in (answered, silent, failing):
        due_loan(book, cust, date(2026, 12, 10))
    with app.state.sessionmaker() as db:
        planner.plan_day(db, app.state.rules, date(2026, 12, 7), shanghai(2026, 12, 7, 7))
    sender = FailsFor(failing.sms_id)
    clock = ManualClock(shanghai(2026, 12, 7, 8))
    rules = app.state.rules.model_copy(update={"outreach": app.state.rules.outreach.model_copy(update={"max_attempts": 1})})
    with app.state.sessionmaker() as db:
        dispatcher.dispatch_due(db, Outreach(rules, clock.now, sender, holder="test"))
    set_identity(app.state.sessionmaker, answered.id, "sms", last_inbound_at=shanghai(2026, 12, 7, 9))
    set_identity(app.state.sessionmaker, silent.id, "sms", last_inbound_at=shanghai(2026, 12, 7, 7))
    with app.state.sessionmaker() as db:
        out = dashboard.dashboard(db, app.state.rules, shanghai(2026, 12, 7, 15))
        assert out["reminders"] == {"sent": 2, "answered": 1, "failed": 1, "available": True}
        before = dashboard.dashboard(db, app.state.rules, shanghai(2026, 12, 6, 15))
        assert before["reminders"] == {"sent": 0, "answered": 0, "failed": 0, "available": True}


# --------------------------------------------------------------------------- a decision at night

@pytest.fixture
def fake():
    with FakeRasa(TOKEN) as f:
        yield f


def test_a_decision_at_22_00_is_told_at_08_00(desk, app, client, empty_book, fake):
    cust = empty_book.customer()
    loan = empty_book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    original_rasa, original_clock = app.state.rasa, app.state.clock
    app.state.rasa, app.state.clock = RasaClient(fake.url, TOKEN), ManualClock(shanghai(2026, 11, 23, 21, 30))
    try:
        conv = f"sms:{cust.sms_id}"
        ref = ok(client.post("/api/v1/plan-requests", headers=HEADERS, json={
            "conversation": conv, "channel": "sms", "customer_id": cust.id, "loan_id": loan.id,
            "reason_category": "income_drop", "plan_type": "instalment", "months": 12}), 201)["reference"]
        ok(desk.act(f"/api/v1/plan-requests/{ref}/review", {"by": "alice"}))
        after = last_audit_id(app)
        app.state.clock.at = shanghai(2026, 11, 23, 22)
        assert ok(desk.act(f"/api/v1/plan-requests/{ref}/reject", {"by": "bob", "role": "agent", "reason": "收入证明不足"}))["status"] == "rejected"
        worker.run_once(app)  # the backend's outbox worker takes it up: outside the window, it waits
    finally:
        app.state.rasa, app.state.clock = original_rasa, original_clock
    assert [r for r in fake.take() if r.is_delivery] == []  # nothing at 22:00
    notices = [r for r in audit_since(app, after) if r[1].startswith("notice_")]
    assert [(a, act, d) for a, act, _, _, d in notices] == [("bob", "notice_deferred", {
        "reference": ref, "intent": "EXTERNAL_plan_decision", "channel": "sms", "via": "console",
        "reason": "window", "until": "2026-11-24T08:00:00+08:00"})]
    clock = ManualClock(shanghai(2026, 11, 24, 7, 59))
    sender = RasaSender(RasaClient(fake.url, TOKEN))
    assert dispatch(app, clock, sender) == Counter()
    clock.at = shanghai(2026, 11, 24, 8)
    assert dispatch(app, clock, sender) == Counter({"sent": 1})
    (req,) = [r for r in fake.take() if r.is_delivery]
    with app.state.sessionmaker() as db:
        n = db.scalar(select(OutreachNotice).where(OutreachNotice.kind == OutreachKind.plan_decision))
    assert (req.path, req.query["output_channel"], req.query["execute_side_effects"], req.json) == (
        f"/conversations/{conv}/tracker/events", "sms", "true",
        [{"event": "bot", "text": f"很抱歉，您的还款计划申请（编号 {ref}）未获批准，原因：收入证明不足。如有疑问或情况有变化，"
                                  "可以回复「转人工」与客服沟通，也可以重新申请。",
          "metadata": {"notice_id": n.notice_id, "kind": "plan_decision"}}, {"event": "action", "name": "action_listen"}])
    told = [r for r in audit_since(app, after) if r[1] == "notice_sent"]
    assert [(a, act, d) for a, act, _, _, d in told] == [("scheduler", "notice_sent", {
        "reference": ref, "intent": "EXTERNAL_plan_decision", "channel": "sms", "via": "scheduler"})]


def test_a_dispatch_error_never_fails_the_decision(desk, app, client, empty_book, monkeypatch):
    monkeypatch.setattr(app.state, "clock", ManualClock(shanghai(2026, 11, 23, 10)))  # inside the window
    cust = empty_book.customer()
    conv = f"sms:{cust.sms_id}"
    ref = ok(client.post("/api/v1/complaints", headers=HEADERS, json={
        "conversation": conv, "channel": "sms", "customer_id": cust.id, "category": "fees",
        "description": "多收了服务费"}), 201)["reference"]

    def broken(*args, **kw):
        raise RuntimeError("a bug in the dispatcher")

    monkeypatch.setattr(dispatcher, "process", broken)
    after = last_audit_id(app)
    assert ok(desk.act(f"/api/v1/complaints/{ref}/start", {"by": "alice"}))["status"] == \
        "in_progress"
    worker.run_once(app)  # the outbox worker fails on it; the decision stands
    rows = [(act, d.get("error")) for _, act, _, _, d in audit_since(app, after)]
    assert rows == [("complaint.started", None), ("notice_failed", "internal_error")]
    with app.state.sessionmaker() as db:  # left claimed: the scheduler recovers it after stale_sending_seconds
        assert db.scalar(select(OutreachNotice.status).where(OutreachNotice.kind == OutreachKind.complaint_update)).value \
            == "sending"
