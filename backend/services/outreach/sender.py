"""How a notice reaches Rasa, and how Rasa's tracker tells whether it already did.

A notice is delivered when the bot said something about it: the tracker holds a user event with the
EXTERNAL_* intent and the entity notice_id, followed (before the next user event) by a ``bot`` event
with a message. The same test decides both a send (the tracker trigger_intent answers with, or the
conversation's tracker when the answer does not show the notice) and the exactly-once recovery (a
notice that may have reached Rasa before is looked up in the tracker first):

* a conversation paused for staff stores the event but runs no action: PAUSED, not delivered;
* the action ran but said nothing (actions/outreach.py is silent when the backend is unreachable or
  the instalment was paid meanwhile): NO_REPLY, not delivered; the dispatcher retries it with the
  configured backoff (the retry re-checks the rules first) and counts a permanent failure after
  max_attempts, never "sent".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from backend.services.rasa_api import RasaClient, RasaUnavailable

DELIVERED, PAUSED, NO_REPLY = "delivered", "paused", "no_reply"
_NOT_THE_BOT = ("action_listen", "action_extract_slots", "action_session_start")


@dataclass(frozen=True)
class SendResult:
    error: str | None = None  # what went wrong, without personal data (no URL, no conversation id)
    paused: bool = False  # Rasa stored the intent but staff hold the conversation
    uncertain: bool = False  # Rasa may have processed it anyway (timeout, 5xx)

    @property
    def delivered(self) -> bool:
        return self.error is None and not self.paused


class Sender(Protocol):
    def send(self, conversation: str, channel: str, intent: str, entities: dict) -> SendResult: ...

    def find(self, conversation: str, notice_id: str) -> str | None:
        """DELIVERED, PAUSED or None (not in the tracker); raises SendFailed if Rasa cannot say."""


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
    """DELIVERED if a user event carrying notice_id (EXTERNAL_* intent) was followed by a bot message
    before the next user event; NO_REPLY if an action ran after it but the bot said nothing; PAUSED if
    it is there but nothing ran; None if it is not there. A notice sent more than once (retried after
    a silent attempt) counts as delivered if any of its events got a message."""
    found = None
    for i, event in enumerate(events):
        if event.get("event") != "user":
            continue
        parse = event.get("parse_data") or {}
        if not str((parse.get("intent") or {}).get("name", "")).startswith("EXTERNAL_"):
            continue
        if not any(e.get("entity") == "notice_id" and e.get("value") == notice_id for e in parse.get("entities") or []):
            continue
        state = PAUSED
        for later in events[i + 1:]:
            kind = later.get("event")
            if kind == "user":
                break
            if said(later):
                return DELIVERED
            if kind == "action" and later.get("name") not in _NOT_THE_BOT:
                state = NO_REPLY
        found = NO_REPLY if NO_REPLY in (found, state) else state
    return found


@dataclass
class RasaSender:
    """Sends through Rasa's HTTP API (backend.services.rasa_api.RasaClient)."""

    client: RasaClient

    def send(self, conversation: str, channel: str, intent: str, entities: dict) -> SendResult:
        try:
            answer = self.client.trigger_intent(conversation, channel, intent, entities)
        except RasaUnavailable as exc:
            return SendResult(error=error_code(exc), uncertain=_uncertain(exc))
        tracker = answer.get("tracker") or {}
        if tracker.get("paused"):
            return SendResult(paused=True)
        notice_id = entities.get("notice_id")
        if not notice_id:
            return SendResult()  # not a notice: Rasa took it
        seen = find_notice(tracker.get("events") or [], notice_id)
        if seen is None:  # the answer does not show it (trimmed tracker): the conversation's tracker
            try:
                seen = find_notice(self.client.events(conversation), notice_id)
            except RasaUnavailable as exc:
                return SendResult(error=error_code(exc), uncertain=True)
        return SendResult() if seen == DELIVERED else SendResult(error=NO_REPLY)

    def find(self, conversation: str, notice_id: str) -> str | None:
        try:
            return find_notice(self.client.events(conversation), notice_id)
        except RasaUnavailable as exc:
            raise SendFailed(error_code(exc)) from exc
