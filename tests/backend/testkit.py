"""Test data helpers and constants shared by the backend tests (imported by conftest and tests)."""
from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.models import (
    AuditLog, Channel, ChannelIdentity, Customer, Instalment, InstalmentStatus, Loan, OutreachKind, OutreachNotice,
    OutreachStatus, Payment,
)
from backend.core.clock import SHANGHAI, Clock
from backend.services.ledger import refresh_loan_status
from backend.services.money import amortize

TODAY = date(2026, 11, 23)
API_KEY = "test-key"
HEADERS = {"X-API-Key": API_KEY}
CENT = Decimal("0.01")


def q(value: Decimal) -> Decimal:
    """Round to cents, half up (the tests' own rounding, independent of backend.services.money)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def D(value) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(str(value))

# --------------------------------------------------------------------------- test data

_counter = itertools.count(1)


def id_checksum(first17: str) -> str:
    """GB 11643-1999 check character, written independently of backend.demo_data:
    weight_i = 2^(17-i) mod 11, check = (12 - sum mod 11) mod 11, 10 -> 'X'."""
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


@dataclass
class CustomerRec:
    id: int
    name: str
    phone: str
    id_number: str
    sms_id: str
    web_id: str
    wechat_id: str | None


@dataclass
class LoanRec:
    id: int
    loan_no: str
    principal: Decimal
    rate: Decimal
    term: int
    start: date
    product: str
    rows: list = field(default_factory=list)  # money.ScheduledInstalment
    fees: dict = field(default_factory=dict)  # seq -> fee


class Book:
    """Writes test data straight through the app's sessionmaker (no API involved)."""

    def __init__(self, sessionmaker) -> None:
        self.sessionmaker = sessionmaker

    def customer(self, name: str = "王小明", *, wechat: bool = True, preferred: Channel = Channel.sms) -> CustomerRec:
        n = next(_counter)
        phone = f"13{7 + n % 3}{(n * 7919 + 23456781) % 10**8:08d}"
        first17 = f"110105{date(1985, 3, 1) + timedelta(days=n * 37):%Y%m%d}{n % 1000:03d}"
        id_number = first17 + id_checksum(first17)
        web_id = f"webuser{n:06d}"
        wechat_id = f"oWx{uuid.uuid4().hex[:25]}" if wechat else None
        with self.sessionmaker() as db:
            c = Customer(
                name=name, phone=phone, id_number=id_number, preferred_channel=preferred,
                consent_reminders=True, consent_marketing=False, card_bank="招商银行", card_last4="6789",
            )
            db.add(c)
            db.flush()
            db.add(ChannelIdentity(channel=Channel.sms, external_id="+86" + phone, customer=c, verified=True))
            db.add(ChannelIdentity(channel=Channel.web, external_id=web_id, customer=c, verified=True))
            if wechat_id:
                db.add(ChannelIdentity(channel=Channel.wechat, external_id=wechat_id, customer=c, verified=False))
            db.commit()
            return CustomerRec(c.id, name, phone, id_number, "+86" + phone, web_id, wechat_id)

    def loan(
        self, customer_id: int, principal, rate, term: int, start: date, *, product: str = "xiaofeidai",
        paid: int = 0, late_days: dict[int, int] | None = None, fees: dict[int, Decimal] | None = None,
        refresh: bool = True,
    ) -> LoanRec:
        """A loan on the amortized schedule; instalments 1..paid are fully paid (on the due date,
        or late_days[seq] days later). With refresh=True the stored statuses are derived as of
        TODAY, as the daily job (segments.recompute_all) does."""
        principal, rate = D(principal), D(rate)
        late_days, fees = late_days or {}, fees or {}
        rows = amortize(principal, rate, term, start)
        loan_no = f"LNT{next(_counter):08d}"
        with self.sessionmaker() as db:
            loan = Loan(
                loan_no=loan_no, customer_id=customer_id, product=product, principal=principal,
                annual_rate=rate, term_months=term, start_date=start,
            )
            for s in rows:
                fee = D(fees.get(s.seq, "0.00"))
                inst = Instalment(seq=s.seq, due_date=s.due_date, principal=s.principal, interest=s.interest, fee=fee)
                if s.seq <= paid:
                    inst.paid_principal, inst.paid_interest, inst.paid_fee = s.principal, s.interest, fee
                    inst.status = InstalmentStatus.paid
                    inst.settled_on = s.due_date + timedelta(days=late_days.get(s.seq, 0))
                loan.instalments.append(inst)
            if refresh:
                refresh_loan_status(loan, TODAY)
            db.add(loan)
            db.commit()
            return LoanRec(loan.id, loan_no, principal, rate, term, start, product, rows, fees)

    def outreach_notice(self, customer_id: int, loan_id: int | None = None, **kw) -> str:
        """A planned reminder in the outreach log (for tests that only need one to exist); its notice_id."""
        at = datetime(2026, 11, 23, 8, 0, tzinfo=SHANGHAI)
        notice_id = str(uuid.uuid4())
        with self.sessionmaker() as db:
            db.add(OutreachNotice(**{
                "notice_id": notice_id, "customer_id": customer_id, "loan_id": loan_id, "kind": OutreachKind.due_in_3_days,
                "dedupe_key": f"test:{notice_id}", "service": False, "priority": 22, "planned_on": at.date(),
                "planned_for": at, "next_attempt_at": at, "expires_at": at + timedelta(days=2),
                "status": OutreachStatus.planned, "attempts": 0, "payload": {}, "created_at": at, **kw}))
            db.commit()
        return notice_id

    # ---- read-back helpers for "nothing was written" assertions

    def counts(self) -> dict[str, int]:
        with self.sessionmaker() as db:
            return {
                "payments": db.scalar(select(func.count()).select_from(Payment)),
                "audit_log": db.scalar(select(func.count()).select_from(AuditLog)),
            }

    def loan_state(self, loan_id: int) -> dict:
        with self.sessionmaker() as db:
            loan = db.get(Loan, loan_id)
            return {
                "status": loan.status.value,
                "settled_on": loan.settled_on,
                "instalments": [
                    (i.seq, i.paid_principal, i.paid_interest, i.paid_fee, i.penalty_charged, i.paid_penalty,
                     i.penalty_accrued_to, i.status.value, i.settled_on)
                    for i in sorted(loan.instalments, key=lambda i: i.seq)
                ],
                "payments": len(loan.payments),
            }

    def instalments(self, loan_id: int) -> list[Instalment]:
        with self.sessionmaker() as db:
            return list(db.scalars(select(Instalment).where(Instalment.loan_id == loan_id).order_by(Instalment.seq)))

    def audit_rows(self, action: str | None = None) -> list[AuditLog]:
        with self.sessionmaker() as db:
            stmt = select(AuditLog).order_by(AuditLog.id)
            if action:
                stmt = stmt.where(AuditLog.action == action)
            return list(db.scalars(stmt))


class ManualClock(Clock):
    """The business clock with a now() the test sets; today() stays the pinned business date."""

    def __init__(self, at: datetime) -> None:
        super().__init__(TODAY.isoformat())
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta) -> None:
        self.at += timedelta(**delta)


# ---- shared assertions and read-backs for the API tests

def ok(resp, status=200) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()


def iso(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).isoformat()


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message_zh"])
    assert isinstance(err["message_en"], str) and err["message_en"]
    return err


def last_audit_id(app) -> int:
    with app.state.sessionmaker() as db:
        return db.scalar(select(func.coalesce(func.max(AuditLog.id), 0)))


def audit_since(app, after_id: int) -> list[tuple]:
    with app.state.sessionmaker() as db:
        rows = db.scalars(select(AuditLog).where(AuditLog.id > after_id).order_by(AuditLog.id))
        return [(a.actor, a.action, a.entity_type, a.entity_id, a.detail) for a in rows]


def local(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive wall times (stored in Asia/Shanghai); PostgreSQL aware ones."""
    if dt is None:
        return None
    return dt.replace(tzinfo=SHANGHAI) if dt.tzinfo is None else dt.astimezone(SHANGHAI)


def console_sign_in(app, username: str, password: str) -> TestClient:
    """A browser signed in to the staff console; ``.csrf`` holds the session's CSRF token."""
    c = TestClient(app, follow_redirects=False)
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/login").text).group(1)
    r = c.post("/console/login", data={"username": username, "password": password, "csrf": csrf})
    assert r.status_code == 303, r.text
    c.csrf = re.search(r'data-csrf="([^"]+)"', c.get("/console").text).group(1)
    return c


# ---- outreach (backend.services.outreach): a recording sender, a clean book, identity set-up

class RecordingSender:
    """A Sender for service-level tests: records every call instead of reaching Rasa. ``fail`` makes
    calls fail with that error code; ``paused`` answers as for a conversation paused for staff. What
    it delivered is its "tracker", which find() reads."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict]] = []
        self.fail: str | None = None
        self.paused = False
        self.delivered: dict[str, str] = {}  # notice_id -> conversation

    def send(self, conversation: str, channel: str, intent: str, entities: dict):
        from backend.services.outreach.sender import SendResult

        self.calls.append((conversation, channel, intent, dict(entities)))
        if self.fail:
            return SendResult(error=self.fail, uncertain=True)
        if self.paused:
            return SendResult(paused=True)
        self.delivered[entities["notice_id"]] = conversation
        return SendResult()

    def find(self, conversation: str, notice_id: str):
        from backend.services.outreach.sender import DELIVERED

        return DELIVERED if self.delivered.get(notice_id) == conversation else None

    def take(self) -> list[tuple[str, str, str, dict]]:
        taken, self.calls = self.calls, []
        return taken


# Child tables first: what wipe() empties so an outreach test sees only its own book.
_BOOK_TABLES = (
    "outreach_attempts", "outreach_notices", "scheduler_leases", "settlement_intents", "plan_requests",
    "promises_to_pay", "handoff_notes", "handoff_cases", "complaint_events", "complaint_tickets",
    "conversation_sessions", "otp_challenges", "payments", "instalments", "loans", "channel_identities",
    "customers",
)


def wipe(sessionmaker) -> None:
    """Empty every table that holds borrowers, loans and what happened to them (not the audit log)."""
    from sqlalchemy import text

    with sessionmaker() as db:
        db.execute(text("UPDATE complaint_tickets SET linked_to_id = NULL"))
        for table in _BOOK_TABLES:
            db.execute(text(f"DELETE FROM {table}"))
        db.commit()


def set_identity(sessionmaker, customer_id: int, channel: str, **values) -> None:
    """Change the customer's identity on a channel (verified, status, opted_out, last_inbound_at ...)."""
    from sqlalchemy import update

    with sessionmaker() as db:
        db.execute(update(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id,
                                                 ChannelIdentity.channel == Channel(channel)).values(**values))
        db.commit()


def set_customer(sessionmaker, customer_id: int, **values) -> None:
    from sqlalchemy import update

    with sessionmaker() as db:
        db.execute(update(Customer).where(Customer.id == customer_id).values(**values))
        db.commit()


def shanghai(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)
