"""The backend's client for Rasa's HTTP API: Rasa stays the record of the conversation.

Staff replies are appended to the tracker as ``bot`` events with ``execute_side_effects`` and the
borrower's ``output_channel``, so they reach WeChat, SMS or the web chat the way bot messages do
and are part of the transcript. "Return to assistant" resumes the conversation and triggers
EXTERNAL_handoff_closed (the bot then asks for a rating). Notices (decisions, outreach) are worded by
the backend and delivered the same way as staff replies: ``deliver`` appends optional slot events and
a ``bot`` event with the text to the tracker, Rasa sends it on the borrower's channel
(backend.services.outreach.outbox).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

import texts
from backend.core.errors import AppError

# The Rasa input channel that delivers to each of our channels (InputChannel.name()).
OUTPUT_CHANNEL = {"web": "socketio", "wechat": "wechat", "sms": "sms"}


class RasaUnavailable(AppError):
    def __init__(self) -> None:
        super().__init__(502, "rasa_unavailable", texts.text("errors.rasa_unavailable"), "Rasa did not answer")


@dataclass
class RasaClient:
    """One pooled ``httpx.Client`` per RasaClient (made on first use, thread-safe: the outreach
    dispatcher's delivery threads share it): keep-alive connections to Rasa are reused instead of a
    new connection (and TLS context) per call. ``max_connections`` bounds the pool; a caller with
    more threads than that waits for a free connection."""

    base_url: str
    token: str
    timeout: float = 10.0
    max_connections: int = 32
    _http: httpx.Client | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def http(self) -> httpx.Client:
        if self._http is None:
            with self._lock:
                if self._http is None:
                    self._http = httpx.Client(timeout=self.timeout, limits=httpx.Limits(
                        max_connections=self.max_connections, max_keepalive_connections=self.max_connections))
        return self._http

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _call(self, method: str, conversation: str, tail: str, **kw) -> dict:
        # Rasa does not decode %3A in the conversation id: keep ':' and '+' (sms:+86...) as they are.
        url = f"{self.base_url.rstrip('/')}/conversations/{quote(conversation, safe=':+')}/{tail}"
        params = {"token": self.token, **kw.pop("params", {})}
        try:
            r = self.http().request(method, url, params=params, timeout=self.timeout, **kw)
            r.raise_for_status()
            return r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RasaUnavailable() from exc

    def events(self, conversation: str) -> list[dict]:
        """The whole stored conversation (all sessions), oldest first."""
        return self._call("GET", conversation, "tracker", params={"include_events": "ALL"}).get("events", [])

    def tracker(self, conversation: str) -> dict:
        """The stored conversation: ``paused``, ``slots`` and every event (all sessions)."""
        return self._call("GET", conversation, "tracker", params={"include_events": "ALL"})

    def deliver(self, conversation: str, channel: str, text: str, metadata: dict, events: list[dict] = ()) -> dict:
        """Append ``events`` (slots, a form's activation) and a ``bot`` message, the ``bot`` events among
        ``events`` after it (a form's question), then ``action_listen`` as a bot turn ends (the policies
        read the borrower's answer in the state the slots describe); Rasa sends the messages on the
        borrower's channel (execute_side_effects) and records them. Answers the tracker."""
        before = [e for e in events if e.get("event") != "bot"]
        after = [e for e in events if e.get("event") == "bot"]
        return self._call("POST", conversation, "tracker/events",
                          params={"output_channel": OUTPUT_CHANNEL[channel], "execute_side_effects": "true",
                                  "include_events": "ALL"},
                          json=[*before, {"event": "bot", "text": text, "metadata": metadata}, *after,
                                {"event": "action", "name": "action_listen"}])

    def open_session(self, conversation: str) -> None:
        """Have Rasa start (and store) the session of a conversation that has none yet: Rasa runs
        action_session_start when the first events arrive, after it has stamped them, and reads a session
        from its SessionStarted on, so events appended together with the session's start would be left
        out of it. An ``action_listen`` first; the notice then follows in the session."""
        self._call("POST", conversation, "tracker/events", json=[{"event": "action", "name": "action_listen"}])

    def send_staff_message(self, conversation: str, channel: str, text: str, staff: str) -> None:
        self._call("POST", conversation, "tracker/events",
                   params={"output_channel": OUTPUT_CHANNEL[channel], "execute_side_effects": "true"},
                   json={"event": "bot", "text": text, "metadata": {"staff": staff}})

    def hand_back(self, conversation: str, channel: str, case_id: int) -> None:
        """Resume the conversation, then let the bot ask for a rating on the borrower's channel."""
        self._call("POST", conversation, "tracker/events", json={"event": "resume"})
        self.trigger_intent(conversation, channel, "EXTERNAL_handoff_closed", {"case_id": case_id})

    def trigger_intent(self, conversation: str, channel: str, intent: str, entities: dict) -> dict:
        """Run an external intent in the borrower's conversation; the bot answers on their channel."""
        return self._call("POST", conversation, "trigger_intent",
                          params={"output_channel": OUTPUT_CHANNEL[channel]},
                          json={"name": intent, "entities": entities})
