"""How a rendered notice reaches the borrower: through Rasa's HTTP API, per channel, recorded in the tracker.

The backend words every notice itself (backend.services.outreach.render) and hands Rasa the text: a
``bot`` event appended to the conversation's tracker with ``execute_side_effects`` and the channel's
``output_channel`` (backend.services.rasa_api.RasaClient.deliver, as staff replies go), so Rasa sends it
on WeChat, SMS or the web chat and the transcript holds it. Optional slot events go first (the rating
request sets ``handoff_case``, the identity question ``answer_context`` and ``pending_notice``), so the
bot reads the borrower's answer in context.

Each channel has its sender (``RasaSender.for_channel``: the Rasa output channel that delivers there).
The bot event's metadata carries the notice id: a notice is delivered when the tracker holds a bot
event with it (``find_notice``), the exactly-once test of the dispatcher (a notice that may have
reached Rasa before, a timeout or a crash after the call, is looked up first and never sent twice).

Before a delivery the sender reads the tracker (``look``): a conversation paused for staff takes no
notice (PAUSED: decisions wait for the conversation, reminders are dropped), and the identity check of
outreach.identity_check reads the ``contact_confirmed`` slot there; the confirmation counts only within
the conversation's session (the borrower wrote within domain.yml's session_expiration_time: the bot
resets it when a new session starts).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import httpx
import yaml

from backend.core.config import ROOT

from backend.services.rasa_api import OUTPUT_CHANNEL, RasaClient, RasaUnavailable

DELIVERED, PAUSED, NO_REPLY = "delivered", "paused", "no_reply"


@dataclass(frozen=True)
class SendResult:
    error: str | None = None  # what went wrong, without personal data (no URL, no conversation id)
    paused: bool = False  # staff hold the conversation: nothing was said
    uncertain: bool = False  # Rasa may have processed it anyway (timeout, 5xx)

    @property
    def delivered(self) -> bool:
        return self.error is None and not self.paused


@dataclass(frozen=True)
class Conversation:
    """The tracker as the sender found it before a delivery."""
    paused: bool = False
    slots: dict = field(default_factory=dict)
    events: list = field(default_factory=list)


class Sender(Protocol):
    def look(self, conversation: str) -> Conversation:
        """The conversation's tracker; raises SendFailed if Rasa cannot say."""

    def send(self, conversation: str, channel: str, text: str, events: list[dict], marker: dict) -> SendResult:
        """Say ``text`` (after ``events``); ``marker`` ({"notice_id", "kind"}) goes in the bot event's metadata."""

    def find(self, conversation: str, notice_id: str) -> str | None:
        """DELIVERED or None (not in the tracker); raises SendFailed if Rasa cannot say."""


class SendFailed(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def error_code(exc: BaseException) -> str:
    """http_<status> or the exception's class name (ConnectError, ReadTimeout ...)."""
    cause = exc.__cause__ or exc
    if isinstance(cause, httpx.HTTPStatusError):
        return f"http_{cause.response.status_code}"
    return type(cause).__name__


def _uncertain(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    if isinstance(cause, httpx.HTTPStatusError):
        return cause.response.status_code >= 500
    return not isinstance(cause, httpx.ConnectError)


def said(event: dict) -> bool:
    """A bot event with something in it (text, buttons, an image, a custom payload...)."""
    if event.get("event") != "bot":
        return False
    return bool(str(event.get("text") or "").strip()) or any((event.get("data") or {}).values())


def find_notice(events: list[dict], notice_id: str) -> str | None:
    """DELIVERED if a bot message carrying notice_id in its metadata is in the events; else None."""
    for event in events:
        if said(event) and (event.get("metadata") or {}).get("notice_id") == notice_id:
            return DELIVERED
    return None


@dataclass
class ChannelSender:
    """Delivers on one channel: the Rasa output channel that reaches it (rasa_api.OUTPUT_CHANNEL).
    ``new``: the conversation has no session yet (rasa_api.RasaClient.open_session first)."""

    client: RasaClient
    channel: str

    def send(self, conversation: str, text: str, events: list[dict], marker: dict, new: bool = False) -> SendResult:
        notice_id = marker["notice_id"]
        try:
            if new:
                self.client.open_session(conversation)
            answer = self.client.deliver(conversation, self.channel, text, dict(marker), events)
        except RasaUnavailable as exc:
            return SendResult(error=error_code(exc), uncertain=_uncertain(exc))
        seen = find_notice(answer.get("events") or [], notice_id)
        if seen is None:  # the answer does not show it (trimmed tracker): the conversation's tracker
            try:
                seen = find_notice(self.client.events(conversation), notice_id)
            except RasaUnavailable as exc:
                return SendResult(error=error_code(exc), uncertain=True)
        return SendResult() if seen == DELIVERED else SendResult(error=NO_REPLY, uncertain=True)


@lru_cache(maxsize=1)
def session_minutes() -> float:
    """Rasa's session_expiration_time (domain.yml): a conversation quiet for longer starts anew."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8")) or {}
    return float((domain.get("session_config") or {}).get("session_expiration_time", 60))


def _in_session(events: list[dict], now: float | None = None) -> bool:
    """Did the borrower write within the session time (their slots still hold)?"""
    last = next((e.get("timestamp") for e in reversed(events) if e.get("event") == "user"), None)
    return last is not None and ((now or time.time()) - float(last)) / 60 <= session_minutes()


def _new(events: list[dict]) -> bool:
    """Nothing said in the conversation yet (what Rasa shows of a new one is its session start)."""
    return not any(e.get("event") in ("user", "bot") for e in events)


@dataclass
class RasaSender:
    """Sends through Rasa's HTTP API (backend.services.rasa_api.RasaClient), by the channel's sender.
    Remembers which conversations ``look`` found new, so ``send`` opens their session first; per
    thread (the dispatchers' delivery threads share one RasaSender and its pooled client, and each
    looks and then sends in its own thread)."""

    client: RasaClient
    _local: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    @property
    def _new(self) -> set:
        if not hasattr(self._local, "new"):
            self._local.new = set()
        return self._local.new

    def for_channel(self, channel: str) -> ChannelSender:
        if channel not in OUTPUT_CHANNEL:
            raise ValueError(f"no sender for channel {channel!r}")
        return ChannelSender(self.client, channel)

    def look(self, conversation: str) -> Conversation:
        try:
            tracker = self.client.tracker(conversation)
        except RasaUnavailable as exc:
            raise SendFailed(error_code(exc)) from exc
        events = tracker.get("events") or []
        if _new(events):
            self._new.add(conversation)
        else:
            self._new.discard(conversation)
        slots = dict(tracker.get("slots") or {})
        if not _in_session(events):
            slots.pop("contact_confirmed", None)  # confirmed in a session that is over
        return Conversation(bool(tracker.get("paused")), slots, events)

    def send(self, conversation: str, channel: str, text: str, events: list[dict], marker: dict) -> SendResult:
        new = conversation in self._new
        self._new.discard(conversation)
        return self.for_channel(channel).send(conversation, text, events, marker, new)

    def find(self, conversation: str, notice_id: str) -> str | None:
        return find_notice(self.look(conversation).events, notice_id)
