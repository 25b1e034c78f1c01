"""A fake Rasa HTTP API on 127.0.0.1 for the backend tests: it accepts what the backend's RasaClient
sends (POST /conversations/{id}/tracker/events and /trigger_intent, GET /tracker), checks the token
as Rasa does (401 otherwise), answers like Rasa and records every request with its raw path, so a
test can assert the exact request (the conversation id keeps ':' and '+' unescaped).

    with FakeRasa("token") as rasa:
        app.state.rasa = RasaClient(rasa.url, "token")
        ...
        assert rasa.requests[-1].json == {...}

``status`` makes it answer with an error instead (a Rasa that is up but failing); ``paused`` answers as
for a conversation paused for staff (Rasa then stores the event but runs no action); ``silent`` runs
the action but the bot says nothing (actions/outreach.py when the backend is unreachable or the
instalment was paid: no bot event); ``on_request`` is called with each request before the answer,
e.g. to look at the database at that moment.

It keeps a tracker per conversation as Rasa does: appended events (POST /tracker/events, one event or
a list: the backend's notices and staff replies) are stored as they come, with a timestamp (``silent``:
the bot events are dropped, a Rasa that answers 200 but keeps nothing) and the POST answers the
tracker; a triggered intent is stored as a user event
(intent and entities in parse_data) followed, unless paused, by the bot's action and (unless silent)
its message; trigger_intent answers {"tracker": ...} with the events, as Rasa does (``bare_answer``:
without them, so the client must GET the tracker); GET /tracker answers the tracker itself
({"sender_id", "paused", "slots", "events"}). ``delay`` seconds are slept after the events or the
trigger were stored and before answering (a Rasa slower than the client's timeout: the notice was delivered, the client saw a
timeout).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str  # raw, as it arrived (percent-encoding kept)
    query: dict[str, str]
    json: Any
    status: int
    seen: Any = None  # what on_request returned

    @property
    def is_delivery(self) -> bool:
        """A message appended to a tracker (not the action_listen that opens a new conversation's session)."""
        return self.method == "POST" and self.path.endswith("/tracker/events") and any(
            e.get("event") == "bot" for e in (self.json if isinstance(self.json, list) else [self.json or {}]))


class FakeRasa:
    def __init__(self, token: str) -> None:
        self.token = token
        self.status = 200
        self.paused = False
        self.silent = False
        self.bare_answer = False
        self.delay = 0.0
        self.on_request: Callable[[Request], Any] | None = None
        self.requests: list[Request] = []
        self.trackers: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-rasa", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeRasa":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def triggered(self, conversation: str, intent: str, entities: dict) -> None:
        """Store a triggered intent the way Rasa does (also to set up a tracker in a test)."""
        events = self.trackers.setdefault(conversation, [])
        events.append({"event": "user", "text": f"EXTERNAL: {intent}", "parse_data": {
            "intent": {"name": intent, "confidence": 1.0},
            "entities": [{"entity": k, "value": v} for k, v in entities.items()]}})
        if not self.paused:
            events.append({"event": "action", "name": "action_handoff_closed"})
            if not self.silent:
                events.append({"event": "bot", "text": "...", "data": {"elements": None, "buttons": None}})
            events.append({"event": "action", "name": "action_listen"})

    def appended(self, conversation: str, events: list[dict]) -> None:
        """Store appended events the way Rasa does (the caller holds the lock)."""
        kept = [dict(e, timestamp=time.time()) for e in events if not (self.silent and e.get("event") == "bot")]
        self.trackers.setdefault(conversation, []).extend(kept)

    def wrote(self, conversation: str, at: float | None = None) -> None:
        """The borrower wrote in the conversation (a user event, now or at a unix time)."""
        with self._lock:
            self.trackers.setdefault(conversation, []).append(
                {"event": "user", "text": "hi", "timestamp": time.time() if at is None else at, "parse_data": {}})

    def said(self, conversation: str) -> list[str]:
        """The bot messages in the conversation, oldest first."""
        with self._lock:
            return [e.get("text") for e in self.trackers.get(conversation, []) if e.get("event") == "bot"]

    def take(self) -> list[Request]:
        """The requests so far, oldest first; forgets them."""
        with self._lock:
            taken, self.requests = self.requests, []
            return taken

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status = 401 if query.get("token") != fake.token else fake.status
                req = Request(self.command, parts.path, query, body, status)
                if fake.on_request is not None:
                    req.seen = fake.on_request(req)
                with fake._lock:
                    fake.requests.append(req)
                sender = parts.path.split("/")[2] if parts.path.startswith("/conversations/") else ""

                def tracker() -> dict:
                    with fake._lock:
                        events = list(fake.trackers.get(sender, []))
                        slots = {e["name"]: e.get("value") for e in events if e.get("event") == "slot"}
                        return {"sender_id": sender, "paused": fake.paused, "slots": slots, "events": events}

                if status != 200:
                    answer = {"version": "3.6.21", "status": "failure", "reason": "fake", "code": status}
                elif self.command == "GET" and parts.path.endswith("/tracker"):
                    answer = tracker()
                else:
                    bare = {"sender_id": sender, "paused": fake.paused}
                    if parts.path.endswith("/tracker/events"):  # Rasa answers the tracker itself
                        with fake._lock:
                            fake.appended(sender, body if isinstance(body, list) else [body])
                        time.sleep(fake.delay)
                        answer = bare if fake.bare_answer else tracker()
                    else:
                        if parts.path.endswith("/trigger_intent"):
                            with fake._lock:
                                fake.triggered(sender, body["name"], body.get("entities") or {})
                            time.sleep(fake.delay)
                        answer = {"tracker": bare if fake.bare_answer else tracker()}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, *args) -> None:  # quiet
                pass

        return Handler
