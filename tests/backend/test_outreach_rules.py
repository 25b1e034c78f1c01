"""Every outreach rule, each on its own (backend.services.outreach: rules, routing, dispatcher), on
SQLite and PostgreSQL, with a recording Sender (testkit.RecordingSender) and a clock the test sets.

Rules from config/business.yml (``outreach``): window 08:00-21:00 Asia/Shanghai; 1 automated notice
per borrower a day and 3 in 7 days; 3 service notices a day; contract-required kinds [overdue_30];
channel order wechat, sms, web after the preferred one; WeChat window 48 h; web connected = wrote in
the last 15 minutes; no channel: retry after 60 minutes; retries after 1, 5 and 30 minutes, the 4th
failed call is a permanent failure. Books start on Monday 2026-12-07.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from backend.models import (
    Channel, ComplaintCategory, ComplaintPriority, ComplaintStatus, ComplaintTicket, HandoffCase, HandoffReason,
    HandoffStatus, IdentityStatus, Instalment, Loan, LoanStatus, OutreachAttempt, OutreachKind, OutreachNotice,
    PromiseStatus, PromiseToPay,
)
from backend.core.config import Settings, effective_rules
from backend.services.outreach import dispatcher, kinds, outbox, planner
from backend.services.outreach.context import Outreach
from backend.services.outreach.summary import summary
from testkit import ManualClock, RecordingSender, local, set_customer, set_identity, shanghai

MON = date(2026, 12, 7)


class Env:
    """One test's outreach world: the app's database, a clock, a recording sender."""

    def __init__(self, app, book) -> None:
        self.app, self.book, self.rules = app, book, app.state.rules
        self.sessions = app.state.sessionmaker
        self.clock = ManualClock(shanghai(2026, 12, 7, 7))
        self.sender = RecordingSender()
        self.ctx = Outreach(self.rules, self.clock.now, self.sender, holder="test")

    def at(self, *when) -> "Env":
        self.clock.at = shanghai(*when)
        return self

    def plan(self) -> dict:
        with self.sessions() as db:
            return planner.plan_day(db, self.rules, self.clock.at.date(), self.clock.at)

    def dispatch(self) -> list[tuple[str, str, str]]:
        """Run the dispatcher now; (kind, channel, conversation) of what it sent."""
        with self.sessions() as db:
            dispatcher.dispatch_due(db, self.ctx)
        return [(e["kind"], ch, conv) for conv, ch, _, e in self.sender.take()]

    def day(self, *when) -> list[tuple[str, str, str]]:
        """Plan and dispatch at that moment."""
        self.at(*when).plan()
        return self.dispatch()

    def notices(self, **where) -> list[OutreachNotice]:
        with self.sessions() as db:
            stmt = select(OutreachNotice).order_by(OutreachNotice.id)
            for k, v in where.items():
                stmt = stmt.where(getattr(OutreachNotice, k) == v)
            return list(db.scalars(stmt))

    def one(self, **where) -> OutreachNotice:
        (n,) = self.notices(**where)
        return n

    def log(self, notice: OutreachNotice) -> list[tuple]:
        with self.sessions() as db:
            rows = db.scalars(select(OutreachAttempt).where(OutreachAttempt.notice_id == notice.id)
                              .order_by(OutreachAttempt.id))
            return [(local(a.at).strftime("%m-%d %H:%M"), a.outcome, a.channel.value if a.channel else None)
                    for a in rows]

    def add(self, kind: OutreachKind, customer_id: int | None, key: str, valid_days: int = 3, **extra) -> int:
        """A notice planned now, valid for ``valid_days`` (for rules that need no loan behind it)."""
        now = self.clock.at
        row = planner._row(kind, key, customer_id, now.date(), now, now + timedelta(days=valid_days), now,
                           extra.pop("payload", {}), **extra)
        with self.sessions() as db:
            planner.insert_new(db, [row])
            notice = db.scalar(select(OutreachNotice).where(OutreachNotice.dedupe_key == key))
            if kind in kinds.DECISIONS and notice.payload.get("conversation"):  # its message, as a decision saves it
                outbox.queue(db, notice, notice.payload["conversation"], notice.payload["channel"], "决定通知", [], now)
            db.commit()
            return notice.id


@pytest.fixture
def env(app, empty_book) -> Env:
    return Env(app, empty_book)


def loan_due(env: Env, cust, due: date, **kw):
    start = date(due.year - (due.month == 1), (due.month - 2) % 12 + 1, due.day)
    return env.book.loan(cust.id, "6000", "0.12", 6, start, **kw)


def sms(cust) -> str:
    return f"sms:{cust.sms_id}"


# --------------------------------------------------------------------------- the contact window

def test_a_notice_that_comes_due_at_night_waits_for_eight_in_the_morning(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    env.at(2026, 12, 7, 7).plan()
    assert env.at(2026, 12, 7, 7, 59).dispatch() == []  # planned for 08:00
    # the scheduler was down all day and comes back at 22:00: the notice, still valid, waits
    assert env.at(2026, 12, 7, 22).dispatch() == []
    n = env.one()
    assert (n.status.value, local(n.next_attempt_at), n.last_error) == ("planned", shanghai(2026, 12, 8, 8), "window")
    assert env.at(2026, 12, 8, 7, 59).dispatch() == []
    assert env.at(2026, 12, 8, 8).dispatch() == [("due_in_3_days", "sms", sms(cust))]
    assert env.log(n) == [("12-07 22:00", "deferred:window", None), ("12-08 08:00", "sent", "sms")]
    assert local(env.one().sent_at) == shanghai(2026, 12, 8, 8)


def test_at_21_00_the_window_is_closed(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    env.at(2026, 12, 7, 7).plan()
    assert env.at(2026, 12, 7, 20, 59).dispatch() == [("due_in_3_days", "sms", sms(cust))]
    cust2 = env.book.customer()
    loan_due(env, cust2, date(2026, 12, 10))
    assert env.at(2026, 12, 7, 21).plan()["inserted"] == 1
    assert env.dispatch() == []
    assert local(env.one(customer_id=cust2.id).planned_for) == shanghai(2026, 12, 8, 8)


# --------------------------------------------------------------------------- caps

def test_one_automated_notice_a_day_the_most_serious_first(env):
    cust = env.book.customer()
    soon = loan_due(env, cust, date(2026, 12, 10))  # due in 3 days
    late = loan_due(env, cust, date(2026, 12, 6))  # 1 day past due
    assert env.day(2026, 12, 7, 8) == [("overdue_1", "sms", sms(cust))]
    waiting = env.one(loan_id=soon.id)
    assert (waiting.status.value, waiting.last_error, local(waiting.next_attempt_at)) == (
        "planned", "daily_cap", shanghai(2026, 12, 8, 8))
    assert env.at(2026, 12, 7, 15).dispatch() == []  # still capped today
    assert env.day(2026, 12, 8, 8) == [("due_in_3_days", "sms", sms(cust))]  # valid 2 days: goes tomorrow
    assert env.log(waiting) == [("12-07 08:00", "deferred:daily_cap", None), ("12-08 08:00", "sent", "sms")]
    assert env.one(loan_id=late.id).status.value == "sent"


def test_three_automated_notices_in_seven_days(env):
    cust = env.book.customer()
    loan = loan_due(env, cust, date(2026, 12, 24))  # an unpaid instalment the reminders can name
    due = {"due_date": loan.rows[0].due_date.isoformat()}
    ids = []
    for day in (7, 8, 9, 10):
        env.at(2026, 12, day, 8)
        ids.append(env.add(OutreachKind.due_in_3_days, cust.id, f"test:week:{day}", valid_days=14,
                           loan_id=loan.id, seq=1, payload=due))
        env.dispatch()
    with env.sessions() as db:
        sent = [local(n.sent_at).day for n in db.scalars(select(OutreachNotice).where(
            OutreachNotice.status == "sent").order_by(OutreachNotice.sent_at))]
    assert sent == [7, 8, 9]
    fourth = env.one(id=ids[3])
    assert (fourth.status.value, fourth.last_error) == ("planned", "weekly_cap")
    for day in (11, 12, 13):  # 12-07, 12-08 and 12-09 are still within the last 7 days
        assert env.at(2026, 12, day, 8).dispatch() == []
    assert env.at(2026, 12, 14, 8).dispatch() == [("due_in_3_days", "sms", sms(cust))]  # 12-07 has dropped out
    assert [o for _, o, _ in env.log(fourth)] == ["deferred:weekly_cap"] * 4 + ["sent"]


def test_a_notice_that_the_cap_holds_past_its_validity_lapses(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 6))
    today = loan_due(env, cust, date(2026, 12, 7))  # due_today: valid today only
    assert env.day(2026, 12, 7, 8) == [("overdue_1", "sms", sms(cust))]
    lapsed = env.one(loan_id=today.id)
    assert (lapsed.status.value, lapsed.last_error) == ("expired", "daily_cap")
    assert env.log(lapsed) == [("12-07 08:00", "expired", None)]


def test_service_notices_have_their_own_cap(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    env.at(2026, 12, 7, 8).plan()
    payload = {"reference": "CP20261207-0001", "conversation": sms(cust), "channel": "sms",
               "entity_type": "complaint_ticket", "entity_id": 1}
    ids = [env.add(OutreachKind.complaint_update, cust.id, f"test:svc:{i}", payload=payload) for i in range(4)]
    sent = env.dispatch()
    assert sorted(sent) == sorted([("complaint_update", "sms", sms(cust))] * 3 + [("due_in_3_days", "sms", sms(cust))])
    fourth = env.one(id=ids[3])
    assert (fourth.status.value, fourth.last_error, local(fourth.next_attempt_at)) == (
        "planned", "service_cap", shanghai(2026, 12, 8, 8))
    assert env.at(2026, 12, 8, 8).dispatch() == [("complaint_update", "sms", sms(cust))]


# --------------------------------------------------------------------------- suppressions

def test_unsubscribed_borrowers_get_only_contract_required_notices_and_decisions(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    od30 = loan_due(env, cust, date(2026, 11, 7))
    set_customer(env.sessions, cust.id, consent_reminders=False)
    env.at(2026, 12, 7, 8).plan()
    decision = env.add(OutreachKind.plan_decision, cust.id, "test:plan", payload={
        "reference": "RP20261207-0001", "conversation": sms(cust), "channel": "sms",
        "entity_type": "plan_request", "entity_id": 1})
    sent = env.dispatch()
    assert sorted(sent) == [("overdue_30", "sms", sms(cust)), ("plan_decision", "sms", sms(cust))]
    skipped = {(n.kind.value, n.last_error) for n in env.notices(status="skipped")}
    assert skipped == {("due_in_3_days", "unsubscribed"), ("due_today", "unsubscribed")}  # od30's next instalment
    assert env.one(id=decision).status.value == "sent" and env.one(loan_id=od30.id, kind=OutreachKind.overdue_30)


def test_contract_required_kinds_are_configurable(app, env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 11, 7))
    set_customer(env.sessions, cust.id, consent_reminders=False)
    rules = app.state.rules.model_copy(update={"outreach": app.state.rules.outreach.model_copy(
        update={"contract_required_kinds": []})})
    env.rules, env.ctx.rules = rules, rules
    assert env.day(2026, 12, 7, 8) == []
    assert env.one(kind=OutreachKind.overdue_30).last_error == "unsubscribed"


def test_a_wrong_person_identity_is_never_used(env):
    cust = env.book.customer()  # preferred sms
    loan_due(env, cust, date(2026, 12, 10))
    set_identity(env.sessions, cust.id, "sms", status=IdentityStatus.wrong_person)
    set_identity(env.sessions, cust.id, "wechat", verified=True, last_inbound_at=shanghai(2026, 12, 6, 20))
    assert env.day(2026, 12, 7, 8) == [("due_in_3_days", "wechat", f"wechat:{cust.wechat_id}")]


def test_only_wrong_person_identities_skip_the_notice(env):
    cust = env.book.customer(wechat=False)
    loan_due(env, cust, date(2026, 12, 10))
    for channel in ("sms", "web"):
        set_identity(env.sessions, cust.id, channel, status=IdentityStatus.wrong_person, verified=False)
    assert env.day(2026, 12, 7, 8) == []
    n = env.one()
    assert (n.status.value, n.last_error) == ("skipped", "wrong_person")
    assert env.log(n) == [("12-07 08:00", "suppressed:wrong_person", None)]


def _open_case(env, cust, status=HandoffStatus.open) -> int:
    with env.sessions() as db:
        case = HandoffCase(reference="HO20261207-0001", conversation=sms(cust), active_conversation=sms(cust),
                           channel=Channel.sms, customer_id=cust.id, reason=HandoffReason.request_human, priority=3,
                           summary="s", status=status, created_at=shanghai(2026, 12, 7, 7))
        db.add(case)
        db.commit()
        return case.id


def test_an_open_handoff_skips_reminders_and_holds_decisions_until_staff_are_done(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    case_id = _open_case(env, cust)
    env.at(2026, 12, 7, 8).plan()
    decision = env.add(OutreachKind.plan_decision, cust.id, "test:plan", payload={
        "reference": "RP20261207-0001", "conversation": sms(cust), "channel": "sms",
        "entity_type": "plan_request", "entity_id": 1})
    assert env.dispatch() == []
    assert (env.one(kind=OutreachKind.due_in_3_days).status.value, env.one(kind=OutreachKind.due_in_3_days).last_error) \
        == ("skipped", "handoff")
    held = env.one(id=decision)
    assert (held.status.value, held.last_error, local(held.next_attempt_at)) == (
        "planned", "handoff", shanghai(2026, 12, 7, 8, 30))
    with env.sessions() as db:
        db.execute(update(HandoffCase).where(HandoffCase.id == case_id).values(
            status=HandoffStatus.closed, active_conversation=None, closed_at=shanghai(2026, 12, 7, 8, 20)))
        db.commit()
    assert env.at(2026, 12, 7, 8, 30).dispatch() == [("plan_decision", "sms", sms(cust))]


def test_a_collection_complaint_pauses_automated_notices_not_its_own_updates(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    with env.sessions() as db:
        db.add(ComplaintTicket(
            reference="CP20261206-0001", customer_id=cust.id, conversation=sms(cust), channel=Channel.sms,
            category=ComplaintCategory.collection, description="催收电话太多", status=ComplaintStatus.in_progress,
            priority=ComplaintPriority.high, received_at=shanghai(2026, 12, 6, 9), due_at=shanghai(2026, 12, 21, 9),
            pauses_reminders=True))
        db.commit()
    env.at(2026, 12, 7, 8).plan()
    env.add(OutreachKind.complaint_update, cust.id, "test:cp", payload={
        "reference": "CP20261206-0001", "conversation": sms(cust), "channel": "sms",
        "entity_type": "complaint_ticket", "entity_id": 1})
    assert env.dispatch() == [("complaint_update", "sms", sms(cust))]
    assert env.one(kind=OutreachKind.due_in_3_days).last_error == "complaint_pause"


def test_paid_settled_or_restructured_since_planning_is_skipped(env):
    cust = env.book.customer()
    paid = loan_due(env, cust, date(2026, 12, 10))
    other = env.book.customer()
    settled = loan_due(env, other, date(2026, 12, 10))
    third = env.book.customer()
    restructured = loan_due(env, third, date(2026, 12, 10))
    fourth = env.book.customer()
    replaced = loan_due(env, fourth, date(2026, 12, 10))
    env.at(2026, 12, 7, 7).plan()
    with env.sessions() as db:  # after planning, before sending
        inst = db.scalar(select(Instalment).where(Instalment.loan_id == paid.id, Instalment.seq == 1))
        inst.paid_principal, inst.paid_interest = inst.principal, inst.interest
        db.get(Loan, settled.id).status = LoanStatus.settled
        db.get(Loan, restructured.id).status = LoanStatus.restructured
        moved = db.scalar(select(Instalment).where(Instalment.loan_id == replaced.id, Instalment.seq == 1))
        moved.due_date = date(2027, 6, 10)  # the instalment now stands for another due date
        db.commit()
    assert env.at(2026, 12, 7, 8).dispatch() == []
    assert {(n.loan_id, n.last_error) for n in env.notices()} == {
        (paid.id, "paid"), (settled.id, "paid"), (restructured.id, "restructured"), (replaced.id, "restructured")}


def test_a_promise_suppresses_overdue_notices_until_the_day_after_the_promised_date(env):
    cust = env.book.customer()
    loan = loan_due(env, cust, date(2026, 12, 7))
    assert env.day(2026, 12, 7, 8) == [("due_today", "sms", sms(cust))]
    with env.sessions() as db:
        db.add(PromiseToPay(customer_id=cust.id, loan_id=loan.id, promised_date=date(2026, 12, 9),
                            amount=Decimal("1000.00"), channel="sms", status=PromiseStatus.open,
                            created_at=shanghai(2026, 12, 7, 10)))
        db.commit()
    # 12-08: overdue_1 held back by the promise; the promise reminder (the day before) goes
    assert env.day(2026, 12, 8, 8) == [("promise_reminder", "sms", sms(cust))]
    assert env.one(kind=OutreachKind.overdue_1).last_error == "promise"
    assert env.day(2026, 12, 9, 8) == []  # the promised date itself
    assert env.day(2026, 12, 10, 8) == [("overdue_3", "sms", sms(cust))]  # the day after: notices resume


def test_a_promise_reminder_is_dropped_once_the_promise_is_kept(env):
    cust = env.book.customer()
    loan = loan_due(env, cust, date(2026, 12, 20))
    with env.sessions() as db:
        promise = PromiseToPay(customer_id=cust.id, loan_id=loan.id, promised_date=date(2026, 12, 8),
                               amount=Decimal("500.00"), channel="sms", status=PromiseStatus.open,
                               created_at=shanghai(2026, 12, 6, 10))
        db.add(promise)
        db.commit()
    env.at(2026, 12, 7, 7).plan()
    with env.sessions() as db:
        db.get(PromiseToPay, promise.id).status = PromiseStatus.kept
        db.commit()
    assert env.at(2026, 12, 7, 8).dispatch() == []
    assert env.one().last_error == "promise_closed"


def test_a_csat_follow_up_is_dropped_once_the_case_is_rated(env):
    cust = env.book.customer()
    with env.sessions() as db:
        case = HandoffCase(reference="HO20261206-0009", conversation=sms(cust), channel=Channel.sms,
                           customer_id=cust.id, reason=HandoffReason.request_human, priority=3, summary="s",
                           status=HandoffStatus.closed, created_at=shanghai(2026, 12, 6, 9),
                           closed_at=shanghai(2026, 12, 6, 10))
        db.add(case)
        db.commit()
    env.at(2026, 12, 7, 7).plan()
    rated = env.book.customer()
    with env.sessions() as db:
        db.add(HandoffCase(reference="HO20261206-0010", conversation=sms(rated), channel=Channel.sms,
                           customer_id=rated.id, reason=HandoffReason.request_human, priority=3, summary="s",
                           status=HandoffStatus.closed, created_at=shanghai(2026, 12, 6, 9),
                           closed_at=shanghai(2026, 12, 6, 11)))
        db.commit()
    env.plan()
    with env.sessions() as db:
        db.execute(update(HandoffCase).where(HandoffCase.customer_id == rated.id).values(csat=4))
        db.commit()
    assert env.at(2026, 12, 7, 8).dispatch() == [("csat_followup", "sms", sms(cust))]
    assert env.one(customer_id=rated.id).last_error == "rated"


# --------------------------------------------------------------------------- channels

def test_channel_choice_preferred_first_wechat_window_sms_opt_out_web_connected(env):
    cust = env.book.customer(preferred=Channel.wechat)
    loan_due(env, cust, date(2026, 12, 10))
    loan_due(env, cust, date(2026, 12, 11))
    loan_due(env, cust, date(2026, 12, 12))
    set_identity(env.sessions, cust.id, "wechat", verified=True, last_inbound_at=shanghai(2026, 12, 5, 9))
    # 12-07 08:00: last message 47 hours ago: WeChat
    assert env.day(2026, 12, 7, 8) == [("due_in_3_days", "wechat", f"wechat:{cust.wechat_id}")]
    # 12-08: the 48-hour window has closed: the next channel in the order, SMS
    assert env.day(2026, 12, 8, 8) == [("due_in_3_days", "sms", sms(cust))]
    # 12-09 (the first loan's due_in_1_day, the third's due_in_3_days): SMS opted out, web not connected
    # (nothing within 15 minutes): nothing can deliver now
    set_identity(env.sessions, cust.id, "sms", opted_out=True)
    set_identity(env.sessions, cust.id, "web", last_inbound_at=shanghai(2026, 12, 9, 7, 40))
    assert env.day(2026, 12, 9, 8) == []
    waiting = env.one(kind=OutreachKind.due_in_1_day)
    assert (waiting.status.value, waiting.last_error, local(waiting.next_attempt_at)) == (
        "planned", "no_channel", shanghai(2026, 12, 9, 9))
    # the borrower writes in the web chat: connected, the retry goes there (the other waits: 1 a day)
    set_identity(env.sessions, cust.id, "web", last_inbound_at=shanghai(2026, 12, 9, 8, 50))
    assert env.at(2026, 12, 9, 9).dispatch() == [("due_in_1_day", "web", f"web:{cust.web_id}")]
    assert env.log(waiting) == [("12-09 08:00", "deferred:no_channel", None), ("12-09 09:00", "sent", "web")]


def with_template_rule(app, env, flag: bool, template_id: str) -> None:
    """The rules as the process has them (effective_rules): outreach.wechat_template_outside_window
    from business.yml, WECHAT_TEMPLATE_ID from the environment."""
    yml = app.state.rules.model_copy(update={"outreach": app.state.rules.outreach.model_copy(
        update={"wechat_template_outside_window": flag})})
    rules = effective_rules(yml, Settings(WECHAT_TEMPLATE_ID=template_id))
    env.rules, env.ctx.rules = rules, rules


@pytest.mark.parametrize("flag,template_id,channel", [
    (True, "tmpl-service-notice", "wechat"),  # both: the template carries it
    (True, "", "sms"),  # the rule without a template id: WeChat would send nothing
    (False, "tmpl-service-notice", "sms"),  # a template the business did not allow for outreach
])
def test_wechat_outside_the_window_only_with_the_rule_and_a_template(app, env, flag, template_id, channel):
    cust = env.book.customer(preferred=Channel.wechat)
    loan_due(env, cust, date(2026, 12, 10))
    set_identity(env.sessions, cust.id, "wechat", verified=True, last_inbound_at=shanghai(2026, 11, 1, 9))
    with_template_rule(app, env, flag, template_id)
    conversation = f"wechat:{cust.wechat_id}" if channel == "wechat" else sms(cust)
    assert env.day(2026, 12, 7, 8) == [("due_in_3_days", channel, conversation)]


def test_the_template_rule_counts_as_off_without_a_template_id(app, caplog):
    rules = app.state.rules.model_copy(update={"outreach": app.state.rules.outreach.model_copy(
        update={"wechat_template_outside_window": True})})
    assert effective_rules(rules, Settings(WECHAT_TEMPLATE_ID="  ")).outreach.wechat_template_outside_window is False
    assert "WECHAT_TEMPLATE_ID is empty" in caplog.text
    assert effective_rules(rules, Settings(WECHAT_TEMPLATE_ID="t1")).outreach.wechat_template_outside_window is True
    assert rules.outreach.wechat_template_outside_window is True  # the loaded rules are not changed


def test_an_unverified_or_unsubscribed_wechat_is_not_used(env):
    cust = env.book.customer(preferred=Channel.wechat)  # testkit: the openid is not verified
    loan_due(env, cust, date(2026, 12, 10))
    set_identity(env.sessions, cust.id, "wechat", last_inbound_at=shanghai(2026, 12, 7, 7))
    assert env.day(2026, 12, 7, 8) == [("due_in_3_days", "sms", sms(cust))]


def complaint_update_in(env, cust, key: str, conversation: str) -> int:
    channel = conversation.partition(":")[0]
    return env.add(OutreachKind.complaint_update, cust.id, key, valid_days=14, payload={
        "reference": "CP20261207-0001", "conversation": conversation, "channel": channel,
        "entity_type": "complaint_ticket", "entity_id": 1})


def test_service_notices_answer_in_the_conversation_the_borrower_used(env):
    cust = env.book.customer()  # preferred sms
    set_identity(env.sessions, cust.id, "wechat", last_inbound_at=shanghai(2026, 12, 6, 10))  # unverified
    env.at(2026, 12, 7, 9)
    complaint_update_in(env, cust, "test:cp", f"wechat:{cust.wechat_id}")
    assert env.dispatch() == [("complaint_update", "wechat", f"wechat:{cust.wechat_id}")]
    # that conversation turned out to be someone else: the borrower's own channels instead
    set_identity(env.sessions, cust.id, "wechat", status=IdentityStatus.wrong_person)
    complaint_update_in(env, cust, "test:cp2", f"wechat:{cust.wechat_id}")
    assert env.dispatch() == [("complaint_update", "sms", sms(cust))]


def test_a_service_notice_for_a_wechat_conversation_outside_its_window_takes_the_next_channel(env):
    cust = env.book.customer(preferred=Channel.wechat)
    set_identity(env.sessions, cust.id, "wechat", verified=True, last_inbound_at=shanghai(2026, 12, 5, 8, 59))
    env.at(2026, 12, 7, 9)  # 48 h 01 min after the borrower's last WeChat message, no template
    n = complaint_update_in(env, cust, "test:cp", f"wechat:{cust.wechat_id}")
    assert env.dispatch() == [("complaint_update", "sms", sms(cust))]  # wechat (preferred, closed), then sms
    (notice,) = env.notices(id=n)
    assert (notice.status.value, notice.channel.value, notice.conversation) == ("sent", "sms", sms(cust))
    assert env.log(notice) == [("12-07 09:00", "sent", "sms")]


def test_a_wechat_service_notice_with_no_other_channel_waits_for_the_window(env):
    cust = env.book.customer(preferred=Channel.wechat)
    set_identity(env.sessions, cust.id, "wechat", verified=True, last_inbound_at=shanghai(2026, 12, 1, 9))
    set_identity(env.sessions, cust.id, "sms", opted_out=True)  # and the web chat is not connected
    env.at(2026, 12, 7, 9)
    n = complaint_update_in(env, cust, "test:cp", f"wechat:{cust.wechat_id}")
    assert env.dispatch() == []
    (notice,) = env.notices(id=n)
    assert (notice.status.value, notice.last_error, local(notice.next_attempt_at)) == (
        "planned", "no_channel", shanghai(2026, 12, 7, 10))
    set_identity(env.sessions, cust.id, "wechat", last_inbound_at=shanghai(2026, 12, 7, 9, 30))  # writes again
    assert env.at(2026, 12, 7, 10).dispatch() == [("complaint_update", "wechat", f"wechat:{cust.wechat_id}")]
    assert env.log(env.notices(id=n)[0]) == [("12-07 09:00", "deferred:no_channel", None),
                                             ("12-07 10:00", "sent", "wechat")]


def test_the_wechat_window_as_the_channel_sees_it_on_the_real_clock(env):
    """Under OUTREACH_DEMO_TIME the business clock runs behind or ahead of the real one; the WeChat
    channel checks the window on the real clock, so both must agree it is open."""
    cust = env.book.customer(preferred=Channel.wechat)
    loan_due(env, cust, date(2026, 12, 10))
    set_identity(env.sessions, cust.id, "wechat", verified=True, last_inbound_at=shanghai(2026, 12, 5, 10))
    env.at(2026, 12, 7, 8).plan()  # business time 08:00: 46 hours after the last message
    env.ctx.clock_wall = lambda: shanghai(2026, 12, 7, 18)  # real time: 56 hours after it
    assert env.dispatch() == [("due_in_3_days", "sms", sms(cust))]


def test_rasa_paused_for_staff_counts_as_not_delivered(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    env.sender.paused = True
    assert env.day(2026, 12, 7, 8) == []  # the tracker says staff hold it: nothing is appended
    n = env.one()
    assert (n.status.value, n.last_error) == ("skipped", "handoff")
    assert env.log(n) == [("12-07 08:00", "suppressed:handoff", "sms")]


# --------------------------------------------------------------------------- retries

def test_retries_with_backoff_then_a_counted_permanent_failure(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    env.sender.fail = "http_500"
    calls = env.day(2026, 12, 7, 8)
    for minute in (1, 6, 36):
        assert env.at(2026, 12, 7, 8, minute - 1).dispatch() == []  # not before its time
        calls += env.at(2026, 12, 7, 8, minute).dispatch()
    assert calls == [("due_in_3_days", "sms", sms(cust))] * 4
    n = env.one()
    assert (n.status.value, n.attempts, n.last_error) == ("failed", 4, "http_500")
    assert env.log(n) == [
        ("12-07 08:00", "rasa_error", "sms"), ("12-07 08:00", "retry_scheduled", "sms"),
        ("12-07 08:01", "rasa_error", "sms"), ("12-07 08:01", "retry_scheduled", "sms"),
        ("12-07 08:06", "rasa_error", "sms"), ("12-07 08:06", "retry_scheduled", "sms"),
        ("12-07 08:36", "rasa_error", "sms"), ("12-07 08:36", "permanent_failure", "sms")]
    with env.sessions() as db:
        got = summary(db, shanghai(2026, 12, 7))
    assert (got["failed"], got["rasa_errors"], got["sent"]) == ({"due_in_3_days": 1}, {"due_in_3_days": 4}, {})
    assert env.at(2026, 12, 7, 12).dispatch() == []  # never again


def test_a_retry_that_succeeds(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    env.sender.fail = "ReadTimeout"
    assert env.day(2026, 12, 7, 8) == [("due_in_3_days", "sms", sms(cust))]  # the call was made, and failed
    env.sender.fail = None
    assert env.at(2026, 12, 7, 8, 1).dispatch() == [("due_in_3_days", "sms", sms(cust))]
    n = env.one()
    assert (n.status.value, n.attempts, local(n.sent_at)) == ("sent", 1, shanghai(2026, 12, 7, 8, 1))


def test_stale_notices_lapse(env):
    cust = env.book.customer()
    loan_due(env, cust, date(2026, 12, 10))
    env.at(2026, 12, 7, 7).plan()
    assert env.at(2026, 12, 9, 8).dispatch() == []  # the scheduler was down for two days
    n = env.one()
    assert (n.status.value, n.last_error) == ("expired", "stale")
