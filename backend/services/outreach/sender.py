"""How a notice reaches Rasa, and how Rasa's tracker tells whether it already did.

A notice is delivered when Rasa ran the EXTERNAL_* intent in the conversation: the tracker then holds
a user event with that intent and the entity notice_id, followed by the bot's action. A conversation
paused for staff stores the event but runs no action: not delivered.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from backend.services.rasa_api import RasaClient, RasaUnavailable

DELIVERED, PAUSED = "delivered", "paused"
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


def find_notice(events: list[dict], notice_id: str) -> str | None:
    """DELIVERED if a user event carrying notice_id was followed by the bot acting before the next
    user event; PAUSED if it is there but nothing ran; None if it is not there."""
    found = None
    for i, event in enumerate(events):
        if event.get("event") != "user":
            continue
        parse = event.get("parse_data") or {}
        if not str((parse.get("intent") or {}).get("name", "")).startswith("EXTERNAL_"):
            continue
        if not any(e.get("entity") == "notice_id" and e.get("value") == notice_id for e in parse.get("entities") or []):
            continue
        found = PAUSED
        for later in events[i + 1:]:
            kind = later.get("event")
            if kind == "user":
                break
            if kind == "bot" or (kind == "action" and later.get("name") not in _NOT_THE_BOT):
                return DELIVERED
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
        return SendResult(paused=bool((answer.get("tracker") or {}).get("paused")))

    def find(self, conversation: str, notice_id: str) -> str | None:
        try:
            return find_notice(self.client.events(conversation), notice_id)
        except RasaUnavailable as exc:
            raise SendFailed(error_code(exc)) from exc
