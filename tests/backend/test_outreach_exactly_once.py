"""Each notice reaches the borrower at most once (backend.services.outreach), on SQLite and PostgreSQL:
two dispatchers claiming at the same moment, a dispatcher dying before or after its call to Rasa (the
notice left in "sending" is recovered by asking Rasa's tracker), Rasa answering too late (the retry
asks the tracker first), Rasa keeping nothing (it answers 200 but the tracker holds no bot message with
the notice id: retried, then a counted permanent failure, never "sent"), the scheduler lease. Rasa here
is tests/backend/fake_rasa.FakeRasa, a real HTTP server keeping trackers the way Rasa does; notices go
to it as bot messages appended to the tracker (POST /conversations/{id}/tracker/events).
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from backend.models import OutreachAttempt, OutreachKind, OutreachNotice
from backend.services.outreach import dispatcher, lease, outbox, planner
from backend.services.outreach.context import Outreach
from backend.services.outreach.sender import RasaSender, find_notice
from backend.services.rasa_api import RasaClient
from fake_rasa import FakeRasa
from testkit import ManualClock, RecordingSender, local, shanghai

TOKEN = "rasa-outreach-token"
T8 = shanghai(2026, 12, 7, 8)


@pytest.fixture(scope="module")
def fake_rasa():
    with FakeRasa(TOKEN) as fake:
        yield fake


@pytest.fixture
def fake(fake_rasa):
    fake_rasa.status, fake_rasa.paused, fake_rasa.delay = 200, False, 0.0
    fake_rasa.silent = fake_rasa.bare_answer = False
    fake_rasa.trackers.clear()
    fake_rasa.take()
    return fake_rasa


def ctx_for(app, clock, sender, holder="test", **cfg) -> Outreach:
    rules = app.state.rules
    if cfg:
        rules = rules.model_copy(update={"outreach": rules.outreach.model_copy(update=cfg)})
    return Outreach(rules, clock.now, sender, holder=holder)


def due_loan(book, due: date = date(2026, 12, 10)):
    cust = book.customer()
    start = date(due.year, due.month - 1, due.day)
    return cust, book.loan(cust.id, "6000", "0.12", 6, start)


def plan(app, at=T8) -> None:
    with app.state.sessionmaker() as db:
        planner.plan_day(db, app.state.rules, at.date(), at)


def dispatch(app, ctx):
    with app.state.sessionmaker() as db:
        return dispatcher.dispatch_due(db, ctx)


def the_notice(app) -> OutreachNotice:
    with app.state.sessionmaker() as db:
        (n,) = db.scalars(select(OutreachNotice))
        return n


def outcomes(app, notice) -> list[str]:
    with app.state.sessionmaker() as db:
        return list(db.scalars(select(OutreachAttempt.outcome).where(OutreachAttempt.notice_id == notice.id)
                               .order_by(OutreachAttempt.id)))


def triggers(fake) -> list:
    """The deliveries Rasa received (bot messages appended to a tracker)."""
    return [r for r in fake.requests if r.is_delivery]


# --------------------------------------------------------------------------- two dispatchers

def test_two_dispatchers_claiming_at_once_send_each_notice_once(app, empty_book):
    for _ in range(24):
        due_loan(empty_book)
    plan(app)
    sender = RecordingSender()
    real_send = sender.send

    def slow_send(*args):
        time.sleep(0.005)
        return real_send(*args)

    sender.send = slow_send
    clock = ManualClock(T8)
    contexts = [ctx_for(app, clock, sender, holder=h, batch_size=3) for h in ("one", "two")]
    barrier, counts = threading.Barrier(2), []

    def run(ctx):
        barrier.wait()
        counts.append(dispatch(app, ctx))

    threads = [threading.Thread(target=run, args=(c,)) for c in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_ids = [marker["notice_id"] for _, _, _, marker in sender.calls]
    assert len(sent_ids) == len(set(sent_ids)) == 24
    assert sum(c["sent"] for c in counts) == 24
    with app.state.sessionmaker() as db:
        claimers = Counter(db.scalars(select(OutreachNotice.claimed_by)))
        assert {n.status.value for n in db.scalars(select(OutreachNotice))} == {"sent"}
    assert sum(claimers.values()) == 24


def test_the_backends_worker_and_the_scheduler_cannot_both_take_a_notice(app, empty_book):
    due_loan(empty_book)
    plan(app)
    n = the_notice(app)
    clock = ManualClock(T8)
    with app.state.sessionmaker() as db:
        token = dispatcher.claim_one(db, ctx_for(app, clock, RecordingSender(), "backend"), n.id)
        assert token is not None
        assert dispatcher.claim_one(db, ctx_for(app, clock, RecordingSender(), "scheduler"), n.id) is None
        batch, _ = dispatcher.claim_batch(db, ctx_for(app, clock, RecordingSender(), "scheduler"), T8, 10)
        assert batch == []


# --------------------------------------------------------------------------- crashes

class Dies:
    """A dispatcher process that dies around its call to Rasa (before or after it)."""

    def __init__(self, sender, after: bool) -> None:
        self.sender, self.after = sender, after

    def send(self, *args):
        if self.after:
            self.sender.send(*args)
        raise RuntimeError("the process died")

    def find(self, *args):
        return self.sender.find(*args)

    def look(self, *args):
        return self.sender.look(*args)


@pytest.mark.parametrize("died", ["after_the_call", "before_the_call"])
def test_a_notice_left_sending_by_a_dead_dispatcher_is_resolved_through_the_tracker(app, empty_book, fake, died):
    cust, _ = due_loan(empty_book)
    plan(app)
    rasa = RasaSender(RasaClient(fake.url, TOKEN))
    clock = ManualClock(T8)
    dispatch(app, ctx_for(app, clock, Dies(rasa, after=died == "after_the_call"), "crashed"))
    n = the_notice(app)
    assert (n.status.value, n.claimed_by, n.conversation) == ("sending", "crashed", f"sms:{cust.sms_id}")
    assert len(triggers(fake)) == (1 if died == "after_the_call" else 0)
    fake.take()
    successor = ctx_for(app, clock, rasa, "successor")
    clock.advance(seconds=60)  # the first one may only be slow: not taken over yet
    assert dispatch(app, successor) == Counter()
    clock.advance(seconds=61)  # 121 s: stale, recovered
    assert dispatch(app, successor) == Counter({"recovered": 1, "sent": 1})
    requests = fake.take()
    assert requests[0].method == "GET" and requests[0].path == f"/conversations/sms:{cust.sms_id}/tracker"
    if died == "after_the_call":  # Rasa had it: marked sent, not sent again
        assert requests[1:] == []
        assert outcomes(app, n) == ["sent"]
    else:  # Rasa never saw it: sent now, once (the tracker read again just before)
        # the tracker read again, the new conversation's session opened, the notice
        assert [(r.method, r.path.rsplit("/", 1)[1], r.is_delivery) for r in requests[1:]] == [
            ("GET", "tracker", False), ("POST", "events", False), ("POST", "events", True)]
        assert requests[-1].json[0]["metadata"] == {"notice_id": n.notice_id, "kind": "due_in_3_days"}
    n = the_notice(app)
    assert (n.status.value, n.claimed_by, local(n.sent_at)) == ("sent", "successor", T8 + timedelta(seconds=121))
    assert len([e for e in fake.trackers[f"sms:{cust.sms_id}"] if e["event"] == "bot"]) == 1


def test_rasa_answering_after_the_timeout_is_not_sent_twice(app, empty_book, fake):
    cust, _ = due_loan(empty_book)
    plan(app)
    fake.delay = 1.0  # Rasa runs the notice, then answers after the client gave up
    clock = ManualClock(T8)
    ctx = ctx_for(app, clock, RasaSender(RasaClient(fake.url, TOKEN, timeout=0.3)))
    assert dispatch(app, ctx) == Counter({"retry": 1})
    n = the_notice(app)
    assert (n.status.value, n.last_error, n.attempts) == ("planned", "ReadTimeout", 1)
    fake.delay = 0.0
    clock.advance(minutes=1)
    assert dispatch(app, ctx) == Counter({"sent": 1})
    assert len(triggers(fake)) == 1  # the retry found it in the tracker
    assert outcomes(app, n) == ["rasa_error", "retry_scheduled", "sent"]


def test_a_decision_stored_in_a_paused_conversation_is_sent_again_after_the_handback(app, empty_book, fake):
    cust, _ = due_loan(empty_book)
    clock = ManualClock(T8)
    ctx = ctx_for(app, clock, RasaSender(RasaClient(fake.url, TOKEN)))
    with app.state.sessionmaker() as db:
        from backend.services.outreach import decisions
        notice = decisions.record(db, ctx, OutreachKind.plan_decision, "test:plan", cust.id, None, {
            "reference": "RP20261207-0001", "conversation": f"sms:{cust.sms_id}", "channel": "sms",
            "entity_type": "plan_request", "entity_id": 1})
        outbox.queue(db, notice, f"sms:{cust.sms_id}", "sms", "决定通知", [], T8)  # saved with the decision
        db.commit()
    fake.paused = True  # staff hold the conversation (Rasa says so; no case in the backend)
    assert dispatch(app, ctx) == Counter({"deferred": 1})
    fake.paused = False
    clock.advance(minutes=30)
    assert dispatch(app, ctx) == Counter({"sent": 1})
    assert len(triggers(fake)) == 1  # nothing was appended while staff held the conversation
    assert outcomes(app, notice) == ["deferred:handoff", "sent"]


def test_the_tracker_check_reads_rasa_events():
    """Delivered only when the tracker holds a bot message carrying the notice id (the send and the
    recovery alike)."""
    nid = "5b8f0d0e-0000-4000-8000-000000000001"
    said = {"event": "bot", "text": "您好", "metadata": {"notice_id": nid, "kind": "due_in_3_days"}}
    assert find_notice([{"event": "user", "text": "hi"}, said], nid) == "delivered"
    buttons = {"event": "bot", "text": None, "data": {"buttons": [{"title": "好的"}]}, "metadata": {"notice_id": nid}}
    assert find_notice([buttons], nid) == "delivered"
    assert find_notice([dict(said, text="")], nid) is None  # nothing said
    assert find_notice([dict(said, metadata={"notice_id": "another"})], nid) is None
    assert find_notice([{"event": "bot", "text": "您好"}], nid) is None  # a bot message about something else
    assert find_notice([{"event": "slot", "name": "pending_notice", "value": nid}], nid) is None


# --------------------------------------------------------------------------- the bot saying nothing

def test_rasa_answering_200_without_a_bot_message_is_retried_not_sent(app, empty_book, fake):
    cust, _ = due_loan(empty_book)
    plan(app)
    fake.silent = True  # Rasa answers 200 but keeps no bot message
    clock = ManualClock(T8)
    ctx = ctx_for(app, clock, RasaSender(RasaClient(fake.url, TOKEN)))
    assert dispatch(app, ctx) == Counter({"retry": 1})
    n = the_notice(app)
    assert (n.status.value, n.last_error, n.attempts, n.sent_at) == ("planned", "no_reply", 1, None)
    assert local(n.next_attempt_at) == T8 + timedelta(minutes=1)  # retry_backoff_minutes[0]
    fake.silent = False
    clock.advance(minutes=1)
    assert dispatch(app, ctx) == Counter({"sent": 1})
    assert len(triggers(fake)) == 2  # sent again: the first time nothing reached the borrower
    assert outcomes(app, n) == ["no_reply", "retry_scheduled", "sent"]
    events = fake.trackers[f"sms:{cust.sms_id}"]
    assert [e["event"] for e in events].count("bot") == 1 and find_notice(events, n.notice_id) == "delivered"


def test_a_bot_that_never_answers_is_a_counted_permanent_failure(app, empty_book, fake):
    due_loan(empty_book)
    plan(app)
    fake.silent = True
    clock = ManualClock(T8)
    ctx = ctx_for(app, clock, RasaSender(RasaClient(fake.url, TOKEN)))
    got = Counter()
    for minutes in (0, 1, 5, 30):  # the backoff: 1, 5, 30 minutes after each attempt
        clock.advance(minutes=minutes)
        got += dispatch(app, ctx)
    assert got == Counter({"retry": 3, "failed": 1})
    n = the_notice(app)
    assert (n.status.value, n.attempts, n.last_error, n.sent_at) == ("failed", 4, "no_reply", None)
    assert outcomes(app, n) == ["no_reply", "retry_scheduled"] * 3 + ["no_reply", "permanent_failure"]
    with app.state.sessionmaker() as db:
        from backend.services.outreach.summary import summary

        counted = summary(db, T8)
    assert (counted["sent"], counted["failed"], counted["no_reply"], counted["rasa_errors"]) == (
        {}, {"due_in_3_days": 1}, {"due_in_3_days": 4}, {})
    clock.advance(hours=2)
    assert dispatch(app, ctx) == Counter() and len(triggers(fake)) == 4  # never again


def test_the_tracker_is_read_when_rasas_answer_does_not_show_the_notice(app, empty_book, fake):
    due_loan(empty_book)
    plan(app)
    fake.bare_answer = True  # Rasa answers a tracker without events
    ctx = ctx_for(app, ManualClock(T8), RasaSender(RasaClient(fake.url, TOKEN)))
    fake.take()
    assert dispatch(app, ctx) == Counter({"sent": 1})
    assert [(r.method, r.path.rsplit("/", 1)[1]) for r in fake.take() if r.method == "GET" or r.is_delivery] == [
        ("GET", "tracker"), ("POST", "events"), ("GET", "tracker")]
    fake.silent = True  # and read there: the bot said nothing
    due_loan(empty_book)
    plan(app)
    assert dispatch(app, ctx) == Counter({"retry": 1})
    assert [(r.method, r.path.rsplit("/", 1)[1]) for r in fake.take() if r.method == "GET" or r.is_delivery] == [
        ("GET", "tracker"), ("POST", "events"), ("GET", "tracker")]


@pytest.mark.parametrize("silent_before", [True, False])
def test_recovery_after_a_crash_uses_the_same_test_a_bot_message(app, empty_book, fake, silent_before):
    """A dispatcher died after its call; the bot had said nothing (silent) or had answered: the
    successor sends again only in the first case."""
    cust, _ = due_loan(empty_book)
    plan(app)
    rasa = RasaSender(RasaClient(fake.url, TOKEN))
    clock = ManualClock(T8)
    fake.silent = silent_before
    dispatch(app, ctx_for(app, clock, Dies(rasa, after=True), "crashed"))
    fake.silent = False
    fake.take()
    clock.advance(seconds=121)
    assert dispatch(app, ctx_for(app, clock, rasa, "successor")) == Counter({"recovered": 1, "sent": 1})
    sent_again = [r for r in fake.take() if r.is_delivery]
    assert len(sent_again) == (1 if silent_before else 0)
    n = the_notice(app)
    assert outcomes(app, n) == ["sent"] and n.status.value == "sent"
    events = fake.trackers[f"sms:{cust.sms_id}"]
    assert [e["event"] for e in events].count("bot") == 1


# --------------------------------------------------------------------------- the lease

def test_the_lease_one_holder_renewal_and_takeover_after_expiry(app, empty_book):
    with app.state.sessionmaker() as db:
        assert lease.acquire(db, "first", T8, 90)
        assert not lease.acquire(db, "second", T8 + timedelta(seconds=1), 90)
        assert lease.acquire(db, "first", T8 + timedelta(seconds=60), 90)  # renewed until 08:02:30
        assert not lease.acquire(db, "second", T8 + timedelta(seconds=149), 90)
        assert lease.acquire(db, "second", T8 + timedelta(seconds=151), 90)  # the first stopped renewing
        assert not lease.acquire(db, "first", T8 + timedelta(seconds=152), 90)
        lease.release(db, "second")
        assert lease.acquire(db, "first", T8 + timedelta(seconds=153), 90)  # released: no wait


def test_two_processes_racing_for_a_new_lease_get_one_holder(app, empty_book):
    results, barrier = {}, threading.Barrier(4)

    def race(name):
        with app.state.sessionmaker() as db:
            barrier.wait()
            results[name] = lease.acquire(db, name, T8, 90)

    threads = [threading.Thread(target=race, args=(f"p{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [False, False, False, True]
