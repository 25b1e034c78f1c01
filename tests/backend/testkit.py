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
API_KEY = "test-key"  # the bot's key (caller name "actions")
HEADERS = {"X-API-Key": API_KEY}
# The other callers' keys (backend.core.config.API_KEY_PROFILES): every test app accepts them all.
SCHEDULER_KEY, PAYMENTS_KEY, REPORTS_KEY, CHANNELS_KEY = ("test-scheduler-key", "test-payments-key",
                                                          "test-reports-key", "test-channels-key")
SCHEDULER = {"X-API-Key": SCHEDULER_KEY}
PAYMENTS = {"X-API-Key": PAYMENTS_KEY}
REPORTS = {"X-API-Key": REPORTS_KEY}
CHANNELS = {"X-API-Key": CHANNELS_KEY}
TEST_API_KEYS = {"actions": API_KEY, "scheduler": SCHEDULER_KEY, "payments": PAYMENTS_KEY, "reports": REPORTS_KEY,
                 "channels": CHANNELS_KEY}
BACKEND_API_KEYS = ",".join(f"{name}:{key}" for name, key in TEST_API_KEYS.items())
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
    """A Sender for service-level tests: records every delivery, (conversation, channel, text, marker
    {"notice_id", "kind"}), instead of reaching Rasa. ``fail`` makes calls fail with that error code;
    ``paused`` answers as for a conversation paused for staff; ``slots`` are the conversations' slots
    (e.g. contact_confirmed). What it delivered is its "tracker", which find() and look() read."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict]] = []
        self.events: list[tuple[str, list]] = []  # (conversation, the events sent before each text)
        self.fail: str | None = None
        self.paused = False
        self.slots: dict[str, dict] = {}
        self.delivered: dict[str, str] = {}  # notice_id -> conversation

    def look(self, conversation: str):
        from backend.services.outreach.sender import Conversation

        said = [{"event": "bot", "text": "...", "metadata": {"notice_id": n}}
                for n, conv in self.delivered.items() if conv == conversation]
        return Conversation(self.paused, dict(self.slots.get(conversation, {})), said)

    def send(self, conversation: str, channel: str, text: str, events: list, marker: dict):
        from backend.services.outreach.sender import SendResult

        self.calls.append((conversation, channel, text, dict(marker)))
        self.events.append((conversation, list(events)))
        if self.fail:
            return SendResult(error=self.fail, uncertain=True)
        if self.paused:
            return SendResult(paused=True)
        self.delivered[marker["notice_id"]] = conversation
        return SendResult()

    def find(self, conversation: str, notice_id: str):
        from backend.services.outreach.sender import DELIVERED

        return DELIVERED if self.delivered.get(notice_id) == conversation else None

    def take(self) -> list[tuple[str, str, str, dict]]:
        taken, self.calls = self.calls, []
        return taken


# Child tables first: what wipe() empties so an outreach test sees only its own book.
_BOOK_TABLES = (
    "outbox_messages", "outreach_attempts", "outreach_notices", "scheduler_leases", "settlement_intents", "plan_requests",
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


# --------------------------------------------------------------------------- staff decisions

class StaffDesk:
    """Staff decisions are made in the console only (no API key can make them): the staff member named
    is created on first use with the role given, signed in with a TestClient of their own (again when
    the session has expired) and acts through /console/api with the session's CSRF token.

    ``act`` takes a decision in the shape the removed /api/v1 staff routes took it (staff named in the
    body) and makes it through the console, so the tests of the rules behind them stay as they were.
    Closing a case is the console's hand-back, which resumes the conversation in Rasa first: the desk
    brings a fake Rasa for it (``rasa``, started on first use). ``StaffDesk.of(app)``: the app's desk.
    After each decision the backend's outbox worker takes a round (backend.services.outreach.worker, a
    thread in the running app; none in the tests' app), as it would a moment later (``deliver``: False
    to leave it to the test)."""

    PASSWORD = "desk-test-pass-1"

    def __init__(self, app) -> None:
        self.app = app
        self._clients: dict[str, TestClient] = {}
        self._rasa = None
        self.deliver = True

    @classmethod
    def of(cls, app) -> "StaffDesk":
        if getattr(app.state, "test_desk", None) is None:
            app.state.test_desk = cls(app)
        return app.state.test_desk

    @property
    def rasa(self):
        if self._rasa is None:
            from fake_rasa import FakeRasa

            self._rasa = FakeRasa("desk-token").__enter__()
        return self._rasa

    def __enter__(self) -> "StaffDesk":
        return self

    def __exit__(self, *exc) -> None:
        if self._rasa is not None:
            self._rasa.__exit__(*exc)
            self._rasa = None

    def _user(self, username: str, role: str) -> None:
        from backend.models import StaffUser
        from backend.services import staff

        with self.app.state.sessionmaker() as db:
            user = db.scalar(select(StaffUser).where(StaffUser.username == username))
            if user is None:
                staff.create_user(db, username, username, role, self.PASSWORD, self.app.state.clock.now(), "test")
            elif user.role.value != role:
                user.role = type(user.role)(role)
            db.commit()

    def _sign_in(self, username: str) -> TestClient:
        c = TestClient(self.app, follow_redirects=False)
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/login").text).group(1)
        r = c.post("/console/login", data={"username": username, "password": self.PASSWORD, "csrf": csrf})
        assert r.status_code == 303, r.text
        c.csrf = re.search(r'data-csrf="([^"]+)"', c.get("/console").text).group(1)
        self._clients[username] = c
        return c

    def post(self, username: str, path: str, json=None, role: str = "agent"):
        """POST /console/api{path} as ``username`` (an agent unless ``role`` says otherwise). Creating
        and signing in the staff member leaves no audit rows (the desk is the tests' harness: a test's
        audit trail shows the decisions only)."""
        with self.app.state.sessionmaker() as db:
            before = db.scalar(select(func.max(AuditLog.id))) or 0
        self._user(username, role)
        for _ in range(2):
            c = self._clients.get(username) or self._sign_in(username)
            resp = c.post(f"/console/api{path}", json=json, headers={"X-CSRF-Token": c.csrf})
            if resp.status_code != 401:
                break
            self._clients.pop(username, None)  # the session expired (the tests' clock moves): sign in again
        with self.app.state.sessionmaker() as db:
            db.execute(AuditLog.__table__.delete().where(
                AuditLog.id > before, AuditLog.action.in_(("staff.created", "staff.login", "staff.session_expired"))))
            db.commit()
        if self.deliver and resp.status_code < 400:
            from backend.services.outreach import worker

            worker.run_once(self.app)
        return resp

    def _with_rasa(self, call):
        from backend.services.rasa_api import RasaClient

        original = self.app.state.rasa
        self.app.state.rasa = RasaClient(self.rasa.url, self.rasa.token)
        try:
            return call()
        finally:
            self.app.state.rasa = original

    def _case(self, case_id: str):
        from backend.models import HandoffCase

        with self.app.state.sessionmaker() as db:
            case = db.get(HandoffCase, int(case_id))
            return (case.status.value, case.assigned_to) if case else (None, None)

    def act(self, path: str, body: dict | None = None):
        """The decision the removed route ``/api/v1/<kind>/<id>/<action>`` took, through the console."""
        body = dict(body or {})
        m = re.fullmatch(r"/api/v1/(plan-requests|complaints|handoffs)/([^/]+)/([\w-]+)", path)
        assert m, path
        kind, ident, action = m.groups()
        by = body.pop("by", None)
        role = body.pop("role", "agent") or "agent"
        if kind == "plan-requests":
            return self.post(by, f"/plans/{ident}/{action}", body or None, role)
        if kind == "complaints":
            return self.post(by, f"/complaints/{ident}/{action}", body or None, role)
        if action == "claim":
            return self.post(body["staff"], f"/cases/{ident}/claim")
        if action == "reassign":
            self._user(body["staff"], "agent")
            return self.post(by, f"/cases/{ident}/reassign", {"staff": body["staff"]}, role)
        if action == "notes":
            return self.post(body.pop("author"), f"/cases/{ident}/notes", body)
        status, assigned = self._case(ident)
        if action == "first-response":  # the assigned staff member's first reply
            return self._with_rasa(lambda: self.post(assigned or "desk-agent", f"/cases/{ident}/reply",
                                                      {"text": "您好，我是人工客服"}))
        if action == "close":  # hand the conversation back (closes the case), claimed first if waiting
            if status == "open":
                self.post(by, f"/cases/{ident}/claim")
            elif status == "claimed" and assigned != by:
                self.post("desk-supervisor", f"/cases/{ident}/reassign", {"staff": by}, "supervisor")
            return self._with_rasa(lambda: self.post(assigned if status == "closed" and assigned else by,
                                                      f"/cases/{ident}/hand-back"))
        raise AssertionError(path)
