"""Inbound claims with a lease (backend.services.channels, POST /api/v1/channels/inbound[/renew|/complete|/release]):
a message is claimed until Rasa has processed it; a retry of a done message is a duplicate, a retry while the
owner's lease is fresh is not processed, a claim left half-way (lease run out) is taken over, never dropped.
On SQLite and PostgreSQL; the takeover race with two real database sessions."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from backend.models import InboundEvent
from backend.services import channels
from testkit import HEADERS

LEASE = 10.0  # config/business.yml inbound.claim_lease_seconds


def claim(client, channel: str, external_id: str, key: str, owner: str | None = None, status: int = 200) -> dict:
    body = {"channel": channel, "external_id": external_id, "key": key}
    if owner is not None:
        body["owner"] = owner
    resp = client.post("/api/v1/channels/inbound", headers=HEADERS, json=body)
    assert resp.status_code == status, resp.text
    return resp.json()


def act(client, action: str, channel: str, key: str, owner: str, status: int = 200) -> dict:
    resp = client.post(f"/api/v1/channels/inbound/{action}", headers=HEADERS,
                       json={"channel": channel, "key": key, "owner": owner})
    assert resp.status_code == status, resp.text
    return resp.json()


def row(app, key: str) -> InboundEvent:
    with app.state.sessionmaker() as db:
        return db.scalar(select(InboundEvent).where(InboundEvent.key == key))


def expire(app, key: str) -> None:
    """The owner's lease runs out (its process died and stopped renewing)."""
    with app.state.sessionmaker() as db:
        db.execute(update(InboundEvent).where(InboundEvent.key == key)
                   .values(lease_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
        db.commit()


def owner() -> str:
    return uuid.uuid4().hex


def test_a_claim_stays_in_progress_until_completed_and_is_then_a_duplicate(app, client, book):
    cust = book.customer("认领")
    key, a = f"SM{uuid.uuid4().hex}", owner()
    before = datetime.now(timezone.utc)
    got = claim(client, "sms", cust.sms_id, key, a)
    assert (got["first_time"], got["state"], got["owner"], got["attempts"], got["lease_seconds"]) == \
        (True, "claimed", a, 1, LEASE)
    until = datetime.fromisoformat(got["lease_until"])
    assert before + timedelta(seconds=LEASE - 1) < until < datetime.now(timezone.utc) + timedelta(seconds=LEASE + 1)
    assert got["identity"]["customer_id"] == cust.id and got["identity"]["last_inbound_at"]
    stored = row(app, f"sms:{key}")
    assert (stored.state, stored.owner, stored.attempts, stored.done_at) == ("in_progress", a, 1, None)

    # A retry while the owner works on it (fresh lease): not for anyone else to process.
    again = claim(client, "sms", cust.sms_id, key, owner())
    assert (again["first_time"], again["state"], again["owner"], again["attempts"]) == (False, "in_progress", a, 1)
    # An old-style claim (no owner) of the same key is a retry too.
    assert claim(client, "sms", cust.sms_id, key)["first_time"] is False

    done = act(client, "complete", "sms", key, a)
    assert (done["state"], done["owner_matched"], done["attempts"]) == ("done", True, 1)
    assert row(app, f"sms:{key}").done_at is not None
    dup = claim(client, "sms", cust.sms_id, key, owner())
    assert (dup["first_time"], dup["state"], dup["attempts"]) == (False, "done", 1)
    expire(app, f"sms:{key}")  # a done claim is never taken over, however old
    assert claim(client, "sms", cust.sms_id, key, owner())["state"] == "done"
    assert act(client, "complete", "sms", key, a)["state"] == "done"  # idempotent
    assert act(client, "renew", "sms", key, a, status=409)["error"]["code"] == "claim_lost"


def test_a_claim_left_half_way_is_taken_over_by_the_retry_and_the_old_owner_loses_it(app, client, book):
    cust = book.customer("接管")
    key, a, b = f"{uuid.uuid4().int % 10**19}", owner(), owner()
    assert claim(client, "wechat", cust.wechat_id, key, a)["state"] == "claimed"
    renewed = act(client, "renew", "wechat", key, a)
    assert (renewed["state"], renewed["owner"]) == ("in_progress", a)
    assert claim(client, "wechat", cust.wechat_id, key, b)["state"] == "in_progress"

    expire(app, f"wechat:{key}")
    taken = claim(client, "wechat", cust.wechat_id, key, b)
    assert (taken["first_time"], taken["state"], taken["owner"], taken["attempts"]) == (True, "claimed", b, 2)
    # The first owner comes back: it cannot renew; a late completion still marks the message processed.
    assert act(client, "renew", "wechat", key, a, status=409)["error"]["code"] == "claim_lost"
    assert claim(client, "wechat", cust.wechat_id, key, owner())["state"] == "in_progress"
    done = act(client, "complete", "wechat", key, b)
    assert (done["state"], done["owner"], done["attempts"], done["owner_matched"]) == ("done", b, 2, True)
    assert act(client, "complete", "wechat", key, a)["owner_matched"] is False


def test_the_owner_asking_again_renews_and_a_release_lets_the_next_retry_take_over(app, client, book):
    cust = book.customer("释放")
    key, a, b = f"SM{uuid.uuid4().hex}", owner(), owner()
    claim(client, "sms", cust.sms_id, key, a)
    mine = claim(client, "sms", cust.sms_id, key, a)
    assert (mine["first_time"], mine["state"], mine["attempts"]) == (True, "claimed", 1)
    assert act(client, "release", "sms", key, b)["owner"] == a  # only the owner can release
    assert claim(client, "sms", cust.sms_id, key, b)["state"] == "in_progress"
    released = act(client, "release", "sms", key, a)
    assert released["state"] == "in_progress"
    taken = claim(client, "sms", cust.sms_id, key, b)
    assert (taken["state"], taken["owner"], taken["attempts"]) == ("claimed", b, 2)


def test_without_an_owner_a_claim_is_done_at_once(app, client, book):
    cust = book.customer("旧式")
    key = f"SM{uuid.uuid4().hex}"
    first = claim(client, "sms", cust.sms_id, key)
    assert (first["first_time"], first["state"], first["owner"], first["lease_until"]) == (True, "claimed", None, None)
    assert row(app, f"sms:{key}").state == "done"
    assert claim(client, "sms", cust.sms_id, key)["first_time"] is False
    assert claim(client, "sms", cust.sms_id, key, owner())["state"] == "done"


def test_an_anonymous_web_visitor_is_deduplicated_without_an_identity(app, client):
    visitor = f"anon-{uuid.uuid4().hex}"
    key = f"{visitor}:{uuid.uuid4().hex}"
    got = claim(client, "web", visitor, key, owner())
    assert (got["state"], got["identity"]) == ("claimed", None)
    assert client.get(f"/api/v1/identities/web/{visitor}", headers=HEADERS).status_code == 404
    assert claim(client, "web", visitor, key, owner())["state"] == "in_progress"


def test_unknown_claims_and_bad_owners_are_refused(client):
    assert act(client, "complete", "sms", "SMnothing", owner(), status=404)["error"]["code"] == "not_found"
    resp = client.post("/api/v1/channels/inbound", headers=HEADERS,
                       json={"channel": "sms", "external_id": "+8613800000000", "key": "k1", "owner": "x y"})
    assert resp.status_code == 422
    resp = client.post("/api/v1/channels/inbound/complete", headers=HEADERS, json={"channel": "sms", "key": "k1"})
    assert resp.status_code == 422


def _race(app, run) -> list[str]:
    """Two database sessions run ``run(db, owner)`` at the same moment; the states they were told."""
    barrier, states, errors = threading.Barrier(2), [], []

    def worker() -> None:
        try:
            with app.state.sessionmaker() as db:
                barrier.wait(timeout=10)
                state = run(db, owner())
                db.commit()
                states.append(state)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    return sorted(states)


def test_two_claimers_racing_on_a_new_message_or_a_stale_claim_one_wins(app, book):
    cust = book.customer("竞争")
    lease = timedelta(seconds=LEASE)
    for round_ in range(5):
        key = f"SMrace{round_}{uuid.uuid4().hex[:8]}"

        def run(db, who, key=key):
            now = datetime.now(timezone.utc)
            return channels.claim_inbound(db, "sms", cust.sms_id, key, now, owner=who, wall=now, lease=lease).state

        assert _race(app, run) == ["claimed", "in_progress"], f"new message, round {round_}"
        expire(app, f"sms:{key}")
        assert _race(app, run) == ["claimed", "in_progress"], f"takeover, round {round_}"
        stored = row(app, f"sms:{key}")
        assert (stored.state, stored.attempts) == ("in_progress", 2)


def test_an_sms_whose_processor_died_is_answered_by_twilio_s_retry_once(app, client, book):
    """What channels/sms.py does with Twilio's retries when the Rasa process died mid-turn: the retry
    within the lease is not processed, the retry after it takes the message over, a later retry of the
    processed message is a duplicate."""
    cust = book.customer("短信重试")
    sid, first, second = f"SM{uuid.uuid4().hex}", owner(), owner()
    assert claim(client, "sms", cust.sms_id, sid, first)["state"] == "claimed"  # then the process died
    processed = []
    for attempt in range(4):
        if attempt == 2:
            expire(app, f"sms:{sid}")
        who = second if attempt >= 2 else owner()
        got = claim(client, "sms", cust.sms_id, sid, who)
        if got["state"] == "claimed":
            processed.append(attempt)
            act(client, "complete", "sms", sid, who)
    assert processed == [2]
    stored = row(app, f"sms:{sid}")
    assert (stored.state, stored.owner, stored.attempts) == ("done", second, 2)
    with app.state.sessionmaker() as db:
        assert db.scalars(select(InboundEvent.id).where(InboundEvent.key.like(f"%{sid}%"))).all() == [stored.id]
