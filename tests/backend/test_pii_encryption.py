"""Personal numbers at rest (PIPL Art. 51; backend/core/crypto.py, migration 0012): phone and ID
numbers and channel ids are stored encrypted with keyed lookup hashes, SMS conversation numbers are
hashed (sessions) or tokenised (outreach), every query by phone goes through the hash, the API answers
as before, the migration encrypts existing rows in place and its downgrade decrypts them. Also the
development SMS outbox (masked unless SMS_OUTBOX_SHOW_CODES) and the published development secrets."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone

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
