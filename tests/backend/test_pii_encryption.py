"""Personal numbers at rest (PIPL Art. 51; backend/core/crypto.py, migrations 0012, 0013): phone and ID
numbers and channel ids are stored encrypted with keyed lookup hashes, SMS conversation numbers are
hashed (sessions) or tokenised (outreach; since 0013 also complaints, plan requests, settlement intents,
handoff cases, verification challenges and the audit log), every query by phone or conversation keeps
working, the API answers as before, the migrations encrypt existing rows in place and their downgrades
decrypt them. Also the development SMS outbox (masked unless SMS_OUTBOX_SHOW_CODES) and the published
development secrets."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.exc import IntegrityError

from backend.core import crypto
from backend.core.config import (
    DEV_PII_ENCRYPTION_KEY, DEV_PII_HASH_KEY, PUBLISHED_DEV_SECRETS, ROOT, published_dev_secrets_in,
)
from backend.core.crypto import PiiCipher, PiiKeyError
from backend.models import (
    Channel, ChannelIdentity, ConversationSession, Customer, OutreachKind, OutreachNotice, OutreachStatus,
)
from backend.services.sms import OutboxSender
from testkit import HEADERS


def raw(app, sql: str, **params) -> list[tuple]:
    with app.state.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


# --------------------------------------------------------------------------- the cipher

def test_encryption_is_randomised_and_reversible_and_hashes_are_keyed():
    c = PiiCipher(Fernet.generate_key().decode(), "k1")
    a, b = c.encrypt("13812345678"), c.encrypt("13812345678")
    assert a != b and "13812345678" not in a and c.decrypt(a) == c.decrypt(b) == "13812345678"
    assert c.lookup_hash("13812345678") == c.lookup_hash("13812345678") != c.lookup_hash("13812345679")
    assert PiiCipher(Fernet.generate_key().decode(), "k2").lookup_hash("13812345678") != c.lookup_hash("13812345678")
    assert len(c.lookup_hash("x")) == crypto.HASH_LENGTH
    t = c.tokenize("+8613812345678")
    assert t == c.tokenize("+8613812345678") and "13812345678" not in t and c.detokenize(t) == "+8613812345678"


def test_keys_rotate_the_first_encrypts_every_one_decrypts():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = PiiCipher(old, "h")
    token, tok = before.encrypt("11010519850301123X"), before.tokenize("+8613812345678")
    rotated = PiiCipher(f"{new},{old}", "h")
    assert rotated.decrypt(token) == "11010519850301123X" and rotated.detokenize(tok) == "+8613812345678"
    assert PiiCipher(new, "h").decrypt(rotated.rotate(token)) == "11010519850301123X"
    with pytest.raises(PiiKeyError):
        PiiCipher(new, "h").decrypt(token)


@pytest.mark.parametrize("enc, hash_key", [("", "h"), ("not-a-key", "h"), (DEV_PII_ENCRYPTION_KEY, " ")])
def test_missing_or_malformed_keys_are_refused(enc, hash_key):
    with pytest.raises(PiiKeyError):
        PiiCipher(enc, hash_key)


def test_conversation_ids_keep_their_channel_and_lose_the_number():
    assert crypto.hash_conversation("sms:+8613812345678").startswith("sms:#")
    assert crypto.tokenize_conversation("sms:+8613812345678").startswith("sms:~")
    for other in ("web:s-abc", "wechat:o123", "sms:[已匿名化]", None):
        assert crypto.hash_conversation(other) == other == crypto.tokenize_conversation(other)
    tok = crypto.tokenize_conversation("sms:+8613812345678")
    assert crypto.detokenize_conversation(tok) == "sms:+8613812345678"


# --------------------------------------------------------------------------- at rest, through the ORM

def test_numbers_are_stored_encrypted_and_found_through_their_hashes(app, book):
    cust = book.customer("加密")
    (phone, phone_hash, idn, id_hash, last4), = raw(
        app, "SELECT phone, phone_hash, id_number, id_number_hash, id_last4 FROM customers WHERE id = :id", id=cust.id)
    assert cust.phone not in phone and cust.id_number not in idn
    assert phone_hash == crypto.lookup_hash(cust.phone) and id_hash == crypto.lookup_hash(cust.id_number)
    assert last4 == cust.id_number[-4:]
    externals = raw(app, "SELECT channel, external_id, external_id_hash FROM channel_identities WHERE customer_id = :id",
                    id=cust.id)
    assert externals and all(ext not in (cust.sms_id, cust.web_id, cust.wechat_id) for _, ext, _ in externals)
    with app.state.sessionmaker() as db:
        found = db.scalar(select(Customer).where(Customer.phone == cust.phone))
        assert (found.id, found.phone, found.id_number) == (cust.id, cust.phone, cust.id_number)
        assert db.scalar(select(Customer.id).where(Customer.phone.in_([cust.phone, "13900000000"]))) == cust.id
        assert db.scalar(select(Customer.id).where(Customer.id_number == cust.id_number)) == cust.id
        ident = db.scalar(select(ChannelIdentity).where(ChannelIdentity.channel == Channel.sms,
                                                        ChannelIdentity.external_id == cust.sms_id))
        assert ident.customer_id == cust.id and ident.external_id == cust.sms_id
        with pytest.raises(TypeError):
            select(Customer).where(Customer.phone.like("138%"))


def test_changing_a_number_keeps_its_hash_and_the_phone_stays_unique(app, book):
    a, b = book.customer("甲"), book.customer("乙")
    with app.state.sessionmaker() as db:
        c = db.get(Customer, a.id)
        c.phone, c.id_number = "19912345678", "11010519900101002X"
        db.commit()
        assert db.scalar(select(Customer.id).where(Customer.phone == "19912345678")) == a.id
        assert db.get(Customer, a.id).id_last4 == "002X"
    with app.state.sessionmaker() as db:
        db.get(Customer, b.id).phone = "19912345678"
        with pytest.raises(IntegrityError):
            db.commit()


def test_bulk_inserts_get_their_hashes_from_the_values(app):
    with app.state.sessionmaker() as db:
        db.execute(insert(Customer.__table__), [
            dict(name="批量一", phone="19800000001", id_number="110101199001000011", preferred_channel="sms",
                 consent_reminders=True, consent_marketing=False, risk_tier="low", value_tier="basic"),
            dict(name="批量二", phone="19800000002", id_number="110101199001000022", preferred_channel="sms",
                 consent_reminders=True, consent_marketing=False, risk_tier="low", value_tier="basic")])
        db.commit()
        two = db.scalar(select(Customer).where(Customer.phone == "19800000002"))
        assert (two.name, two.id_number, two.id_last4) == ("批量二", "110101199001000022", "0022")


def test_the_api_answers_as_before(app, client, book):
    cust = book.customer("接口")
    r = client.get(f"/api/v1/identities/sms/{cust.sms_id}", headers=HEADERS)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["external_id_masked"] == cust.phone[:3] + "****" + cust.phone[-4:]
    assert body["customer"]["phone_masked"] == cust.phone[:3] + "****" + cust.phone[-4:]
    assert body["customer"]["id_last4"] == cust.id_number[-4:]
    assert cust.phone not in r.text and cust.id_number not in r.text


def test_session_conversations_keep_only_a_hash_and_outreach_conversations_a_token(app, book):
    cust = book.customer("会话")
    conv = f"sms:{cust.sms_id}"
    now = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    with app.state.sessionmaker() as db:
        db.add(ConversationSession(conversation=conv, channel=Channel.sms, customer_id=cust.id, started_at=now))
        notice = OutreachNotice(
            notice_id=str(uuid.uuid4()), customer_id=cust.id, kind=OutreachKind.complaint_update,
            dedupe_key=f"pii-{uuid.uuid4()}", service=True, priority=5, planned_on=date(2026, 11, 23), planned_for=now,
            next_attempt_at=now, expires_at=now, status=OutreachStatus.sent, channel=Channel.sms, conversation=conv,
            payload={"conversation": conv, "reference": "CP1"}, created_at=now)
        db.add(notice)
        db.commit()
        nid = notice.id
    stored = json.dumps(raw(app, "SELECT conversation FROM conversation_sessions WHERE customer_id = :id", id=cust.id)
                        + raw(app, "SELECT conversation, payload FROM outreach_notices WHERE id = :id", id=nid),
                        default=str)
    assert cust.phone not in stored
    with app.state.sessionmaker() as db:
        assert db.scalar(select(ConversationSession.customer_id).where(ConversationSession.conversation == conv)) == cust.id
        n = db.scalar(select(OutreachNotice).where(OutreachNotice.conversation.in_([conv])))
        assert (n.id, n.conversation, n.payload) == (nid, conv, {"conversation": conv, "reference": "CP1"})


# --------------------------------------------------------------------------- the migration

def _alembic(url: str, target: str, down: bool = False) -> None:
    import argparse

    cfg = Config(str(ROOT / "backend" / "alembic.ini"))
    cfg.cmd_opts = argparse.Namespace(x=[f"url={url}"])
    (command.downgrade if down else command.upgrade)(cfg, target)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """An empty database (nothing migrated yet), on SQLite and on PostgreSQL (skipped if unreachable)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    import psycopg
    from conftest import PG_URL, _pg_admin

    try:
        admin = _pg_admin()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    name = f"loan_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _all_text(engine) -> str:
    from sqlalchemy import inspect

    out = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            out += [str(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]
    return "\n".join(out)


def test_migration_0012_encrypts_existing_rows_and_its_downgrade_decrypts_them(empty_url):
    url = empty_url
    _alembic(url, "0011")
    engine = create_engine(url.replace("postgresql+psycopg", "postgresql+psycopg"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO customers (id, name, phone, id_number, preferred_channel, consent_reminders, "
                          "consent_marketing, risk_tier, value_tier) VALUES "
                          "(1, '旧', '13812345678', '11010519850301123X', 'sms', TRUE, FALSE, 'low', 'basic')"))
        conn.execute(text("INSERT INTO channel_identities (channel, external_id, customer_id, verified, status, opted_out) "
                          "VALUES ('sms', '+8613812345678', 1, TRUE, 'active', FALSE), ('web', 'webuser1', 1, TRUE, 'active', FALSE)"))
        conn.execute(text("INSERT INTO conversation_sessions (conversation, channel, customer_id, started_at) "
                          "VALUES ('sms:+8613812345678', 'sms', 1, '2026-11-23 10:00:00'), "
                          "('web:webuser1', 'web', 1, '2026-11-23 10:00:00')"))
        conn.execute(text(
            "INSERT INTO outreach_notices (notice_id, customer_id, kind, dedupe_key, service, priority, planned_on, "
            "planned_for, next_attempt_at, expires_at, status, channel, conversation, attempts, payload, created_at) "
            "VALUES ('n1', 1, 'complaint_update', 'd1', TRUE, 5, '2026-11-23', '2026-11-23 10:00:00', "
            "'2026-11-23 10:00:00', '2026-11-24 10:00:00', 'sent', 'sms', 'sms:+8613812345678', 0, "
            "'{\"conversation\": \"sms:+8613812345678\", \"reference\": \"CP1\"}', '2026-11-23 10:00:00')"))
    _alembic(url, "0012")
    dump = _all_text(engine)
    assert "13812345678" not in dump and "11010519850301123X" not in dump and "webuser1" in dump  # web session id
    with engine.connect() as conn:
        phone, idn, last4, phash = conn.execute(text("SELECT phone, id_number, id_last4, phone_hash FROM customers")).one()
        assert crypto.decrypt(phone) == "13812345678" and crypto.decrypt(idn) == "11010519850301123X"
        assert (last4, phash) == ("123X", crypto.lookup_hash("13812345678"))
        ext = dict(conn.execute(text("SELECT channel, external_id FROM channel_identities")).all())
        assert crypto.decrypt(ext["sms"]) == "+8613812345678" and crypto.decrypt(ext["web"]) == "webuser1"
        conv, payload = conn.execute(text("SELECT conversation, payload FROM outreach_notices")).one()
        assert crypto.detokenize_conversation(conv) == "sms:+8613812345678"
        payload = payload if isinstance(payload, dict) else json.loads(payload)
        assert crypto.detokenize_conversation(payload["conversation"]) == "sms:+8613812345678"
    engine.dispose()
    _alembic(url, "0011", down=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT phone, id_number FROM customers")).one() == ("13812345678", "11010519850301123X")
        assert sorted(r[0] for r in conn.execute(text("SELECT external_id FROM channel_identities"))) == [
            "+8613812345678", "webuser1"]
        conv, payload = conn.execute(text("SELECT conversation, payload FROM outreach_notices")).one()
        payload = payload if isinstance(payload, dict) else json.loads(payload)
        assert conv == "sms:+8613812345678" and payload["conversation"] == conv
        # The session's number is gone for good (a hash); the web session is untouched.
        sessions = sorted(r[0] for r in conn.execute(text("SELECT conversation FROM conversation_sessions")))
        assert sessions[0].startswith("sms:#") and sessions[1] == "web:webuser1"
    engine.dispose()
    _alembic(url, "head")


# --------------------------------------------------------------------------- the SMS outbox

CODE_SMS = "【贷款客服】您的验证码是482913，5分钟内有效。请勿告诉他人。"


def test_the_outbox_masks_numbers_and_codes_unless_told_to_show_them(tmp_path):
    masked, shown = tmp_path / "masked.jsonl", tmp_path / "shown.jsonl"
    OutboxSender(masked, show_codes=False).send("+8613812345678", CODE_SMS + "客服13912345678")
    OutboxSender(shown, show_codes=True).send("+8613812345678", CODE_SMS)
    m = json.loads(masked.read_text(encoding="utf-8"))
    assert m["to"] == "138****5678" and "482913" not in m["body"] and "验证码是******" in m["body"]
    assert "13912345678" not in m["body"] and "139****5678" in m["body"]
    s = json.loads(shown.read_text(encoding="utf-8"))
    assert (s["to"], s["body"]) == ("+8613812345678", CODE_SMS)


def test_the_outbox_masks_by_default():
    from backend.core.config import Settings

    assert Settings.model_fields["sms_outbox_show_codes"].default is False


# --------------------------------------------------------------------------- published development secrets

def test_the_development_keys_are_listed_as_published_secrets():
    from bot.settings import _read_env_file

    example = _read_env_file(ROOT / ".env.example")
    assert example["PII_ENCRYPTION_KEY"] == DEV_PII_ENCRYPTION_KEY
    assert example["PII_HASH_KEY"] == DEV_PII_HASH_KEY
    assert DEV_PII_ENCRYPTION_KEY in PUBLISHED_DEV_SECRETS["PII_ENCRYPTION_KEY"]
    assert DEV_PII_HASH_KEY in PUBLISHED_DEV_SECRETS["PII_HASH_KEY"]
    for name, values in PUBLISHED_DEV_SECRETS.items():  # every published value is the one .env.example has
        if name in example and example[name]:
            assert set(values) & {example[name], *(p.partition(":")[2] for p in example[name].split(","))}, name
    assert published_dev_secrets_in({
        "PII_ENCRYPTION_KEY": f"{Fernet.generate_key().decode()},{DEV_PII_ENCRYPTION_KEY}",
        "PII_HASH_KEY": "something-long-and-random",
        "BACKEND_API_KEYS": "actions:dev-actions-key,scheduler:x",
    }) == ["BACKEND_API_KEYS", "PII_ENCRYPTION_KEY"]


# --------------------------------------------------------------------------- the end-to-end tests' view

def test_the_end_to_end_tests_read_and_change_the_database_in_clear(app, book, db_url):
    """tests/e2e/pii_db.py: the e2e tests' SQL on customers, identities and outreach notices."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the end-to-end stack runs on SQLite")
    from tests.e2e.pii_db import connect

    cust = book.customer("视图")
    env = {"PII_ENCRYPTION_KEY": DEV_PII_ENCRYPTION_KEY, "PII_HASH_KEY": DEV_PII_HASH_KEY}
    conn = connect(db_url.removeprefix("sqlite:///"), env)
    try:
        assert conn.execute("SELECT phone, id_number FROM customers WHERE id = ?", (cust.id,)).fetchone() == (
            cust.phone, cust.id_number)
        assert conn.execute("SELECT customer_id FROM channel_identities WHERE channel = 'sms' AND external_id = ?",
                            (cust.sms_id,)).fetchone() == (cust.id,)
        conn.execute("UPDATE customers SET preferred_channel = 'web' WHERE id = ?", (cust.id,))
        with pytest.raises(NotImplementedError):
            conn.execute("UPDATE customers SET phone = '13900000000' WHERE id = ?", (cust.id,))
        conn.execute(
            "INSERT INTO outreach_notices (notice_id, customer_id, kind, dedupe_key, service, priority, planned_on, "
            "planned_for, next_attempt_at, expires_at, status, attempts, payload, created_at) "
            "VALUES ('v1', ?, 'complaint_update', 'view-1', 1, 5, '2026-11-23', '2026-11-23 10:00:00', "
            "'2026-11-23 10:00:00', '2026-11-24 10:00:00', 'planned', 0, '{}', '2026-11-23 10:00:00')", (cust.id,))
        conn.commit()
    finally:
        conn.close()
    with app.state.sessionmaker() as db:
        c = db.get(Customer, cust.id)
        assert (c.preferred_channel, c.phone) == (Channel.web, cust.phone)
        n = db.scalar(select(OutreachNotice).where(OutreachNotice.notice_id == "v1"))
        n.conversation = f"sms:{cust.sms_id}"
        db.commit()
    assert raw(app, "SELECT conversation FROM outreach_notices WHERE notice_id = 'v1'")[0][0].startswith("sms:~")
    with connect(db_url.removeprefix("sqlite:///"), env) as conn:
        assert conn.execute("SELECT conversation FROM outreach_notices WHERE notice_id = 'v1'").fetchone() == (
            f"sms:{cust.sms_id}",)


# --------------------------------------------------------------------------- conversation ids everywhere (0013)

def _conversation_rows(sessionmaker, cust, loan_id: int, tag: str) -> dict[str, str]:
    """One row naming the customer's SMS conversation in every table that keeps a conversation id
    (and a web sign-in challenge), written through the ORM and the audit service as the services do."""
    from backend.models import (
        ComplaintCategory, ComplaintPriority, ComplaintStatus, HandoffCase, HandoffReason, HandoffStatus,
        OtpChallenge, PlanReason, PlanRequest, PlanStatus, PlanType, SettlementIntent, SettlementIntentStatus,
    )
    from backend.models.complaint import ComplaintTicket
    from backend.services import audit

    conv, login = f"sms:{cust.sms_id}", f"weblogin:{cust.phone}"
    now = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    with sessionmaker() as db:
        db.add(ComplaintTicket(reference=f"CP{tag}", customer_id=cust.id, conversation=conv, channel=Channel.sms,
                               category=ComplaintCategory.fees, description="多收了费用", status=ComplaintStatus.received,
                               priority=ComplaintPriority.normal, received_at=now, due_at=now))
        db.add(OtpChallenge(conversation=conv, customer_id=cust.id, created_at=now))
        db.add(OtpChallenge(conversation=login, customer_id=cust.id, created_at=now))
        db.add(HandoffCase(reference=f"HO{tag}", conversation=conv, active_conversation=conv, channel=Channel.sms,
                           customer_id=cust.id, reason=HandoffReason.request_human, priority=3, summary="要求人工",
                           status=HandoffStatus.open, created_at=now))
        db.add(PlanRequest(reference=f"RP{tag}", loan_id=loan_id, customer_id=cust.id, conversation=conv,
                           channel=Channel.sms, reason_category=PlanReason.illness, plan_type=PlanType.deferral,
                           months=1, amount=Decimal("100.00"), quote={}, status=PlanStatus.submitted,
                           submitted_on=date(2026, 11, 23), decision_due_on=date(2026, 11, 30), created_at=now))
        db.add(SettlementIntent(loan_id=loan_id, customer_id=cust.id, conversation=conv, channel=Channel.sms,
                                settle_on=date(2026, 11, 30), quoted_total=Decimal("100.00"), quote={},
                                quoted_on=date(2026, 11, 23), status=SettlementIntentStatus.recorded, created_at=now))
        # As backend/services/verification.py records them.
        audit.record(db, "bot", "verification.mismatch", "conversation", conv, mismatches=1)
        audit.record(db, "bot", "verification.code_sent", "customer", cust.id, conversation=conv)
        audit.record(db, "webchat", "verification.wrong_code", "conversation", login, attempts=1)
        db.commit()
    return {"conv": conv, "login": login}


CONVERSATION_COLUMNS = {  # what migration 0013 tokenises
    "complaint_tickets": ("conversation",), "otp_challenges": ("conversation",),
    "handoff_cases": ("conversation", "active_conversation"), "plan_requests": ("conversation",),
    "settlement_intents": ("conversation",), "audit_log": ("entity_id", "detail"),
}


def _stored(conn, customer_id: int) -> dict[tuple[str, str], list]:
    """The stored conversation values of the customer's rows, per (table, column), in id order."""
    out = {}
    for table, columns in CONVERSATION_COLUMNS.items():
        where = ("entity_type = 'conversation' OR (entity_type = 'customer' AND entity_id = :cid)"
                 if table == "audit_log" else "customer_id = :id")
        rows = conn.execute(text(f"SELECT {', '.join(columns)} FROM {table} WHERE {where} ORDER BY id"),
                            {"id": customer_id, "cid": str(customer_id)}).all()
        for i, column in enumerate(columns):
            values = [r[i] for r in rows]
            if column == "detail":
                values = [(v if isinstance(v, dict) else json.loads(v)).get("conversation") for v in values]
            out[(table, column)] = values
    return out


def _no_number(dump: str, phone: str) -> None:
    import re

    assert phone not in dump and "+86" not in dump, dump
    assert not re.search(r"(?<![0-9A-Za-z_-])1[3-9]\d{9}(?![0-9A-Za-z_-])", dump), dump  # no bare 11-digit mobile


def test_conversation_ids_keep_no_number_anywhere_and_are_found_as_before(app, book):
    from backend.models import AuditLog, HandoffCase, OtpChallenge, PlanRequest, SettlementIntent
    from backend.models.complaint import ComplaintTicket

    cust = book.customer("令牌")
    loan = book.loan(cust.id, "6000.00", "0.18", 6, date(2026, 6, 15))
    ids = _conversation_rows(app.state.sessionmaker, cust, loan.id, f"{cust.id:08d}T")
    conv, login = ids["conv"], ids["login"]
    with app.state.engine.connect() as conn:
        stored = _stored(conn, cust.id)
    _no_number(json.dumps(list(stored.values()), ensure_ascii=False), cust.phone)
    for (table, column), values in stored.items():
        assert any(v and v.startswith(("sms:~", "weblogin:~")) for v in values), (table, column)
    whole = [raw(app, f"SELECT * FROM {t} WHERE customer_id = :id", id=cust.id) for t in CONVERSATION_COLUMNS
             if t != "audit_log"]
    whole += [raw(app, "SELECT * FROM audit_log WHERE action LIKE 'verification.%'")]
    _no_number(json.dumps(whole, ensure_ascii=False, default=str), cust.phone)
    with app.state.sessionmaker() as db:
        for model in (ComplaintTicket, PlanRequest, SettlementIntent, HandoffCase):
            row = db.scalar(select(model).where(model.conversation == conv))
            assert row is not None and row.conversation == conv and row.customer_id == cust.id, model
            assert db.scalar(select(model.id).where(model.conversation.in_([conv, "web:x"]))) == row.id
        assert db.scalar(select(HandoffCase.active_conversation).where(HandoffCase.active_conversation == conv)) == conv
        assert sorted(o.conversation for o in db.scalars(
            select(OtpChallenge).where(OtpChallenge.conversation.in_([conv, login])))) == sorted([conv, login])
        rows = db.scalars(select(AuditLog).where(AuditLog.entity_type == "conversation",
                                                 AuditLog.entity_id.in_([conv, login])).order_by(AuditLog.id)).all()
        assert [(a.action, a.entity_id) for a in rows] == [("verification.mismatch", conv),
                                                             ("verification.wrong_code", login)]
        sent = db.scalar(select(AuditLog).where(AuditLog.action == "verification.code_sent",
                                                AuditLog.entity_id == str(cust.id)))
        assert sent.detail == {"conversation": conv}
        # A unique live case per conversation still holds on the tokens.
        from backend.models import HandoffReason, HandoffStatus

        db.add(HandoffCase(reference=f"HO{cust.id:08d}U", conversation=conv, active_conversation=conv,
                           channel=Channel.sms, customer_id=cust.id, reason=HandoffReason.request_human, priority=3,
                           summary="again", status=HandoffStatus.open,
                           created_at=datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)))
        with pytest.raises(IntegrityError):
            db.commit()


def test_the_export_and_erasure_find_the_tokenised_conversations(app, book):
    """backend/services/retention.py matches by conversation id: a customer's tokenised rows are found."""
    from backend.services import retention

    cust = book.customer("导出")
    loan = book.loan(cust.id, "6000.00", "0.18", 6, date(2026, 6, 15))
    conv = _conversation_rows(app.state.sessionmaker, cust, loan.id, f"{cust.id:08d}E")["conv"]
    now = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
    with app.state.sessionmaker() as db:
        data = retention.export_customer(db, cust.id, now, actor="test", review_secret="s")
        db.rollback()
    assert [t["conversation"] for t in data["complaints"]] == [conv]
    assert [p["conversation"] for p in data["plan_requests"]] == [conv]
    assert [s["conversation"] for s in data["settlement_intents"]] == [conv]
    assert [c["conversation"] for c in data["handoff_cases"]] == [conv]
    assert conv in [o["conversation"] for o in data["verification_challenges"]]
    assert ("verification.mismatch", conv) in [(a["action"], a["entity_id"]) for a in data["audit_log"]]


def test_migration_0013_tokenises_conversation_ids_and_its_downgrade_restores_them(empty_url):
    from sqlalchemy.orm import sessionmaker

    from backend.db import make_engine
    from testkit import Book

    url = empty_url
    _alembic(url, "head")
    engine = make_engine(url)
    book = Book(sessionmaker(engine))
    cust = book.customer("迁移")
    loan = book.loan(cust.id, "6000.00", "0.18", 6, date(2026, 6, 15))
    ids = _conversation_rows(book.sessionmaker, cust, loan.id, "MIG")
    conv, login = ids["conv"], ids["login"]
    with engine.connect() as conn:
        tokens = _stored(conn, cust.id)
    _no_number(json.dumps(list(tokens.values()), ensure_ascii=False), cust.phone)
    clear = {k: [crypto.detokenize_conversation(v) for v in vs] for k, vs in tokens.items()}
    assert clear[("complaint_tickets", "conversation")] == [conv]
    assert sorted(clear[("otp_challenges", "conversation")]) == sorted([conv, login])
    assert clear[("audit_log", "entity_id")][:1] == [conv] and login in clear[("audit_log", "entity_id")]
    engine.dispose()

    for _ in range(2):  # 0012 -> 0013 -> 0012, twice: nothing is lost or changed
        _alembic(url, "0012", down=True)
        with engine.connect() as conn:
            assert _stored(conn, cust.id) == clear  # the numbers in clear again
        engine.dispose()
        _alembic(url, "0013")
        with engine.connect() as conn:
            assert _stored(conn, cust.id) == tokens  # the same tokens (deterministic)
        engine.dispose()
    _alembic(url, "head")
    with book.sessionmaker() as db:
        from backend.models.complaint import ComplaintTicket

        assert db.scalar(select(ComplaintTicket.reference).where(ComplaintTicket.conversation == conv)) == "CPMIG"
    engine.dispose()


def test_the_end_to_end_views_show_the_tokenised_conversations_in_clear(app, book, db_url):
    """tests/e2e/pii_db.py: ``SELECT ... WHERE conversation = ?`` with a clear sender id still works."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the end-to-end stack runs on SQLite")
    from tests.e2e.pii_db import connect

    cust = book.customer("视图二")
    loan = book.loan(cust.id, "6000.00", "0.18", 6, date(2026, 6, 15))
    conv = _conversation_rows(app.state.sessionmaker, cust, loan.id, f"{cust.id:08d}V")["conv"]
    env = {"PII_ENCRYPTION_KEY": DEV_PII_ENCRYPTION_KEY, "PII_HASH_KEY": DEV_PII_HASH_KEY}
    with connect(db_url.removeprefix("sqlite:///"), env) as conn:
        for table in ("complaint_tickets", "plan_requests", "settlement_intents", "handoff_cases", "otp_challenges"):
            assert conn.execute(f"SELECT conversation, customer_id FROM {table} WHERE conversation = ?",
                                (conv,)).fetchall() == [(conv, cust.id)], table
        assert conn.execute("SELECT active_conversation FROM handoff_cases WHERE customer_id = ?",
                            (cust.id,)).fetchone() == (conv,)
        assert conn.execute("SELECT action FROM audit_log WHERE entity_type = 'conversation' AND entity_id = ?",
                            (conv,)).fetchall() == [("verification.mismatch",)]
        (detail,) = conn.execute("SELECT detail FROM audit_log WHERE action = 'verification.code_sent' "
                                 "AND entity_id = ?", (str(cust.id),)).fetchone()
        assert json.loads(detail) == {"conversation": conv}
        conn.execute("UPDATE complaint_tickets SET description = 'x' WHERE reference = ?", (f"CP{cust.id:08d}V",))
        with pytest.raises(NotImplementedError):
            conn.execute("UPDATE complaint_tickets SET conversation = 'sms:+8613900000000' WHERE id = 1")
