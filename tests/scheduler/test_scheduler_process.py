"""Two real scheduler processes (python -m scheduler) on one SQLite database, against a fake Rasa:
only the lease holder sends; a second process started by mistake runs nothing while the first is
alive; when the first dies (SIGKILL: no goodbye), the second takes over once the lease has expired,
and no notice goes out twice. The demo clock (OUTREACH_DEMO_TIME=10:00 on APP_FROZEN_DATE) puts
the processes inside the contact window whatever the time of the test run.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from backend.cli import migrate
from backend.db import make_engine, make_sessionmaker
from backend.models import OutreachKind, OutreachNotice, SchedulerLease
from fake_rasa import FakeRasa
from testkit import Book, ManualClock, RecordingSender, shanghai

ROOT = Path(__file__).resolve().parents[2]
APP_PY = str(ROOT / ".venv-app" / "bin" / "python")
TOKEN = "scheduler-test-token"
TTL = 5


@pytest.fixture
def world(tmp_path):
    url = f"sqlite:///{tmp_path / 'loan.db'}"
    migrate(url)
    rules = yaml.safe_load((ROOT / "config" / "business.yml").read_text(encoding="utf-8"))
    rules["outreach"]["lease_ttl_seconds"] = TTL
    rules_path = tmp_path / "business.yml"
    rules_path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    book = Book(sessions)
    cust = book.customer()
    book.loan(cust.id, "6000", "0.12", 6, date(2026, 11, 10))  # due 12-10: a reminder on 12-07
    procs: list[subprocess.Popen] = []
    with FakeRasa(TOKEN) as fake:
        env = dict(os.environ, DATABASE_URL=url, RASA_URL=fake.url, RASA_API_TOKEN=TOKEN, APP_FROZEN_DATE="2026-12-07",
                   OUTREACH_DEMO_TIME="10:00", OUTREACH_DISPATCH_SECONDS="1", BUSINESS_RULES_PATH=str(rules_path),
                   BACKEND_URL="http://127.0.0.1:9", PYTHONPATH=str(ROOT))

        def start(name: str) -> subprocess.Popen:
            log = open(tmp_path / f"{name}.log", "wb")
            proc = subprocess.Popen([APP_PY, "-m", "scheduler"], cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(proc)
            return proc

        try:
            yield sessions, fake, cust, start, tmp_path
        finally:
            for proc in procs:  # only the processes this test started
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            engine.dispose()


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {check.__doc__ or check}")


def notice_for_decision(sessions, cust, key: str) -> str:
    """A service notice recorded now (business time 10:00), as the backend records a decision."""
    from backend.core.config import ROOT as _root, load_rules
    from backend.services.outreach import decisions, outbox
    from backend.services.outreach.context import Outreach

    rules = load_rules(_root / "config" / "business.yml")
    ctx = Outreach(rules, ManualClock(shanghai(2026, 12, 7, 10)).now, RecordingSender())
    with sessions() as db:
        n = decisions.record(db, ctx, OutreachKind.complaint_update, key, cust.id, None, {
            "reference": key, "conversation": f"sms:{cust.sms_id}", "channel": "sms",
            "entity_type": "complaint_ticket", "entity_id": 1})
        # Its message, saved in the same transaction as a decision saves it (backend.services.notices).
        outbox.queue(db, n, f"sms:{cust.sms_id}", "sms", "您的投诉有新进展。", [], shanghai(2026, 12, 7, 10))
        db.commit()
        return n.notice_id


def triggered(fake) -> Counter:
    """Notices delivered: bot events appended through Rasa's HTTP API, by the notice id in their metadata."""
    return Counter((e.get("metadata") or {}).get("notice_id") for r in fake.requests if r.is_delivery
                   for e in (r.json if isinstance(r.json, list) else [r.json]) if e.get("event") == "bot")


def holder(sessions) -> str | None:
    with sessions() as db:
        return db.scalar(select(SchedulerLease.holder))


def test_only_the_lease_holder_runs_and_a_successor_takes_over(world):
    sessions, fake, cust, start, _ = world
    first = start("first")
    reminder = wait_for(lambda: list(triggered(fake)), 60)  # planned at start-up, sent within a second or two
    assert f":{first.pid}:" in holder(sessions)
    second = start("second")
    time.sleep(4)  # several dispatch cycles of both
    one = notice_for_decision(sessions, cust, "CP20261207-0001")
    wait_for(lambda: one in triggered(fake))
    assert f":{first.pid}:" in holder(sessions)  # the second never got the lease
    with sessions() as db:
        claimers = {n.notice_id: n.claimed_by for n in db.scalars(select(OutreachNotice))}
    assert all(f":{first.pid}:" in c for c in claimers.values())

    first.send_signal(signal.SIGKILL)  # dies without releasing the lease
    first.wait()
    two = notice_for_decision(sessions, cust, "CP20261207-0002")
    wait_for(lambda: two in triggered(fake), TTL + 30)
    assert f":{second.pid}:" in holder(sessions)
    with sessions() as db:
        assert f":{second.pid}:" in db.scalar(select(OutreachNotice.claimed_by).where(OutreachNotice.notice_id == two))
    assert triggered(fake) == Counter({reminder[0]: 1, one: 1, two: 1})  # each exactly once
