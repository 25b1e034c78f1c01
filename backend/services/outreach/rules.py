"""The outreach rules, one function each, checked when a notice is about to be sent.

A verdict is SEND, SKIP (never: the notice ends as skipped with the rule), DEFER (not now: the notice
stays planned until ``until``) or EXPIRE (it no longer matters). Rule names are what the outreach log
and the summary show: window, daily_cap, weekly_cap, service_cap, unsubscribed, handoff,
complaint_pause, paid, restructured, promise, promise_closed, rated, plan_requested.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from backend.core.clock import day_start, earliest_send, in_window, local, next_window_start
from backend.models import (
    Customer, HandoffCase, Instalment, Loan, LoanStatus, OutreachKind as K, OutreachNotice, OutreachStatus,
    PlanRequest, PlanStatus, PromiseStatus, PromiseToPay,
)
from backend.services import complaints, handoff

from . import kinds
from .context import Outreach, fresh

SEND, SKIP, DEFER, EXPIRE = "send", "skip", "defer", "expire"


@dataclass(frozen=True)
class Verdict:
    action: str
    rule: str | None = None
    until: datetime | None = None


def _defer(ctx: Outreach, notice: OutreachNotice, rule: str, until: datetime) -> Verdict:
    if until >= local(notice.expires_at, ctx.tz):
        return Verdict(EXPIRE, rule)
    return Verdict(DEFER, rule, until)


# --------------------------------------------------------------------------- "not now" rules

def window(ctx: Outreach, notice: OutreachNotice, now: datetime) -> Verdict | None:
    """Contact only inside the window; at night the notice waits for the morning."""
    if in_window(ctx.cfg, ctx.tz, now):
        return None
    return _defer(ctx, notice, "window", next_window_start(ctx.cfg, ctx.tz, now))


def sent_count(db: Session, notice: OutreachNotice, since: datetime) -> int:
    """Notices of the customer, of the same group (automated or service), sent since then, or being
    sent right now by another dispatcher (its own batch-mates are taken one by one after this one)."""
    n = OutreachNotice
    return db.scalar(select(func.count()).select_from(n).where(
        n.customer_id == notice.customer_id, n.service.is_(notice.service), n.id != notice.id,
        or_((n.status == OutreachStatus.sent) & (n.sent_at >= since),
            (n.status == OutreachStatus.sending) & (n.claimed_at >= since) & (n.claim_token != notice.claim_token))))


def caps(db: Session, ctx: Outreach, notice: OutreachNotice, now: datetime) -> Verdict | None:
    """Per borrower across all channels: automated notices per day and per (rolling 7-day) week;
    service notices their own daily cap. Over a cap the notice waits for tomorrow's window."""
    if notice.customer_id is None:  # an anonymous visitor's complaint update: nobody to count
        return None
    today = now.date()
    tomorrow = earliest_send(ctx.cfg, ctx.tz, day_start(today + timedelta(days=1), ctx.tz))
    checks = [("service_cap", ctx.cfg.service_caps.per_day, today)] if notice.service else [
        ("daily_cap", ctx.cfg.caps.per_day, today), ("weekly_cap", ctx.cfg.caps.per_week, today - timedelta(days=6))]
    for rule, limit, since in checks:
        if sent_count(db, notice, day_start(since, ctx.tz)) >= limit:
            return _defer(ctx, notice, rule, tomorrow)
    return None


# --------------------------------------------------------------------------- suppressions

def unsubscribed(ctx: Outreach, notice: OutreachNotice, customer: Customer) -> str | None:
    """An unsubscribed borrower gets only decisions (not checked here) and the kinds the contract requires."""
    if customer.consent_reminders:
        return None
    return None if notice.kind.value in ctx.cfg.contract_required_kinds else "unsubscribed"


def open_handoff(db: Session, customer: Customer) -> str | None:
    return "handoff" if handoff.customer_has_open_case(db, customer.id) else None


def complaint_pause(db: Session, notice: OutreachNotice, customer: Customer) -> str | None:
    """A collection complaint under review pauses every automated notice (not service notices)."""
    if notice.service:
        return None
    return "complaint_pause" if complaints.customer_has_reminder_pause(db, customer.id) else None


def loan_changed(db: Session, notice: OutreachNotice) -> str | None:
    """Paid, settled or restructured since the notice was planned."""
    if notice.loan_id is None:
        return None
    loan = fresh(db, Loan, notice.loan_id)
    if loan.status == LoanStatus.settled:
        return "paid"
    if loan.status == LoanStatus.restructured and notice.payload.get("loan_status") != LoanStatus.restructured.value:
        return "restructured"
    if notice.instalment_seq is None:
        return None
    inst = db.scalar(select(Instalment).where(Instalment.loan_id == loan.id, Instalment.seq == notice.instalment_seq)
                     .execution_options(populate_existing=True))
    if inst is None or inst.due_date.isoformat() != notice.payload.get("due_date"):
        return "restructured"  # the instalment was replaced by a plan
    unpaid = (inst.principal - inst.paid_principal) + (inst.interest - inst.paid_interest) + (inst.fee - inst.paid_fee)
    return "paid" if unpaid <= 0 else None


def promise_holds(db: Session, notice: OutreachNotice, today: date, now: datetime) -> str | None:
    """A promise to pay the loan suppresses its overdue notices until the day after the promised date."""
    if notice.kind not in kinds.OVERDUE_KINDS:
        return None
    p = PromiseToPay
    held = db.scalar(select(exists().where(
        p.loan_id == notice.loan_id, p.status.in_([PromiseStatus.open, PromiseStatus.kept]),
        p.promised_date >= today, p.created_at <= now)))
    return "promise" if held else None


def kind_specific(db: Session, notice: OutreachNotice, customer: Customer) -> str | None:
    """The promise is still open; the case is still unrated; no plan request since the offer."""
    if notice.kind == K.promise_reminder:
        promise = fresh(db, PromiseToPay, notice.payload["promise_id"])
        return None if promise.status == PromiseStatus.open else "promise_closed"
    if notice.kind == K.csat_followup:
        case = fresh(db, HandoffCase, notice.payload["case_id"])
        return "rated" if case.csat is not None else None
    if notice.kind == K.hardship_offer:
        if not db.scalar(select(exists().where(Loan.customer_id == customer.id, Loan.status != LoanStatus.settled))):
            return "paid"
        live = db.scalar(select(exists().where(PlanRequest.customer_id == customer.id, PlanRequest.status.in_(
            [PlanStatus.submitted, PlanStatus.under_review]))))
        return "plan_requested" if live else None
    return None


# --------------------------------------------------------------------------- all of them

def check(db: Session, ctx: Outreach, notice: OutreachNotice, now: datetime) -> Verdict:
    if now >= local(notice.expires_at, ctx.tz):
        return Verdict(EXPIRE, "stale")
    verdict = window(ctx, notice, now)
    if verdict:
        return verdict
    customer = fresh(db, Customer, notice.customer_id) if notice.customer_id is not None else None
    if customer is not None and notice.kind in kinds.DECISIONS:
        if open_handoff(db, customer):  # staff have the conversation: the decision waits for them
            return _defer(ctx, notice, "handoff", now + timedelta(minutes=ctx.cfg.handoff_recheck_minutes))
    elif customer is not None:
        rule = unsubscribed(ctx, notice, customer) or open_handoff(db, customer) \
            or complaint_pause(db, notice, customer) or loan_changed(db, notice) \
            or promise_holds(db, notice, now.date(), now) or kind_specific(db, notice, customer)
        if rule:
            return Verdict(SKIP, rule)
    return caps(db, ctx, notice, now) or Verdict(SEND)
