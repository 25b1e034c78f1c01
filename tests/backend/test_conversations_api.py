"""Conversation endpoints: SMS verification, wrong person, unsubscribe, promises to pay, and the
loan summary's breakdown of the outstanding total.

Verification runs against a clock the test moves (app.state.clock is replaced by ManualClock);
SMS messages go to an outbox file under tmp_path (Settings(SMS_OUTBOX_PATH=...)).
Rules from config/business.yml: code lives 300 s, 5 wrong codes or 5 phone/ID mismatches lock the
conversation for 30 minutes, promises at most 30 days ahead.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backend.core.clock import SHANGHAI
from backend.core.config import Settings
from backend.main import create_app
from backend.models import (
    AuditLog, Channel, ChannelIdentity, Customer, IdentityStatus, Instalment, OtpChallenge, PromiseStatus,
    PromiseToPay, SmsMessage,
)
from testkit import BACKEND_API_KEYS, HEADERS, TODAY, D, ManualClock, q

START_PATH = "/api/v1/verification/start"
CHECK_PATH = "/api/v1/verification/check"
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
LOCK = timedelta(minutes=30)
SMS_TEXT = "【贷款客服】您的验证码是{code}，5分钟内有效。请勿告诉他人，工作人员不会向您索要验证码。"


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def outbox_path(tmp_path_factory):
    return tmp_path_factory.mktemp("sms") / "outbox.jsonl"


@pytest.fixture(scope="module")
def app(db_url, outbox_path):
    """Overrides conftest's app: the same settings plus an SMS outbox inside tmp_path."""
    settings = Settings(DATABASE_URL=db_url, BACKEND_API_KEYS=BACKEND_API_KEYS,
                        APP_FROZEN_DATE=TODAY.isoformat(), SMS_OUTBOX_PATH=str(outbox_path),
                        SMS_OUTBOX_SHOW_CODES=True)  # the tests read the codes from the outbox
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def clock(app):
    original = app.state.clock
    manual = ManualClock(T0)
    app.state.clock = manual
    yield manual
    app.state.clock = original


@pytest.fixture
def outbox(outbox_path):
    """Empties the outbox; call it to read the messages sent since."""
    outbox_path.unlink(missing_ok=True)

    def read() -> list[dict]:
        if not outbox_path.exists():
            return []
        return [json.loads(line) for line in outbox_path.read_text(encoding="utf-8").splitlines() if line]

    return read


@pytest.fixture
def cust(book):
    return book.customer("赵敏")


def conv() -> str:
    return f"wechat:conv-{uuid.uuid4().hex[:16]}"


def post(client, path, body=None):
    return client.post(path, headers=HEADERS, json=body)


def start(client, conversation, phone, id_last4):
    return post(client, START_PATH, {"conversation": conversation, "phone": phone, "id_last4": id_last4})


def check(client, conversation, code):
    return post(client, CHECK_PATH, {"conversation": conversation, "code": code})


def ok(resp, status=200) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()


def masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def other_last4(id_number: str) -> str:
    """Four digits that are not the ID's last four."""
    real = id_number[-4:].upper()
    return "0000" if real != "0000" else "1111"


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def code_from(message: dict) -> str:
    codes = re.findall(r"\d{6}", message["body"])
    assert len(codes) == 1, message
    return codes[0]


def count(app, model) -> int:
    with app.state.sessionmaker() as db:
        return db.scalar(select(func.count()).select_from(model))


def counts(app) -> dict[str, int]:
    return {m.__tablename__: count(app, m)
            for m in (OtpChallenge, SmsMessage, AuditLog, PromiseToPay, ChannelIdentity)}


def challenges(app, conversation) -> list[OtpChallenge]:
    with app.state.sessionmaker() as db:
        return list(db.scalars(select(OtpChallenge).where(OtpChallenge.conversation == conversation)
                               .order_by(OtpChallenge.id)))


def audit_since(app, after_id: int, action: str | None = None) -> list[AuditLog]:
    with app.state.sessionmaker() as db:
        stmt = select(AuditLog).where(AuditLog.id > after_id).order_by(AuditLog.id)
        if action:
            stmt = stmt.where(AuditLog.action == action)
        return list(db.scalars(stmt))


def last_audit_id(app) -> int:
    with app.state.sessionmaker() as db:
        return db.scalar(select(func.coalesce(func.max(AuditLog.id), 0)))


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert isinstance(err["message_zh"], str) and any("\u4e00" <= ch <= "\u9fff" for ch in err["message_zh"])
    assert isinstance(err["message_en"], str) and err["message_en"]
    return err


def assert_locked(body: dict, until: datetime) -> None:
    assert set(body) == {"status", "locked_until"}
    assert body["status"] == "locked"
    got = datetime.fromisoformat(body["locked_until"])
    assert got.tzinfo is not None
    assert got == until  # the same instant (PostgreSQL may answer in UTC, SQLite in Asia/Shanghai)


def assert_no_phone(cust, *responses) -> None:
    for resp in responses:
        assert cust.phone not in resp.text
        assert cust.id_number not in resp.text


# --------------------------------------------------------------------------- 1. verification: start

def test_start_sends_one_code_to_the_registered_phone(app, client, clock, outbox, cust):
    c = conv()
    before = counts(app)
    audit_from = last_audit_id(app)
    resp = start(client, c, cust.phone, cust.id_number[-4:])
    assert ok(resp) == {"status": "sent", "phone_masked": masked(cust.phone), "expires_in": 300}
    assert_no_phone(cust, resp)

    # exactly one message, to +86<phone>, with a 6-digit code
    sent = outbox()
    assert len(sent) == 1
    assert set(sent[0]) == {"to", "body", "at"}
    assert sent[0]["to"] == "+86" + cust.phone
    code = code_from(sent[0])
    assert re.fullmatch(r"\d{6}", code)
    assert sent[0]["body"] == SMS_TEXT.format(code=code)

    # stored: one message (masked number, code blanked), one challenge (hashed code), one audit row
    assert counts(app) == {**before, "sms_messages": before["sms_messages"] + 1,
                           "otp_challenges": before["otp_challenges"] + 1,
                           "audit_log": before["audit_log"] + 1}
    with app.state.sessionmaker() as db:
        msg = db.scalars(select(SmsMessage).order_by(SmsMessage.id.desc()).limit(1)).one()
    assert msg.to_masked == masked(cust.phone)
    assert msg.to_hash == hashlib.sha256(("+86" + cust.phone).encode()).hexdigest()
    assert msg.body == SMS_TEXT.format(code="******")
    assert code not in msg.body and cust.phone not in msg.body
    assert (msg.purpose, msg.provider, msg.status) == ("otp", "outbox", "queued")

    [ch] = challenges(app, c)
    assert ch.customer_id == cust.id
    assert ch.code_hash is not None and ch.code_hash != code and code not in ch.code_hash
    assert len(ch.code_hash) == 64
    assert (ch.wrong_attempts, ch.mismatches, ch.locked_until, ch.verified_at) == (0, 0, None, None)
    created = ch.created_at if ch.created_at.tzinfo else ch.created_at.replace(tzinfo=SHANGHAI)
    expires = ch.expires_at if ch.expires_at.tzinfo else ch.expires_at.replace(tzinfo=SHANGHAI)
    assert (created, expires) == (T0, T0 + timedelta(seconds=300))

    [audit] = audit_since(app, audit_from)
    assert (audit.actor, audit.action, audit.entity_type, audit.entity_id) == (
        "actions", "verification.code_sent", "customer", str(cust.id))
    assert audit.detail == {"conversation": c}


def test_start_accepts_the_phone_with_country_code(client, clock, outbox, cust):
    resp = start(client, conv(), "+86" + cust.phone, cust.id_number[-4:])
    assert ok(resp) == {"status": "sent", "phone_masked": masked(cust.phone), "expires_in": 300}
    assert [m["to"] for m in outbox()] == ["+86" + cust.phone]


def test_mismatches_count_down_then_lock_without_saying_which_part_was_wrong(app, client, clock, outbox, book, cust):
    stranger = book.customer("路人甲")  # a registered phone, but with another customer's ID
    c = conv()
    before = counts(app)
    wrong_id = start(client, c, cust.phone, other_last4(cust.id_number))
    unknown_phone = start(client, c, "13000000001", cust.id_number[-4:])
    other_customer = start(client, c, stranger.phone, cust.id_number[-4:]) if stranger.id_number[-4:] != \
        cust.id_number[-4:] else start(client, c, stranger.phone, other_last4(stranger.id_number))
    both_wrong = start(client, c, "13000000001", other_last4(cust.id_number))
    bodies = [ok(r) for r in (wrong_id, unknown_phone, other_customer, both_wrong)]
    assert bodies == [{"status": "not_matched", "attempts_left": n} for n in (4, 3, 2, 1)]

    clock.advance(seconds=5)
    fifth = start(client, c, cust.phone, other_last4(cust.id_number))
    locked_until = clock.at + LOCK
    assert_locked(ok(fifth), locked_until)

    # while locked even the right details are refused, and no code goes out
    clock.advance(minutes=29, seconds=59)
    right = start(client, c, cust.phone, cust.id_number[-4:])
    assert_locked(ok(right), locked_until)
    assert_no_phone(cust, wrong_id, unknown_phone, other_customer, both_wrong, fifth, right)
    assert stranger.phone not in other_customer.text
    assert outbox() == []
    after = counts(app)
    assert after["sms_messages"] == before["sms_messages"]
    assert after["otp_challenges"] == before["otp_challenges"] + 5  # one per mismatch, none for the refusal
    assert all(ch.code_hash is None for ch in challenges(app, c))
    assert [ch.mismatches for ch in challenges(app, c)] == [1, 2, 3, 4, 5]

    # once the lock is over the right details get a code again
    clock.advance(seconds=1)
    assert ok(start(client, c, cust.phone, cust.id_number[-4:]))["status"] == "sent"
    assert [m["to"] for m in outbox()] == ["+86" + cust.phone]


def test_id_last4_with_x_is_case_insensitive(app, client, clock, outbox, book):
    c = book.customer("钱学森")
    # give this customer an ID ending in X (check character 10)
    with app.state.sessionmaker() as db:
        row = db.get(Customer, c.id)
        row.id_number = row.id_number[:14] + "123X"
        db.commit()
    assert ok(start(client, conv(), c.phone, "123x"))["status"] == "sent"
    assert ok(start(client, conv(), c.phone, "123X"))["status"] == "sent"
    assert ok(start(client, conv(), c.phone, "1230")) == {"status": "not_matched", "attempts_left": 4}
    assert len(outbox()) == 2


# --------------------------------------------------------------------------- 2. verification: check

def test_right_code_verifies_once(app, client, clock, outbox, cust):
    c = conv()
    ok(start(client, c, cust.phone, cust.id_number[-4:]))
    code = code_from(outbox()[0])
    clock.advance(seconds=60)
    audit_from = last_audit_id(app)
    assert ok(check(client, c, code)) == {"status": "verified", "customer_id": cust.id}
    [audit] = audit_since(app, audit_from)
    assert (audit.action, audit.entity_type, audit.entity_id, audit.detail) == (
        "verification.verified", "customer", str(cust.id), {"conversation": c})
    [ch] = challenges(app, c)
    assert ch.verified_at is not None
    # single use
    assert ok(check(client, c, code)) == {"status": "no_code"}
    # and a code belongs to its conversation only
    assert ok(check(client, conv(), code)) == {"status": "no_code"}


def test_wrong_codes_count_down_then_lock_for_30_minutes(app, client, clock, outbox, cust):
    c = conv()
    ok(start(client, c, cust.phone, cust.id_number[-4:]))
    code = code_from(outbox()[0])
    wrong = other_code(code)
    answers = []
    for _ in range(4):
        clock.advance(seconds=10)
        answers.append(ok(check(client, c, wrong)))
    assert answers == [{"status": "wrong_code", "attempts_left": n} for n in (4, 3, 2, 1)]
    assert challenges(app, c)[-1].wrong_attempts == 4

    clock.advance(seconds=10)
    locked_until = clock.at + LOCK
    assert_locked(ok(check(client, c, wrong)), locked_until)

    # during the lock: the right code, and a new start, are refused
    clock.advance(minutes=10)
    assert_locked(ok(check(client, c, code)), locked_until)
    assert_locked(ok(start(client, c, cust.phone, cust.id_number[-4:])), locked_until)
    clock.at = locked_until - timedelta(seconds=1)
    assert_locked(ok(check(client, c, code)), locked_until)
    assert len(outbox()) == 1
    assert challenges(app, c)[-1].verified_at is None

    # 30 minutes later start works again, with a fresh code and fresh attempts
    clock.at = locked_until
    assert ok(start(client, c, cust.phone, cust.id_number[-4:]))["status"] == "sent"
    sent = outbox()
    assert len(sent) == 2
    fresh = code_from(sent[1])
    if fresh != code:
        assert ok(check(client, c, code)) == {"status": "wrong_code", "attempts_left": 4}
    assert ok(check(client, c, fresh)) == {"status": "verified", "customer_id": cust.id}


def test_code_expires_after_300_seconds(client, clock, outbox, cust):
    c = conv()
    ok(start(client, c, cust.phone, cust.id_number[-4:]))
    code = code_from(outbox()[0])
    clock.advance(seconds=301)
    assert ok(check(client, c, code)) == {"status": "expired"}

    # 299 seconds is still in time
    c2 = conv()
    ok(start(client, c2, cust.phone, cust.id_number[-4:]))
    code2 = code_from(outbox()[1])
    clock.advance(seconds=299)
    assert ok(check(client, c2, code2)) == {"status": "verified", "customer_id": cust.id}


def test_check_without_a_code(client, clock):
    assert ok(check(client, conv(), "123456")) == {"status": "no_code"}


# --------------------------------------------------------------------------- 3. bad input

BAD_STARTS = [
    {"phone": "12012345678"},  # 12x is not a mainland mobile prefix
    {"phone": "1381234567"},  # 10 digits
    {"phone": "138123456789"},  # 12 digits
    {"phone": "+85213812345678"},
    {"phone": "138 1234 5678"},
    {"phone": "１３８１２３４５６７８"},  # full-width digits
    {"phone": "٠١٣٨١٢٣٤٥٦٧"},  # Arabic-Indic digits
    {"phone": "13８12345678"},  # one full-width digit after a valid prefix
    {"phone": "+86138١٢٣٤٥٦٧٨"},  # Arabic-Indic digits after a valid prefix
    {"id_last4": "12A4"},
    {"id_last4": "123Y"},
    {"id_last4": "12X4"},  # X only as the check character
    {"id_last4": "123"},
    {"id_last4": "１２３４"},
    {"conversation": "ab"},
    {"extra": "field"},
]


@pytest.mark.parametrize("change", BAD_STARTS, ids=[json.dumps(b, ensure_ascii=False) for b in BAD_STARTS])
def test_bad_start_input_is_422_and_writes_nothing(app, client, clock, outbox, cust, change):
    body = {"conversation": conv(), "phone": cust.phone, "id_last4": cust.id_number[-4:], **change}
    before = counts(app)
    resp = post(client, START_PATH, body)
    err = assert_error(resp, 422, "invalid_input")
    assert (err["message_zh"], err["message_en"]) == ("输入内容不正确，请检查后重试", "Invalid input")
    assert counts(app) == before
    assert outbox() == []
    assert_no_phone(cust, resp)


BAD_CHECKS = [{"code": "12345"}, {"code": "1234567"}, {"code": "12345a"}, {"code": "１２３４５６"},
              {"code": 123456}, {"extra": "field"}, {"conversation": "ab"}]


@pytest.mark.parametrize("change", BAD_CHECKS, ids=[json.dumps(b, ensure_ascii=False) for b in BAD_CHECKS])
def test_bad_check_input_is_422_and_costs_no_attempt(app, client, clock, outbox, cust, change):
    c = conv()
    ok(start(client, c, cust.phone, cust.id_number[-4:]))
    before = counts(app)
    body = {"conversation": c, "code": "000000", **change}
    err = assert_error(post(client, CHECK_PATH, body), 422, "invalid_input")
    assert (err["message_zh"], err["message_en"]) == ("输入内容不正确，请检查后重试", "Invalid input")
    assert counts(app) == before
    assert challenges(app, c)[-1].wrong_attempts == 0


def test_missing_fields_are_422(app, client):
    before = counts(app)
    assert_error(post(client, START_PATH, {"conversation": conv()}), 422, "invalid_input")
    assert_error(post(client, CHECK_PATH, {"conversation": conv()}), 422, "invalid_input")
    assert_error(client.post(START_PATH, headers=HEADERS, content=b"not json"), 422, "invalid_input")
    assert counts(app) == before


# --------------------------------------------------------------------------- 4. wrong person

def wrong_person(client, channel, external_id):
    return post(client, f"/api/v1/identities/{channel}/{external_id}/wrong-person")


def test_wrong_person_on_a_known_identity(app, client, cust):
    audit_from = last_audit_id(app)
    before = counts(app)
    resp = wrong_person(client, "sms", cust.sms_id)
    body = ok(resp)
    assert body["channel"] == "sms"
    assert body["external_id_masked"] == masked(cust.phone)
    assert (body["customer_id"], body["verified"], body["status"]) == (cust.id, False, "wrong_person")
    assert_no_phone(cust, resp)

    with app.state.sessionmaker() as db:
        ident = db.scalar(select(ChannelIdentity).where(ChannelIdentity.channel == Channel.sms,
                                                        ChannelIdentity.external_id == cust.sms_id))
        assert (ident.customer_id, ident.verified, ident.status) == (cust.id, False, IdentityStatus.wrong_person)
        ident_id = ident.id
        # the other identities of the customer are untouched
        web = db.scalar(select(ChannelIdentity).where(ChannelIdentity.external_id == cust.web_id))
        assert (web.verified, web.status) == (True, IdentityStatus.active)

    got = ok(client.get(f"/api/v1/identities/sms/{cust.sms_id}", headers=HEADERS))
    assert got == body
    assert (got["status"], got["verified"], got["customer_id"]) == ("wrong_person", False, cust.id)

    assert counts(app) == {**before, "audit_log": before["audit_log"] + 1}
    [audit] = audit_since(app, audit_from)
    assert (audit.actor, audit.action, audit.entity_type, audit.entity_id, audit.detail) == (
        "actions", "identity.wrong_person", "channel_identity", str(ident_id), {"channel": "sms"})


def test_wrong_person_on_an_unknown_identity_creates_it(app, client):
    external = f"webstranger{uuid.uuid4().hex[:10]}"
    audit_from = last_audit_id(app)
    before = counts(app)
    body = ok(wrong_person(client, "web", external))
    assert body == {"channel": "web", "external_id_masked": external, "customer_id": None, "verified": False,
                    "status": "wrong_person", "opted_out": False, "last_inbound_at": None, "customer": None}
    assert ok(client.get(f"/api/v1/identities/web/{external}", headers=HEADERS)) == body
    assert counts(app) == {**before, "channel_identities": before["channel_identities"] + 1,
                           "audit_log": before["audit_log"] + 1}
    with app.state.sessionmaker() as db:
        ident = db.scalar(select(ChannelIdentity).where(ChannelIdentity.external_id == external))
        assert (ident.channel, ident.customer_id, ident.verified, ident.status) == (
            Channel.web, None, False, IdentityStatus.wrong_person)
    [audit] = audit_since(app, audit_from)
    assert (audit.action, audit.entity_id, audit.detail) == ("identity.wrong_person", str(ident.id), {"channel": "web"})


def test_wrong_person_on_an_unknown_channel_is_422(app, client):
    before = counts(app)
    err = assert_error(wrong_person(client, "qq", "12345678"), 422, "unknown_channel")
    assert (err["message_zh"], err["message_en"]) == ("不支持的渠道", "Unknown channel")
    assert counts(app) == before


def test_wrong_person_with_an_over_long_external_id_is_422_on_every_database(app, client):
    """The column holds 64 characters: longer ids are refused up front (PostgreSQL used to answer 500,
    SQLite stored them)."""
    before = counts(app)
    err = assert_error(wrong_person(client, "web", "w" * 65), 422, "invalid_input")
    assert err["message_en"] == "The channel identity is too long"
    assert counts(app) == before
    edge = uuid.uuid4().hex * 2  # exactly 64
    assert ok(wrong_person(client, "web", edge))["status"] == "wrong_person"
    assert counts(app)["channel_identities"] == before["channel_identities"] + 1


# --------------------------------------------------------------------------- 5. unsubscribe

def test_unsubscribe(app, client, book):
    c = book.customer("孙悦")
    with app.state.sessionmaker() as db:
        db.get(Customer, c.id).consent_marketing = True
        db.commit()
    audit_from = last_audit_id(app)
    resp = post(client, f"/api/v1/customers/{c.id}/unsubscribe")
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    with app.state.sessionmaker() as db:
        row = db.get(Customer, c.id)
        assert (row.consent_reminders, row.consent_marketing) == (False, False)
    got = ok(client.get(f"/api/v1/customers/{c.id}", headers=HEADERS))
    assert (got["consent_reminders"], got["consent_marketing"]) == (False, False)
    [audit] = audit_since(app, audit_from)
    assert (audit.actor, audit.action, audit.entity_type, audit.entity_id) == (
        "actions", "customer.unsubscribed", "customer", str(c.id))


def test_unsubscribe_unknown_customer_is_404(app, client):
    before = counts(app)
    err = assert_error(post(client, "/api/v1/customers/987654/unsubscribe"), 404, "not_found")
    assert err["message_en"] == "Customer not found"
    assert counts(app) == before


# --------------------------------------------------------------------------- 6. promises to pay

RATE = D("0.12")


def penalty(principal: Decimal, days: int) -> Decimal:
    return q(principal * RATE * Decimal("1.5") / 360 * days) if days > 0 else D("0.00")


@pytest.fixture(scope="module")
def promiser(book):
    return book.customer("周芷若")


@pytest.fixture(scope="module")
def overdue_loan(book, promiser):
    """6000 @ 12%, 6 months from 2026-09-13, instalment 1 paid, instalment 2 (due 11-13) 10 days overdue."""
    return book.loan(promiser.id, "6000", "0.12", 6, date(2026, 9, 13), product="xinyongdai", paid=1)


def promise(client, loan_id, promised: date, amount=None, channel="wechat", **extra):
    body = {"promised_date": promised.isoformat(), "channel": channel, **extra}
    if amount is not None:
        body["amount"] = amount
    return post(client, f"/api/v1/loans/{loan_id}/promises", body)


def summary(client, loan_id, as_of: date) -> dict:
    return ok(client.get(f"/api/v1/loans/{loan_id}", headers=HEADERS, params={"as_of": as_of.isoformat()}))


def stored_promise(app, promise_id) -> PromiseToPay:
    with app.state.sessionmaker() as db:
        return db.get(PromiseToPay, promise_id)


def test_promise_defaults_to_the_amount_due_on_the_promised_date(app, client, overdue_loan, promiser):
    rows = overdue_loan.rows
    on = TODAY + timedelta(days=3)  # instalment 2 then 13 days overdue, instalment 3 (12-13) next
    expected = Decimal(summary(client, overdue_loan.id, on)["amount_due"])
    assert expected == rows[1].total + penalty(rows[1].principal, 13) + rows[2].total
    audit_from = last_audit_id(app)
    body = ok(promise(client, overdue_loan.id, on), 201)
    assert body == {"id": body["id"], "loan_id": overdue_loan.id, "promised_date": on.isoformat(),
                    "amount": str(expected), "status": "open"}
    row = stored_promise(app, body["id"])
    assert (row.customer_id, row.loan_id, row.promised_date, row.amount, row.channel, row.status) == (
        promiser.id, overdue_loan.id, on, expected, "wechat", PromiseStatus.open)
    [audit] = audit_since(app, audit_from)
    assert (audit.action, audit.entity_type, audit.entity_id, audit.detail) == (
        "promise.recorded", "loan", str(overdue_loan.id), {"promised_date": on.isoformat(), "amount": str(expected)})

    # after the next due date the amount due covers it too
    later = date(2026, 12, 20)
    expected_later = Decimal(summary(client, overdue_loan.id, later)["amount_due"])
    assert expected_later == (rows[1].total + penalty(rows[1].principal, 37) + rows[2].total
                              + penalty(rows[2].principal, 7) + rows[3].total)
    body = ok(promise(client, overdue_loan.id, later, channel="sms"), 201)
    assert Decimal(body["amount"]) == expected_later
    assert stored_promise(app, body["id"]).amount == expected_later


def test_promise_with_an_explicit_amount_is_stored_exactly(app, client, overdue_loan):
    body = ok(promise(client, overdue_loan.id, TODAY, amount="500.5", channel="web"), 201)
    assert (body["amount"], body["promised_date"], body["status"]) == ("500.50", TODAY.isoformat(), "open")
    row = stored_promise(app, body["id"])
    assert (row.amount, row.channel) == (D("500.50"), "web")
    body = ok(promise(client, overdue_loan.id, TODAY + timedelta(days=30), amount="1234.56"), 201)
    assert body["amount"] == "1234.56"
    assert stored_promise(app, body["id"]).amount == D("1234.56")


def test_promise_amount_up_to_the_total_outstanding(app, client, overdue_loan):
    on = TODAY + timedelta(days=5)
    total = Decimal(summary(client, overdue_loan.id, on)["total_outstanding"])
    before = counts(app)
    err = assert_error(promise(client, overdue_loan.id, on, amount=str(total + D("0.01"))), 422,
                       "amount_out_of_range")
    assert err["message_en"] == "The amount must be positive and not more than the outstanding total"
    assert counts(app) == before
    assert ok(promise(client, overdue_loan.id, on, amount=str(total)), 201)["amount"] == str(total)


@pytest.mark.parametrize("days, code, message_en", [
    (-1, "date_in_past", "The promised date cannot be in the past"),
    (31, "date_too_far", "The promised date must be within 30 days"),
])
def test_promise_dates_outside_the_window_are_422(app, client, overdue_loan, days, code, message_en):
    before = counts(app)
    err = assert_error(promise(client, overdue_loan.id, TODAY + timedelta(days=days)), 422, code)
    assert err["message_en"] == message_en
    err = assert_error(promise(client, overdue_loan.id, TODAY + timedelta(days=days), amount="100.00"), 422, code)
    assert counts(app) == before


@pytest.mark.parametrize("change", [
    {"amount": "0"}, {"amount": "-5.00"}, {"amount": "1.234"}, {"channel": "qq"}, {"extra": 1},
    {"promised_date": "2026-13-01"},
])
def test_promise_bad_input_is_422(app, client, overdue_loan, change):
    before = counts(app)
    body = {"promised_date": TODAY.isoformat(), "channel": "wechat", **change}
    assert_error(post(client, f"/api/v1/loans/{overdue_loan.id}/promises", body), 422, "invalid_input")
    assert counts(app) == before


def test_promise_on_a_settled_loan_is_409(app, client, book, promiser):
    loan = book.loan(promiser.id, "3000", "0.12", 3, date(2026, 5, 1), product="xinyongdai", paid=3)
    assert summary(client, loan.id, TODAY)["status"] == "settled"
    before = counts(app)
    assert_error(promise(client, loan.id, TODAY + timedelta(days=1)), 409, "loan_settled")
    assert_error(promise(client, loan.id, TODAY + timedelta(days=1), amount="10.00"), 409, "loan_settled")
    assert counts(app) == before


def test_promise_on_an_unknown_loan_is_404(app, client):
    before = counts(app)
    assert_error(promise(client, 987654, TODAY), 404, "not_found")
    assert counts(app) == before


def test_customer_promises_lists_the_open_ones(app, client, book):
    c = book.customer("张无忌")
    loan = book.loan(c.id, "12000", "0.12", 12, date(2026, 10, 5), product="xiaofeidai", paid=1)
    assert ok(client.get(f"/api/v1/customers/{c.id}/promises", headers=HEADERS)) == []
    first = ok(promise(client, loan.id, TODAY + timedelta(days=2), amount="300.00"), 201)
    second = ok(promise(client, loan.id, TODAY + timedelta(days=12)), 201)
    kept = ok(promise(client, loan.id, TODAY + timedelta(days=1), amount="50.00"), 201)
    with app.state.sessionmaker() as db:
        db.get(PromiseToPay, kept["id"]).status = PromiseStatus.kept
        db.commit()
    listed = ok(client.get(f"/api/v1/customers/{c.id}/promises", headers=HEADERS))
    assert listed == [first, second]
    assert second["amount"] == summary(client, loan.id, TODAY + timedelta(days=12))["amount_due"]
    assert_error(client.get("/api/v1/customers/987654/promises", headers=HEADERS), 404, "not_found")


# --------------------------------------------------------------------------- 7. loan summary breakdown

def parts(body: dict) -> tuple[Decimal, ...]:
    return tuple(Decimal(body[k]) for k in (
        "outstanding_principal", "outstanding_interest", "outstanding_fees", "penalty_interest", "total_outstanding"))


def test_summary_total_is_the_sum_of_its_parts_for_an_overdue_loan(app, client, book, promiser):
    """Hand-built: instalment 1 and its 10.00 fee are paid; instalment 2 (due 11-13) carries a 15.00 fee
    of which 5.00 is paid, has 100.00 principal paid on 11-18 with the penalty to that day booked (and
    1.00 of it paid); instalment 4 carries a 20.00 fee. Unpaid fees: 10.00 + 20.00."""
    loan = book.loan(promiser.id, "6000", "0.12", 6, date(2026, 9, 13), product="xinyongdai", paid=1,
                     fees={1: D("10.00"), 2: D("15.00"), 4: D("20.00")})
    rows = loan.rows
    booked = penalty(rows[1].principal, 5)  # 11-13 .. 11-18 on the full principal
    with app.state.sessionmaker() as db:
        inst = db.scalar(select(Instalment).where(Instalment.loan_id == loan.id, Instalment.seq == 2))
        inst.paid_principal = D("100.00")
        inst.paid_fee = D("5.00")
        inst.penalty_charged = booked
        inst.paid_penalty = D("1.00")
        inst.penalty_accrued_to = date(2026, 11, 18)
        db.commit()

    principal = sum(r.principal for r in rows[1:]) - D("100.00")
    interest = sum(r.interest for r in rows[1:])
    pen = booked - D("1.00") + penalty(rows[1].principal - D("100.00"), 5)  # 11-18 .. 11-23
    body = summary(client, loan.id, TODAY)
    assert body["status"] == "overdue"
    assert parts(body) == (principal, interest, D("30.00"), pen, principal + interest + D("30.00") + pen)
    p, i, f, n, total = parts(body)
    assert total == p + i + f + n
    assert all(re.fullmatch(r"\d+\.\d{2}", body[k]) for k in (
        "outstanding_principal", "outstanding_interest", "outstanding_fees", "penalty_interest", "total_outstanding"))

    # the same identity on later days and in the customer's list
    for as_of in (date(2026, 12, 20), date(2027, 3, 13)):
        p, i, f, n, total = parts(summary(client, loan.id, as_of))
        assert n > 0
        assert total == p + i + f + n
    listed = {b["id"]: b for b in ok(client.get(f"/api/v1/customers/{promiser.id}/loans", headers=HEADERS))}
    assert parts(listed[loan.id]) == parts(body)


def test_summary_total_is_the_sum_of_its_parts_for_a_current_loan(client, book, promiser):
    loan = book.loan(promiser.id, "24000", "0.0999", 12, date(2026, 10, 3), product="jingyingdai", paid=1,
                     fees={3: D("8.88")})
    rows = loan.rows
    body = summary(client, loan.id, TODAY)
    assert body["status"] == "active"
    principal = D("24000") - rows[0].principal
    interest = sum(r.interest for r in rows[1:])
    assert parts(body) == (principal, interest, D("8.88"), D("0.00"), principal + interest + D("8.88"))
    assert body["outstanding_fees"] == "8.88" and body["penalty_interest"] == "0.00"
