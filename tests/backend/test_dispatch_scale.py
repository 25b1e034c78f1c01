"""Outreach at book scale (issue 17): two dispatchers, each delivering with a pool of threads, send
2,000 notices on PostgreSQL, each exactly once; and the caps still hold exactly when deliveries run
side by side.

PostgreSQL only (FOR UPDATE SKIP LOCKED is the claim being tested at this volume; the SQLite claim is
covered by tests/backend/test_outreach_exactly_once.py); skipped when 127.0.0.1:5432 is unreachable.

Rasa here is tests/backend/fake_rasa.FakeRasa, a real HTTP server on 127.0.0.1 that keeps trackers
the way Rasa does and records every request exactly as it arrived. Why not the real Rasa: the volume.
2,000 notices are 6,000 calls to Rasa's HTTP API (the tracker read, the new conversation's session,
the delivery), each running action_session_start in the action server for a new conversation; on
the 2-core machine that is minutes (`make bench-outreach` measures it), beyond this test's budget.
What is tested here is the dispatchers' side: claims, concurrency, exactly-once and the outreach
log. The real-Rasa delivery path (the bot event with the notice id recorded in the tracker and sent
out on the channel) stays covered by tests/e2e/test_outreach.py and tests/scheduler/.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import func, insert, select

from backend.cli import migrate
from backend.core.clock import SHANGHAI
from backend.core.config import get_settings, load_rules
from backend.db import make_engine, make_sessionmaker
from backend.models import (
    Channel, ChannelIdentity, Customer, Instalment, Loan, LoanStatus, OutboxMessage, OutreachAttempt, OutreachKind,
    OutreachNotice, OutreachStatus,
)
from backend.services.money import amortize
from backend.services.outreach import dispatcher, planner
from backend.services.outreach.context import Outreach
from backend.services.outreach.sender import RasaSender
from backend.services.rasa_api import RasaClient
from fake_rasa import FakeRasa
from testkit import ManualClock, id_checksum

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
TOKEN = "rasa-scale-token"
DAY = date(2026, 12, 7)
DUE = DAY + timedelta(days=3)
T10 = datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
BORROWERS = 2000


@pytest.fixture(scope="module")
def sessions():
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {exc}")
    name = f"loan_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = None
    try:
        url = PG_URL.format(name=name)
        migrate(url)
        engine = make_engine(url)
        yield make_sessionmaker(engine)
    finally:
        if engine is not None:
            engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def rules():
    return load_rules(get_settings().business_rules_path)


@pytest.fixture
def fake():
    with FakeRasa(TOKEN) as rasa:
        yield rasa


@pytest.fixture(autouse=True)
def quiet_httpx():
    """httpx logs every request at INFO: 6,000 lines in a failure's report otherwise."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def borrowers(sessions, count: int, loans_each: int = 1, first: int = 0) -> dict[int, str]:
    """``count`` borrowers preferring SMS (their only channel), each with ``loans_each`` one-month
    loans of 1,000 yuan at 12 % due on DUE (1,010.00 to pay), written with bulk INSERTs (as
    bench.book does); customer id -> SMS conversation."""
    phones = [f"139{i:08d}" for i in range(first, first + count)]
    ids = []
    for i in range(first, first + count):
        first17 = f"110105{date(1970, 1, 1) + timedelta(days=i):%Y%m%d}{i % 1000:03d}"
        ids.append(first17 + id_checksum(first17))
    (row,) = amortize(Decimal("1000.00"), Decimal("0.12"), 1, date(2026, 11, 10))
    assert (row.due_date, row.principal + row.interest) == (DUE, Decimal("1010.00"))
    with sessions() as db:
        customers = db.execute(insert(Customer.__table__).returning(Customer.__table__.c.id, sort_by_parameter_order=True), [
            dict(name="张三", phone=phone, id_number=id_number, preferred_channel=Channel.sms, consent_reminders=True,
                 consent_marketing=False) for phone, id_number in zip(phones, ids)]).scalars().all()
        db.execute(insert(ChannelIdentity.__table__), [
            dict(channel=Channel.sms, external_id="+86" + phone, customer_id=cid, verified=True)
            for cid, phone in zip(customers, phones)])
        plans = [(cid, k) for cid in customers for k in range(loans_each)]
        loans = db.execute(insert(Loan.__table__).returning(Loan.__table__.c.id, sort_by_parameter_order=True), [
            dict(loan_no=f"LNS{cid:07d}{k}", customer_id=cid, product="xiaofeidai", principal=Decimal("1000.00"),
                 annual_rate=Decimal("0.12"), term_months=1, start_date=date(2026, 11, 10), status=LoanStatus.active)
            for cid, k in plans]).scalars().all()
        db.execute(insert(Instalment.__table__), [
            dict(loan_id=loan_id, seq=1, due_date=DUE, principal=row.principal, interest=row.interest, fee=Decimal("0.00"))
            for loan_id in loans])
        db.commit()
    return {cid: "sms:+86" + phone for cid, phone in zip(customers, phones)}


def plan(sessions, rules) -> dict:
    with sessions() as db:
        return planner.plan_day(db, rules, DAY, T10)


def ctx(rules, fake, holder: str, client: RasaClient) -> Outreach:
    return Outreach(rules, ManualClock(T10).now, RasaSender(client), holder=holder)


def delivered(fake) -> list:
    """(notice id, conversation, text) of every delivery Rasa received (a bot event appended)."""
    out = []
    for r in fake.requests:
        if r.is_delivery:
            (bot,) = [e for e in r.json if e.get("event") == "bot"]
            out.append((bot["metadata"]["notice_id"], r.path.split("/")[2], bot["text"]))
    return out


def test_two_dispatchers_deliver_2000_notices_each_exactly_once(sessions, rules, fake):
    t0 = time.monotonic()
    conversations = borrowers(sessions, BORROWERS)
    assert plan(sessions, rules) == {"found": BORROWERS, "inserted": BORROWERS,
                                     "by_kind": {"due_in_3_days": BORROWERS}}
    # A generous timeout: on a busy 2-core machine a Rasa call can wait seconds for the CPU, and a
    # timed-out delivery would be (rightly) retried later instead of counted here.
    client = RasaClient(fake.url, TOKEN, timeout=60, max_connections=16)
    cfg = rules.outreach.model_copy(update={"batch_size": 50})
    small = rules.model_copy(update={"outreach": cfg})
    contexts = [ctx(small, fake, holder, client) for holder in ("dispatcher-1", "dispatcher-2")]
    barrier, results = threading.Barrier(2), {}

    def run(c: Outreach) -> None:
        with sessions() as db:
            barrier.wait()
            results[c.holder] = dispatcher.dispatch_due(db, c, concurrency=8)

    print(f"set-up {time.monotonic() - t0:.1f} s")
    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(c,)) for c in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    client.close()

    # Both dispatchers worked, and between them sent every notice.
    assert set(results) == {"dispatcher-1", "dispatcher-2"}
    with sessions() as db:
        errors = Counter(db.scalars(select(OutreachAttempt.detail).where(OutreachAttempt.outcome != "sent")))
    assert all(set(r) == {"sent"} and r["sent"] > 0 for r in results.values()), (results, errors)
    assert sum(r["sent"] for r in results.values()) == BORROWERS

    # Rasa: each notice delivered exactly once, to its borrower's conversation, with its text; per
    # conversation exactly the tracker read, the new session's action_listen, the delivery.
    with sessions() as db:
        notices = {n.notice_id: n for n in db.scalars(select(OutreachNotice))}
        loan_nos = dict(db.execute(select(Loan.id, Loan.loan_no)).all())
    got = delivered(fake)
    per_notice = Counter(notice_id for notice_id, _, _ in got)
    assert set(per_notice) == set(notices) and set(per_notice.values()) == {1}
    for notice_id, conversation, text in got:
        assert conversation == conversations[notices[notice_id].customer_id]
        last4 = loan_nos[notices[notice_id].loan_id][-4:]
        assert text == (f"温馨提醒：您的消费贷（尾号{last4}）本期应还 ¥1,010.00，还款日为12月10日（周四），还有3天。"
                        "可在App「我的借款-立即还款」操作，或保证还款卡余额充足以便当天自动扣款。"
                        "如已还款请忽略本消息。回复「退订」可取消还款提醒。")
    calls = Counter((r.method, r.path.split("/")[2], r.path.split("/", 3)[3], r.is_delivery) for r in fake.requests)
    expected = Counter()
    for conversation in conversations.values():
        expected[("GET", conversation, "tracker", False)] += 1
        expected[("POST", conversation, "tracker/events", False)] += 1  # the session opened
        expected[("POST", conversation, "tracker/events", True)] += 1
    assert calls == expected
    assert all(r.status == 200 for r in fake.requests)

    # The outreach log: every notice sent once on SMS in its conversation, one "sent" attempt, its
    # outbox message sent; nothing left claimed; the claims split between the two dispatchers.
    with sessions() as db:
        rows = db.scalars(select(OutreachNotice)).all()
        assert Counter(n.status for n in rows) == {OutreachStatus.sent: BORROWERS}
        assert all(n.channel == Channel.sms and n.conversation == conversations[n.customer_id]
                   and n.attempts == 0 and n.last_error is None and n.sent_at is not None for n in rows)
        claimed = Counter(n.claimed_by for n in rows)
        assert set(claimed) == {"dispatcher-1", "dispatcher-2"} and sum(claimed.values()) == BORROWERS
        assert claimed == Counter({h: r["sent"] for h, r in results.items()})
        attempts = db.execute(select(OutreachAttempt.notice_id, OutreachAttempt.outcome, OutreachAttempt.channel)).all()
        assert Counter((o, ch) for _, o, ch in attempts) == {("sent", Channel.sms): BORROWERS}
        assert len({pk for pk, _, _ in attempts}) == BORROWERS
        outbox = db.execute(select(OutboxMessage.notice_id, OutboxMessage.status, OutboxMessage.conversation,
                                   OutboxMessage.attempts)).all()
        assert len(outbox) == BORROWERS and len({pk for pk, _, _, _ in outbox}) == BORROWERS
        assert {(s.value, a) for _, s, _, a in outbox} == {("sent", 1)}
        assert db.scalar(select(func.count()).select_from(OutreachNotice)
                         .where(OutreachNotice.status == OutreachStatus.sending)) == 0
    print(f"2 dispatchers x 8 threads: {BORROWERS} notices in {seconds:.1f} s ({BORROWERS / seconds:.0f}/s)")


def test_deliveries_side_by_side_keep_the_daily_cap_exactly(sessions, rules, fake):
    """Two loans due the same day per borrower, the daily cap 1: with eight deliveries in flight one
    notice per borrower is sent and the other waits for tomorrow (a borrower's notices are taken one
    after the other, never side by side)."""
    with sessions() as db:
        done = set(db.scalars(select(OutreachNotice.id)))
    conversations = borrowers(sessions, 40, loans_each=2, first=BORROWERS)
    assert plan(sessions, rules)["inserted"] == 80
    client = RasaClient(fake.url, TOKEN, timeout=60)
    with sessions() as db:
        counts = dispatcher.dispatch_due(db, ctx(rules, fake, "capped", client), concurrency=8)
    client.close()
    assert counts == {"sent": 40, "deferred": 40}
    got = delivered(fake)
    assert sorted(c for _, c, _ in got) == sorted(conversations.values())
    tomorrow_8 = datetime(2026, 12, 8, 8, 0, tzinfo=SHANGHAI)
    with sessions() as db:
        rows = [n for n in db.scalars(select(OutreachNotice)) if n.id not in done]
        by_customer: dict[int, list] = {}
        for n in rows:
            by_customer.setdefault(n.customer_id, []).append(n)
        assert set(by_customer) == set(conversations)
        for mine in by_customer.values():
            assert sorted(n.status.value for n in mine) == ["planned", "sent"]
            (waiting,) = [n for n in mine if n.status == OutreachStatus.planned]
            assert waiting.last_error == "daily_cap" and waiting.kind == OutreachKind.due_in_3_days
            assert waiting.next_attempt_at == tomorrow_8
        outcomes = Counter(db.scalars(select(OutreachAttempt.outcome).where(
            OutreachAttempt.notice_id.in_([n.id for n in rows]))))
        assert outcomes == {"sent": 40, "deferred:daily_cap": 40}
