"""A month of a small loan book through the scheduler's own jobs (scheduler.jobs.plan_notices and
dispatch_notices, the real business clock moved with time-machine), on SQLite and PostgreSQL: exactly
which notices go out on which day and channel, and what the rules held back.

Every day of December 2026: plan at 07:00, dispatch at 08:00; the day's events at 12:00, then plan and
dispatch (the hourly runs); dispatch again at 20:30. Rules: config/business.yml (``outreach``).

The borrowers (loans of ¥6,000 over 6 months; first due date in December, the next in January):
* Ana (SMS): due 12-10, pays on 12-09 at noon.
* Bo (WeChat, verified, last message 11-30 20:00): due 12-04, never pays; writes on WeChat 12-10.
* Cai (SMS, unsubscribed): instalments due 11-07 and 12-07, never pays.
* Dai (web): due 12-15; writes in the web chat at 07:55 on 12-12; pays on 12-15.
* Eve (SMS, no verified web identity): due 12-05; says 「你打错了」 by SMS on 12-02 (wrong person).
* Fu (SMS): due 12-12; a handoff case from 12-10 noon to 12-11 noon, unrated; pays on 12-12.
* Gao (SMS): due 12-17; a collection complaint pauses reminders from 12-13 noon to 12-20 noon.
* Hu (SMS): due 12-21, never pays; promises on 12-22 to pay on 12-26.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from sqlalchemy import select, update

from backend.core.clock import Clock
from backend.models import (
    Channel, ChannelIdentity, ComplaintCategory, ComplaintPriority, ComplaintStatus, ComplaintTicket, HandoffCase,
    HandoffReason, HandoffStatus, IdentityStatus, Loan, OutreachNotice, PromiseStatus, PromiseToPay,
)
from backend.services.ledger import apply_payment, position
from scheduler import jobs
from testkit import RecordingSender, set_customer, set_identity, shanghai


def _loan(book, cust, first_due: date):
    return book.loan(cust.id, "6000", "0.12", 6, date(first_due.year, first_due.month - 1, first_due.day))


@pytest.fixture
def month(app, empty_book):
    book, sessions = empty_book, app.state.sessionmaker
    people = {name: book.customer(name, preferred=pref) for name, pref in (
        ("Ana", Channel.sms), ("Bo", Channel.wechat), ("Cai", Channel.sms), ("Dai", Channel.web),
        ("Eve", Channel.sms), ("Fu", Channel.sms), ("Gao", Channel.sms), ("Hu", Channel.sms))}
    loans = {name: _loan(book, people[name], d) for name, d in (
        ("Ana", date(2026, 12, 10)), ("Bo", date(2026, 12, 4)), ("Dai", date(2026, 12, 15)),
        ("Eve", date(2026, 12, 5)), ("Fu", date(2026, 12, 12)), ("Gao", date(2026, 12, 17)),
        ("Hu", date(2026, 12, 21)))}
    loans["Cai"] = book.loan(people["Cai"].id, "6000", "0.12", 6, date(2026, 10, 7))
    set_identity(sessions, people["Bo"].id, "wechat", verified=True, last_inbound_at=shanghai(2026, 11, 30, 20))
    set_customer(sessions, people["Cai"].id, consent_reminders=False)
    set_identity(sessions, people["Eve"].id, "web", verified=False)
    sender = RecordingSender()
    jobs.RUNTIME = jobs.Runtime(rules=app.state.rules, sessions=sessions, clock=Clock(), sender=sender, holder="month")
    yield people, loans, sender
    jobs.RUNTIME = None


def test_a_month_of_outreach(app, month):
    people, loans, sender = month
    sessions, rules = app.state.sessionmaker, app.state.rules
    who = {f"{ch}:{i.external_id}": name for name, c in people.items() for ch in ("sms", "web", "wechat")
           for i in _identities(sessions, c.id, ch)}
    sent: list[tuple] = []

    def run(day: date, hh: int, mm: int, *steps) -> None:
        with time_machine.travel(shanghai(day.year, day.month, day.day, hh, mm), tick=False):
            for step in steps:
                step()
        sent.extend((day.strftime("%m-%d"), who[conv], entities["kind"], channel)
                    for conv, channel, _, entities in sender.take())

    def pay(name: str, day: date) -> None:
        with sessions() as db:
            loan = db.get(Loan, loans[name].id)
            apply_payment(loan, rules, position(loan, rules, day).rows[0].total_due, day)
            db.commit()

    def events(day: date) -> None:
        p, at = people, shanghai(day.year, day.month, day.day, 12)
        with sessions() as db:
            match day.day:
                case 2:
                    db.execute(update(ChannelIdentity).where(ChannelIdentity.customer_id == p["Eve"].id,
                                                             ChannelIdentity.channel == Channel.sms)
                               .values(status=IdentityStatus.wrong_person, verified=False))
                case 10:
                    db.execute(update(ChannelIdentity).where(ChannelIdentity.customer_id == p["Bo"].id,
                                                             ChannelIdentity.channel == Channel.wechat)
                               .values(last_inbound_at=at))
                    db.add(HandoffCase(reference="HO20261210-0001", conversation=f"sms:{p['Fu'].sms_id}",
                                       active_conversation=f"sms:{p['Fu'].sms_id}", channel=Channel.sms,
                                       customer_id=p["Fu"].id, reason=HandoffReason.request_human, priority=3,
                                       summary="想和人工谈谈", status=HandoffStatus.open, created_at=at))
                case 11:
                    db.execute(update(HandoffCase).where(HandoffCase.customer_id == p["Fu"].id).values(
                        status=HandoffStatus.closed, active_conversation=None, closed_at=at))
                case 13:
                    db.add(ComplaintTicket(
                        reference="CP20261213-0001", customer_id=p["Gao"].id, conversation=f"sms:{p['Gao'].sms_id}",
                        channel=Channel.sms, category=ComplaintCategory.collection, description="催收太频繁",
                        status=ComplaintStatus.received, priority=ComplaintPriority.high, received_at=at,
                        due_at=at + timedelta(days=15), pauses_reminders=True))
                case 20:
                    db.execute(update(ComplaintTicket).where(ComplaintTicket.customer_id == p["Gao"].id).values(
                        pauses_reminders=False, reminders_cleared_at=at, reminders_cleared_by="agent1"))
                case 22:
                    db.add(PromiseToPay(customer_id=p["Hu"].id, loan_id=loans["Hu"].id, promised_date=date(2026, 12, 26),
                                        amount=Decimal("1036.00"), channel="sms", status=PromiseStatus.open,
                                        created_at=at))
            db.commit()
        for name, paid_on in (("Ana", 9), ("Dai", 15), ("Fu", 12)):
            if day.day == paid_on:
                pay(name, day)

    for offset in range(31):
        day = date(2026, 12, 1) + timedelta(days=offset)
        run(day, 7, 0, jobs.plan_notices)
        if day.day == 12:  # Dai writes in the web chat at 07:55, before the morning dispatch
            set_identity(sessions, people["Dai"].id, "web", last_inbound_at=shanghai(2026, 12, 12, 7, 55))
        run(day, 8, 0, jobs.dispatch_notices)
        run(day, 12, 0, lambda d=day: events(d))
        run(day, 12, 5, jobs.plan_notices, jobs.dispatch_notices)
        run(day, 20, 30, jobs.dispatch_notices)

    assert sorted(sent) == [  # by day, then borrower
        ("12-01", "Bo", "due_in_3_days", "wechat"),  # within 48 h of his last WeChat message
        ("12-02", "Eve", "due_in_3_days", "sms"),
        ("12-03", "Bo", "due_in_1_day", "sms"),  # the WeChat window closed 12-02 20:00
        ("12-04", "Bo", "due_today", "sms"),
        ("12-07", "Ana", "due_in_3_days", "sms"),
        ("12-07", "Cai", "overdue_30", "sms"),  # unsubscribed, but the contract requires this one
        ("12-08", "Bo", "overdue_3", "sms"),  # held on 12-07 by the 3-a-week cap (12-01, 12-03, 12-04)
        ("12-09", "Ana", "due_in_1_day", "sms"),  # at 08:00; she pays at noon: nothing on the due date
        ("12-09", "Fu", "due_in_3_days", "sms"),
        ("12-11", "Bo", "overdue_7", "wechat"),  # he wrote on WeChat yesterday: the window is open again
        ("12-12", "Dai", "due_in_3_days", "web"),  # she is in the web chat (07:55)
        ("12-12", "Fu", "csat_followup", "sms"),  # service notice: its own cap, the day's reminder goes too
        ("12-12", "Fu", "due_today", "sms"),
        ("12-14", "Dai", "due_in_1_day", "sms"),  # web no longer connected; WeChat not verified
        ("12-15", "Dai", "due_today", "sms"),
        ("12-18", "Hu", "due_in_3_days", "sms"),
        ("12-19", "Bo", "overdue_15", "sms"),
        ("12-20", "Hu", "due_in_1_day", "sms"),
        ("12-21", "Hu", "due_today", "sms"),
        ("12-24", "Gao", "overdue_7", "sms"),  # the complaint's pause was cleared on 12-20
        ("12-25", "Hu", "promise_reminder", "sms"),  # the day before the promised date
        ("12-28", "Hu", "overdue_7", "sms"),  # the day after the promised date has passed: notices resume
    ]
    held = _held_back(sessions, people)
    assert held == {
        ("Bo", "overdue_1", "expired", "weekly_cap"),  # 12-05 and 12-06 capped, stale on 12-07
        ("Cai", "due_in_3_days", "skipped", "unsubscribed"), ("Cai", "due_in_1_day", "skipped", "unsubscribed"),
        ("Cai", "due_today", "skipped", "unsubscribed"), ("Cai", "overdue_1", "skipped", "unsubscribed"),
        ("Cai", "hardship_offer", "skipped", "unsubscribed"),  # two instalments unpaid past due from 12-08
        ("Cai", "overdue_3", "skipped", "unsubscribed"), ("Cai", "overdue_7", "skipped", "unsubscribed"),
        ("Cai", "overdue_15", "skipped", "unsubscribed"),
        ("Eve", "due_in_1_day", "skipped", "wrong_person"), ("Eve", "due_today", "skipped", "wrong_person"),
        ("Eve", "overdue_1", "skipped", "wrong_person"), ("Eve", "overdue_3", "skipped", "wrong_person"),
        ("Eve", "overdue_7", "skipped", "wrong_person"), ("Eve", "overdue_15", "skipped", "wrong_person"),
        ("Fu", "due_in_1_day", "skipped", "handoff"),
        ("Gao", "due_in_3_days", "skipped", "complaint_pause"), ("Gao", "due_in_1_day", "skipped", "complaint_pause"),
        ("Gao", "due_today", "skipped", "complaint_pause"), ("Gao", "overdue_1", "skipped", "complaint_pause"),
        ("Gao", "overdue_3", "skipped", "complaint_pause"),  # 12-20 08:00, cleared at noon
        ("Hu", "overdue_1", "skipped", "promise"),  # capped on 12-22, then the promise holds it
        ("Hu", "overdue_3", "skipped", "promise"),
    }
    with sessions() as db:  # nothing left over, nothing sent twice
        rows = list(db.scalars(select(OutreachNotice)))
    assert {n.status.value for n in rows} <= {"sent", "skipped", "expired", "planned"}
    assert [n.kind.value for n in rows if n.status.value == "planned"] == []


def _identities(sessions, customer_id: int, channel: str):
    with sessions() as db:
        return list(db.scalars(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id,
                                                             ChannelIdentity.channel == Channel(channel))))


def _held_back(sessions, people) -> set[tuple]:
    names = {c.id: name for name, c in people.items()}
    with sessions() as db:
        return {(names[n.customer_id], n.kind.value, n.status.value, n.last_error)
                for n in db.scalars(select(OutreachNotice).where(OutreachNotice.status != "sent"))}
