"""Planning a business day's notices from the loan book, set-based and idempotent.

For each kind a few SELECTs find what is due and one bulk INSERT ... ON CONFLICT (dedupe_key) DO
NOTHING writes it, so planning can run at start-up, every hour and in two processes at once without
a duplicate. Rows already planned are left out of the SELECTs (NOT EXISTS), so an hourly re-run
writes nothing new unless the book changed.

* reminders and overdue notices: an unpaid instalment of a loan not settled, whose due date is
  ``reminder_days_before`` days ahead or ``overdue_days_after`` days behind. Each kind stays valid
  until the next one of the series is due, at most ``max_delay_days`` (a day the scheduler missed
  is caught up while still valid). The payload has the due date, the amount still due on the
  instalment including penalty interest as of the day (backend.services.ledger), days past due;
* hardship offer: ``hardship_offer.min_episodes`` instalments due in the last ``window_days`` that
  were paid late or are unpaid past due (the segments' definition of an overdue episode), a loan
  still open, no offer and no plan request of the customer within ``cooldown_days``;
* promise reminder: an open promise to pay whose date is tomorrow;
* CSAT follow-up: a handoff case closed yesterday without a rating (to the case's conversation).

planned_for = the later of the contact window's opening that day and now (next morning if the
window has closed).
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from backend.core.clock import day_start, earliest_send, local, window
from backend.core.config import BusinessRules, OutreachRules
from backend.models import (
    HandoffCase, HandoffStatus, Instalment as I, Loan, LoanStatus, OutreachKind as K, OutreachNotice as N,
    OutreachStatus, PlanRequest, PromiseStatus, PromiseToPay,
)
from backend.services.ledger import position

from . import kinds

CHUNK = 1000


def series(cfg: OutreachRules) -> list[tuple[K, int, int]]:
    """(kind, days from the due date, days valid) for the reminder and overdue series, in order."""
    steps = [(kinds.REMINDER[d], -d) for d in cfg.reminder_days_before] + \
            [(kinds.OVERDUE[d], d) for d in cfg.overdue_days_after]
    out = []
    for i, (kind, offset) in enumerate(steps):
        gap = steps[i + 1][1] - offset if i + 1 < len(steps) else cfg.max_delay_days
        out.append((kind, offset, min(gap, cfg.max_delay_days)))
    return out


def _row(kind: K, key: str, customer_id: int | None, day: date, start: datetime, expires: datetime,
         now: datetime, payload: dict, loan_id: int | None = None, seq: int | None = None) -> dict:
    return dict(notice_id=str(uuid.uuid4()), customer_id=customer_id, loan_id=loan_id, instalment_seq=seq,
                kind=kind, dedupe_key=key, service=kind in kinds.SERVICE, priority=kinds.PRIORITY[kind],
                planned_on=day, planned_for=start, next_attempt_at=start, expires_at=expires,
                status=OutreachStatus.planned, attempts=0, payload=payload, created_at=now)


def _unpaid():
    return (I.principal - I.paid_principal) + (I.interest - I.paid_interest) + (I.fee - I.paid_fee)


def _not_planned(kind: K):
    return ~exists().where(N.loan_id == I.loan_id, N.instalment_seq == I.seq, N.kind == kind)


def _instalment_rows(db: Session, rules: BusinessRules, tz: ZoneInfo, day: date, start: datetime,
                     now: datetime) -> list[dict]:
    rows = []
    for kind, offset, valid in series(rules.outreach):
        lo, hi = day - timedelta(days=offset + valid - 1), day - timedelta(days=offset)
        found = db.execute(select(
            I.loan_id, I.seq, I.due_date, I.principal, I.interest, I.fee, I.paid_principal, I.paid_interest,
            I.paid_fee, I.penalty_charged, I.paid_penalty, I.penalty_accrued_to,
            Loan.customer_id, Loan.annual_rate, Loan.status,
        ).join(Loan, Loan.id == I.loan_id).where(
            I.due_date >= lo, I.due_date <= hi, Loan.status != LoanStatus.settled, _unpaid() > 0,
            _not_planned(kind)))
        for r in found:
            inst = SimpleNamespace(**{k: getattr(r, k) for k in (
                "due_date", "principal", "interest", "fee", "paid_principal", "paid_interest", "paid_fee",
                "penalty_charged", "paid_penalty", "penalty_accrued_to")})
            pos = position(SimpleNamespace(annual_rate=r.annual_rate, instalments=[inst]), rules, day).rows[0]
            payload = {"due_date": r.due_date.isoformat(), "amount": str(pos.total_due),
                       "loan_status": LoanStatus(r.status).value}
            if offset > 0:
                payload.update(penalty=str(pos.penalty_due), days_past_due=pos.days_past_due)
            expires = day_start(r.due_date + timedelta(days=offset + valid), tz)
            rows.append(_row(kind, f"loan:{r.loan_id}:seq:{r.seq}:{kind.value}", r.customer_id, day, start,
                             expires, now, payload, r.loan_id, r.seq))
    return rows


def _hardship_rows(db: Session, rules: BusinessRules, tz: ZoneInfo, day: date, start: datetime,
                   now: datetime) -> list[dict]:
    h = rules.outreach.hardship_offer
    late = and_(I.due_date >= day - timedelta(days=h.window_days), I.due_date < day,
                or_(I.settled_on > I.due_date, and_(I.settled_on.is_(None), _unpaid() > 0)))
    episodes = (select(Loan.customer_id.label("cid"), func.count().label("n")).join(I, I.loan_id == Loan.id)
                .where(late).group_by(Loan.customer_id).having(func.count() >= h.min_episodes).subquery())
    since = day - timedelta(days=h.cooldown_days)
    found = db.execute(select(episodes.c.cid, episodes.c.n).where(
        exists().where(Loan.customer_id == episodes.c.cid, Loan.status != LoanStatus.settled),
        ~exists().where(N.customer_id == episodes.c.cid, N.kind == K.hardship_offer, N.planned_on > since),
        ~exists().where(PlanRequest.customer_id == episodes.c.cid, PlanRequest.submitted_on > since)))
    expires = day_start(day + timedelta(days=h.valid_days), tz)
    return [_row(K.hardship_offer, f"hardship:{cid}:{day.isoformat()}", cid, day, start, expires, now,
                 {"episodes": n, "window_days": h.window_days}) for cid, n in found]


def _promise_rows(db: Session, tz: ZoneInfo, day: date, start: datetime, now: datetime) -> list[dict]:
    tomorrow = day + timedelta(days=1)
    found = db.execute(select(PromiseToPay.id, PromiseToPay.customer_id, PromiseToPay.loan_id,
                              PromiseToPay.promised_date, PromiseToPay.amount, Loan.status)
                       .join(Loan, Loan.id == PromiseToPay.loan_id).where(
        PromiseToPay.status == PromiseStatus.open, PromiseToPay.promised_date == tomorrow,
        Loan.status != LoanStatus.settled))
    return [_row(K.promise_reminder, f"promise:{pid}", cid, day, start, day_start(tomorrow, tz), now,
                 {"promise_id": pid, "promised_date": promised.isoformat(), "amount": str(amount),
                  "loan_status": LoanStatus(status).value}, loan_id)
            for pid, cid, loan_id, promised, amount, status in found]


def _csat_rows(db: Session, tz: ZoneInfo, day: date, start: datetime, now: datetime) -> list[dict]:
    c = HandoffCase
    found = db.execute(select(c.id, c.customer_id, c.reference, c.conversation, c.channel).where(
        c.status == HandoffStatus.closed, c.csat.is_(None), c.customer_id.is_not(None),
        c.closed_at >= day_start(day - timedelta(days=1), tz), c.closed_at < day_start(day, tz)))
    return [_row(K.csat_followup, f"handoff:{pk}:csat", cid, day, start, day_start(day + timedelta(days=1), tz), now,
                 {"case_id": pk, "reference": ref, "conversation": conv, "channel": channel.value})
            for pk, cid, ref, conv, channel in found]


def insert_new(db: Session, rows: list[dict]) -> int:
    """Bulk insert, skipping rows whose dedupe_key exists (a concurrent planner, an earlier run)."""
    dialect = db.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = N.__table__
    # RETURNING counts the rows really inserted (executemany's rowcount is -1 on psycopg).
    stmt = insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)
    inserted = 0
    for i in range(0, len(rows), CHUNK):
        inserted += len(db.execute(stmt, rows[i:i + CHUNK]).all())
    return inserted


def plan_day(db: Session, rules: BusinessRules, day: date, now: datetime) -> dict:
    """Plan every notice due on ``day``; commits."""
    cfg, tz = rules.outreach, ZoneInfo(rules.timezone)
    now = local(now, tz)
    start = earliest_send(cfg, tz, max(window(cfg, tz, day)[0], now))
    rows = (_instalment_rows(db, rules, tz, day, start, now) + _hardship_rows(db, rules, tz, day, start, now)
            + _promise_rows(db, tz, day, start, now) + _csat_rows(db, tz, day, start, now))
    by_kind: dict[str, int] = {}
    for row in rows:
        by_kind[row["kind"].value] = by_kind.get(row["kind"].value, 0) + 1
    inserted = insert_new(db, rows)
    db.commit()
    # found: candidates not yet in the log when they were read; inserted: fewer if another planner won.
    return {"found": len(rows), "inserted": inserted, "by_kind": by_kind}
