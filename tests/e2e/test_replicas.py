"""Two Rasa replicas and two action servers behind nginx (scripts/scaled.py, the shape of
`make run-scaled`): PostgreSQL tracker store, Redis lock store, the backend with two workers.

1. 20 conversations x 10 interleaved messages over both replicas, with no fault: 10 over the REST
   webhook (nginx: any replica, the least busy, so a conversation's messages move between replicas)
   and 10 web chat sockets (nginx: hashed by conversation). Every message is answered exactly once,
   in order, and each conversation's tracker holds exactly the messages sent, each followed by the
   answer the borrower got.
2. A message the backend sends into a signed-in web conversation (a staff reply, through Rasa's
   HTTP API) reaches the borrower's socket, whichever replica holds it: nginx hashes the socket
   (?conversation=, as backend/static/chat.js connects) and the API call on the conversation alike.
3. The same as 1 with one replica killed with SIGKILL half-way, over the paths that de-duplicate a resent
   message by its id (docs/scaling.md "Losing a replica"): the web chat (the page resends an
   unacknowledged message with the same client message id after reconnecting; nginx sends the new
   connection to the surviving replica). No message is lost, none is answered or recorded twice.

Skipped only when PostgreSQL (5432), Redis (6379) or nginx (scripts/setup_envs.sh scaled) is missing.
Replies: anonymous conversations asking what has one deterministic answer (greeting, thanks, the
knowledge answers); the reference is what one conversation gets, alone, from the same stack.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import uuid
from collections import defaultdict

import httpx
import pytest

from scripts.scaled import nginx_executable, process_groups

from .conftest import ROOT, reachable, running_scaled_stack

pytestmark = pytest.mark.e2e

SCRIPT = ["你好", "怎么还款", "谢谢", "逾期有什么后果", "利息怎么算", "你是机器人吗", "你好", "怎么还款", "谢谢", "再见"]
CONVERSATIONS = 20
REDIS_DB = 7
REPORT = ROOT / "reports" / "replicas.json"


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    if not (reachable(5432) and reachable(6379)):
        pytest.skip("PostgreSQL (5432) or Redis (6379) not reachable on 127.0.0.1")
    if nginx_executable() is None:
        pytest.skip("nginx is not installed (scripts/setup_envs.sh scaled installs Debian's package)")
    import psycopg

    names = [f"la_rep_{uuid.uuid4().hex[:8]}", f"la_rep_tracker_{uuid.uuid4().hex[:8]}"]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        for n in names:
            conn.execute(f'CREATE DATABASE "{n}"')
    try:
        yield from running_scaled_stack(
            tmp_path_factory.mktemp("scaled"), f"postgresql+psycopg://postgres@127.0.0.1:5432/{names[0]}",
            f"postgresql://postgres@127.0.0.1:5432/{names[1]}", f"redis://127.0.0.1:6379/{REDIS_DB}",
            # Anonymous conversations only: a few customers; a killed replica's conversation lock
            # expires after 10 s rather than scripts/scaled.py's 20 s.
            customers=20, settings={"TICKET_LOCK_LIFETIME": "10"})
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            for n in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


@pytest.fixture(scope="module")
def reference(scaled) -> list[list[str]]:
    """What a conversation alone gets for each message of SCRIPT (REST, through nginx)."""
    sender = f"rep-ref-{uuid.uuid4().hex[:8]}"
    replies = [[m["text"] for m in scaled.say(sender, text)] for text in SCRIPT]
    assert all(len(r) == 1 and r[0] for r in replies), replies  # one answer each: counted below
    assert len({r[0] for r in replies}) == len(set(SCRIPT))  # a different answer for each question
    return replies


# --------------------------------------------------------------------------- clients

def same_id(reply_to: str | None, cid: str) -> bool:
    """An answer to the message ``cid`` (or to no message in particular: a page without ids)."""
    if reply_to is None:
        return True
    try:
        return uuid.UUID(str(reply_to)) == uuid.UUID(cid)
    except ValueError:
        return False


class RestConversation:
    def __init__(self, base: str) -> None:
        self.base = base
        self.sender = f"rep-{uuid.uuid4().hex[:12]}"
        self.replies: list[list[str]] = []

    async def run(self, client: httpx.AsyncClient, between: float) -> None:
        for text in SCRIPT:
            r = await client.post(f"{self.base}/webhooks/rest/webhook", json={"sender": self.sender, "message": text},
                                  timeout=90)
            r.raise_for_status()
            self.replies.append([m.get("text", "") for m in r.json()])
            await asyncio.sleep(between)


class WebChatConversation:
    """The web chat page's protocol (backend/static/chat.js): an anonymous conversation, one message
    at a time, each with a client message id and an acknowledgement; after a dropped connection it
    connects again (through nginx: the surviving replica) and resends what was not acknowledged."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.anon = f"anon-{uuid.uuid4().hex}"
        self.sender = f"web:{self.anon}"
        self.replies: list[list[str]] = []
        self.resent = 0
        self.reconnects = 0
        self.sio = None
        self._current: list[dict] = []
        self._dropped = asyncio.Event()

    async def connect(self, deadline: float) -> None:
        import socketio

        while True:
            sio = socketio.AsyncClient(reconnection=False)
            confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
            dropped = asyncio.Event()
            sio.on("session_confirm", lambda sid, f=confirmed: f.done() or f.set_result(sid))
            sio.on("bot_uttered", lambda data: self._current.append(data))
            sio.on("disconnect", dropped.set)
            try:
                # polling first (as a browser may): the handshake is logged by nginx at once, with
                # the replica it went to.
                await sio.connect(f"{self.base}?conversation={self.anon}", socketio_path="socket.io",
                                  transports=["polling", "websocket"], wait_timeout=10)
                await sio.emit("session_request", {"session_id": self.sender})
                assert await asyncio.wait_for(confirmed, 15) == self.sender
                self.sio, self._dropped = sio, dropped
                return
            except Exception:  # noqa: BLE001 - the replica it reached went away: connect again
                await sio.disconnect()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def send(self, text: str) -> list[str]:
        cid = str(uuid.uuid4())
        deadline = time.monotonic() + 120
        attempt = 0
        while True:
            attempt += 1
            self._current = []
            ack: asyncio.Future = asyncio.get_running_loop().create_future()
            try:
                await self.sio.emit("user_uttered", {"message": text, "session_id": self.sender, "cid": cid},
                                    callback=lambda *a, f=ack: f.done() or f.set_result(a[0] if a else None))
            except Exception:  # noqa: BLE001 - not connected
                pass
            dropped = asyncio.ensure_future(self._dropped.wait())
            done, _ = await asyncio.wait({ack, dropped}, timeout=max(1.0, deadline - time.monotonic()),
                                         return_when=asyncio.FIRST_COMPLETED)
            dropped.cancel()
            if ack in done:
                answer = ack.result() or {}
                status = answer.get("status") if isinstance(answer, dict) else None
                if status == "pending":  # another replica holds it: ask again
                    await asyncio.sleep(float(answer.get("retry_after") or 1))
                    continue
                await asyncio.sleep(0.05)  # a reply emitted just before the ack
                got = [m.get("text", "") for m in self._current if same_id(m.get("reply_to"), cid)]
                if not got and status == "duplicate":
                    got = [m.get("text", "") for m in answer.get("replies") or []]
                if attempt > 1:
                    self.resent += 1
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.sender}: no acknowledgement for {text!r}")
            self.reconnects += 1
            await self.sio.disconnect()
            await self.connect(deadline)

    async def run(self, between: float) -> None:
        await self.connect(time.monotonic() + 60)
        try:
            for text in SCRIPT:
                self.replies.append(await self.send(text))
                await asyncio.sleep(between)
        finally:
            await self.sio.disconnect()


# --------------------------------------------------------------------------- checks

def tracker_turns(stack, sender: str) -> list[tuple[str, str | None, list[str]]]:
    """(user text, message id, bot texts after it) for each user message in the conversation's tracker."""
    r = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                  params={"token": stack.env["RASA_API_TOKEN"], "include_events": "ALL"}, timeout=30)
    r.raise_for_status()
    turns: list[tuple[str, str | None, list[str]]] = []
    for e in r.json()["events"]:
        if e["event"] == "user":
            turns.append((e.get("text"), e.get("message_id"), []))
        elif e["event"] == "bot" and turns:
            turns[-1][2].append(e.get("text"))
    return turns


def assert_every_message_answered_once(stack, conversations, reference) -> None:
    expected = [r for r in reference]
    for c in conversations:
        assert c.replies == expected, f"{c.sender}: answers seen by the borrower"
        turns = tracker_turns(stack, c.sender)
        assert [t[0] for t in turns] == SCRIPT, f"{c.sender}: the tracker's user messages {turns}"
        assert [t[2] for t in turns] == expected, f"{c.sender}: the tracker's answers"


def access_log(stack) -> list[dict]:
    rows = []
    for line in (stack.nginx_dir / "access.log").read_text(encoding="utf-8").splitlines():
        m = re.match(r"(\S+) (\S+) (\S+) key=(\S*) upstream=(.*) status=(\d+) upstream_status=(.*) time=", line)
        if m:
            rows.append({"method": m[2], "uri": m[3], "key": m[4], "upstream": m[5], "status": m[6]})
    return rows


def rss_report(stack) -> dict:
    return {name: {"pids": [p for p, _, _ in procs], "rss_mib": round(sum(r for _, r, _ in procs) / 1024, 1)}
            for name, procs in process_groups(stack.stack.run_dir).items()}


def write_report(key: str, value: dict) -> None:
    REPORT.parent.mkdir(exist_ok=True)
    data = json.loads(REPORT.read_text(encoding="utf-8")) if REPORT.exists() else {}
    data[key] = value
    REPORT.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


# --------------------------------------------------------------------------- tests

def test_twenty_conversations_over_two_replicas_each_message_answered_once_in_order(scaled, reference):
    rest = [RestConversation(scaled.rasa_url) for _ in range(CONVERSATIONS // 2)]
    web = [WebChatConversation(scaled.rasa_url) for _ in range(CONVERSATIONS // 2)]

    async def run() -> None:
        async with httpx.AsyncClient() as client:
            await asyncio.gather(*(c.run(client, 0.05) for c in rest), *(c.run(0.05) for c in web))

    started = time.monotonic()
    asyncio.run(run())
    took = time.monotonic() - started
    assert_every_message_answered_once(scaled, rest + web, reference)
    assert all(c.resent == 0 and c.reconnects == 0 for c in web)

    log = access_log(scaled)
    replicas = {f"127.0.0.1:{p}" for p in scaled.rasa_ports}
    rest_senders = {c.sender for c in rest}
    # The REST messages went to both replicas (nginx: the least busy), and conversations moved.
    posts = [r for r in log if r["uri"] == "/webhooks/rest/webhook" and r["status"] == "200"]
    assert {r["upstream"] for r in posts} == replicas
    # Each web conversation stayed on one replica: its socket.io requests all went to the same one.
    by_conversation = defaultdict(set)
    for r in log:
        if r["uri"].startswith("/socket.io/") and r["key"].startswith("anon-"):
            by_conversation[r["key"]].add(r["upstream"])
    assert set(by_conversation) == {c.anon for c in web}
    assert all(len(ups) == 1 and ups <= replicas for ups in by_conversation.values()), by_conversation
    write_report("no_fault", {"conversations": len(rest_senders) + len(web), "messages": CONVERSATIONS * len(SCRIPT),
                              "seconds": round(took, 1), "start_seconds": round(scaled.started_in, 1),
                              "rss": rss_report(scaled)})


def test_a_staff_message_reaches_the_socket_whichever_replica_holds_it(scaled):
    import jwt
    import socketio

    from backend.services.rasa_api import RasaClient

    customers = range(1, 13)
    senders = {cid: scaled.web_sender(cid) for cid in customers}
    rasa = RasaClient(scaled.rasa_url, scaled.env["RASA_API_TOKEN"])

    async def run() -> dict[str, list[str]]:
        got: dict[str, list[str]] = defaultdict(list)
        clients = []
        for cid, sender in senders.items():
            now = int(time.time())
            token = jwt.encode({"sub": sender, "customer_id": cid, "iat": now, "exp": now + 600},
                               scaled.env["WEBCHAT_JWT_SECRET"], algorithm="HS256")
            sio = socketio.AsyncClient(reconnection=False)
            confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
            sio.on("session_confirm", lambda sid, f=confirmed: f.done() or f.set_result(sid))
            sio.on("bot_uttered", lambda data, s=sender: got[s].append(data.get("text")))
            # As the page does (chat.js): the sign-in token, and the conversation for the router.
            await sio.connect(f"{scaled.rasa_url}?conversation={sender.replace(':', '%3A')}", auth={"token": token},
                              socketio_path="socket.io", transports=["polling", "websocket"], wait_timeout=10)
            await sio.emit("session_request", {"session_id": None})
            assert await asyncio.wait_for(confirmed, 15) == sender
            clients.append(sio)
        for sender in senders.values():  # as the console's staff reply does (backend/services/rasa_api.py)
            await asyncio.to_thread(rasa.send_staff_message, sender, "web", f"staff note for {sender}", "agent1")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(not got[s] for s in senders.values()):
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        for sio in clients:
            await sio.disconnect()
        return got

    got = asyncio.run(run())
    assert {s: got[s] for s in senders.values()} == {s: [f"staff note for {s}"] for s in senders.values()}
    log = access_log(scaled)
    replicas = {f"127.0.0.1:{p}" for p in scaled.rasa_ports}
    for sender in senders.values():
        key = sender.removeprefix("web:")
        sockets = {r["upstream"] for r in log if r["key"] == key and r["uri"].startswith("/socket.io/")}
        api = {r["upstream"] for r in log if r["key"] == key and r["uri"].startswith("/conversations/")}
        assert len(sockets) == 1 and sockets == api, (sender, sockets, api)
    # Twelve conversations over two replicas: both hold some (all on one: 1 chance in 2,048).
    placed = {r["upstream"] for r in log if r["uri"].startswith("/conversations/web:s-")}
    assert placed == replicas


def test_a_replica_killed_half_way_loses_and_duplicates_nothing(scaled, reference):
    web = [WebChatConversation(scaled.rasa_url) for _ in range(CONVERSATIONS)]
    sent = {"count": 0}
    half = CONVERSATIONS * len(SCRIPT) // 2
    killed: dict = {}

    def replica_of(conversation) -> str | None:
        for r in reversed(access_log(scaled)):
            if r["key"] == conversation.anon and r["uri"].startswith("/socket.io/"):
                return r["upstream"]
        return None

    async def kill_half_way() -> None:
        while sent["count"] < half:
            await asyncio.sleep(0.02)
        # The replica holding the most conversations now (the handshakes nginx logged).
        placed = defaultdict(int)
        for c in web:
            placed[replica_of(c)] += 1
        target = max((u for u in placed if u), key=lambda u: placed[u])
        name = f"rasa-{[f'127.0.0.1:{p}' for p in scaled.rasa_ports].index(target) + 1}"
        os.killpg(scaled.stack.procs[name].pid, signal.SIGKILL)
        killed.update(name=name, upstream=target, at_message=sent["count"], conversations=placed[target])

    async def conversation(c: WebChatConversation) -> None:
        await c.connect(time.monotonic() + 60)
        try:
            for text in SCRIPT:
                sent["count"] += 1
                c.replies.append(await c.send(text))
                await asyncio.sleep(0.05)
        finally:
            await c.sio.disconnect()

    async def run() -> None:
        await asyncio.gather(kill_half_way(), *(conversation(c) for c in web))

    started = time.monotonic()
    asyncio.run(run())
    took = time.monotonic() - started
    assert killed["conversations"] >= 1
    assert scaled.stack.procs[killed["name"]].poll() == -signal.SIGKILL
    moved = [c for c in web if c.reconnects]
    assert moved, "no conversation was on the killed replica"
    assert_every_message_answered_once(scaled, web, reference)
    ids = {}
    for c in web:  # each message recorded once, under its client message id
        ids[c.sender] = [t[1] for t in tracker_turns(scaled, c.sender)]
        assert len(set(ids[c.sender])) == len(SCRIPT)
    # Every message's claim in the backend completed (channels/claims.py); some were taken over from
    # the killed replica (attempts > 1).
    import psycopg

    with psycopg.connect(scaled.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute("SELECT key, state, attempts FROM inbound_events WHERE key LIKE 'web:anon-%'").fetchall()
    claims = {key.rsplit(":", 1)[1]: (state, attempts) for key, state, attempts in rows}
    mine = [uuid.UUID(i).hex for sender_ids in ids.values() for i in sender_ids]
    assert {claims.get(i, ("missing",))[0] for i in mine} == {"done"}
    taken_over = sum(1 for i in mine if claims[i][1] > 1)
    survivor = ({f"127.0.0.1:{p}" for p in scaled.rasa_ports} - {killed["upstream"]}).pop()
    assert all(replica_of(c) == survivor for c in moved)
    write_report("replica_killed", {**killed, "seconds": round(took, 1), "moved": len(moved),
                                    "resent": sum(c.resent for c in web), "claims_taken_over": taken_over})
