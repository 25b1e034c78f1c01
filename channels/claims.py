"""Holding an inbound message's claim while Rasa processes it (WeChat, SMS, web chat).

The backend keeps the claims (backend/services/channels.py, POST /api/v1/channels/inbound...): a
message claimed with an owner token is ``in_progress`` until the owner completes it, which the
channels do right after Rasa has processed the message (``on_new_message`` returned: the tracker is
saved). While Rasa works the lease is renewed every third of its length, so only a claim whose
process died goes stale; a retry of the message then takes it over and processes it, never drops it.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime
from typing import Any

from rasa.shared.core.events import UserUttered

from bot.backend import BackendError

log = logging.getLogger(__name__)

CLAIMED, IN_PROGRESS, DONE = "claimed", "in_progress", "done"


async def processed_before(app: Any, sender_id: str, message_id: str | None) -> bool:
    """Is the message already in the conversation's tracker? Asked only when a stale claim was taken
    over (``attempts`` > 1): its owner may have died after Rasa saved the turn and before it completed
    the claim (a replica killed at that moment), and processing it again would duplicate it. The user
    event carries the message's id (web chat cid, WeChat MsgId, Twilio MessageSid). If the tracker
    cannot be read the message is processed: an answer matters more than a rare duplicate."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    store = getattr(agent, "tracker_store", None)
    if store is None or not message_id:
        return False
    try:
        tracker = await store.retrieve(sender_id)
    except Exception as exc:  # noqa: BLE001 - see above
        log.warning("tracker not read for a taken-over claim: %s", type(exc).__name__)
        return False
    return any(isinstance(e, UserUttered) and e.message_id == message_id for e in (tracker.events if tracker else []))


def taken_over(claim: dict) -> bool:
    return int(claim.get("attempts") or 1) > 1


def new_owner() -> str:
    return uuid.uuid4().hex


def seconds_left(claim: dict) -> float:
    """Seconds until the claim's lease runs out (0 if it has, or has none)."""
    until = claim.get("lease_until")
    if not until:
        return 0.0
    try:
        end = datetime.fromisoformat(str(until).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(end.timestamp() - time.time(), 0.0)


class Lease:
    """The claim of one message, held by ``owner`` from :meth:`start` until :meth:`complete`
    (Rasa processed it) or :meth:`release` (it could not be processed: the next retry takes it)."""

    def __init__(self, backend: Any, channel: str, key: str, owner: str, lease_seconds: float) -> None:
        self.backend, self.channel, self.key, self.owner = backend, channel, key, owner
        self.every = max(float(lease_seconds or 10) / 3, 0.2)
        self.finished = False
        self._renewer: asyncio.Task | None = None

    def start(self) -> "Lease":
        self._renewer = asyncio.ensure_future(self._renew())
        return self

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.backend.renew_claim(self.channel, self.key, self.owner)
            except BackendError as exc:
                if exc.status == 409:  # taken over or done: nothing left to hold
                    log.warning("%s claim lost while processing", self.channel)
                    return
                log.warning("%s claim not renewed: %s", self.channel, type(exc).__name__)

    def _stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None

    async def complete(self) -> None:
        """Rasa has processed the message. Retried a few times: a claim left in progress would let a
        retry process the message again."""
        if self.finished:
            return
        self.finished = True
        self._stop()
        for attempt in range(3):
            try:
                await self.backend.complete_claim(self.channel, self.key, self.owner)
                return
            except BackendError as exc:
                log.warning("%s claim not completed (attempt %d): %s", self.channel, attempt + 1, type(exc).__name__)
                await asyncio.sleep(0.5 * (attempt + 1))

    async def release(self) -> None:
        """Not processed: give the claim up so that the message's retry takes it over at once."""
        if self.finished:
            return
        self.finished = True
        self._stop()
        try:
            await self.backend.release_claim(self.channel, self.key, self.owner)
        except BackendError as exc:  # the lease runs out by itself
            log.warning("%s claim not released: %s", self.channel, type(exc).__name__)


async def settle(backend: Any, channel: str, external_id: str, key: str, owner: str, claim: dict,
                 within: float) -> dict:
    """A retry found the message ``in_progress`` under another owner: wait up to ``within`` seconds
    for it to be done (a duplicate) or to go stale (then ``owner`` takes it over). Returns the last
    claim answer; its state is still ``in_progress`` if the other owner is alive and working."""
    deadline = time.monotonic() + within
    while claim.get("state") == IN_PROGRESS:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await asyncio.sleep(min(0.5, left))
        try:
            claim = await backend.claim(channel, external_id, key, owner)
        except BackendError as exc:
            log.warning("%s claim not checked: %s", channel, type(exc).__name__)
            break
    return claim


async def answer_when_done(task: asyncio.Future, started: float, within: float) -> bool:
    """Hold a webhook's answer until the turn is done, at most until ``within`` seconds after
    ``started`` (WeChat gives 5 s, Twilio 15 s): a process that dies first leaves the provider without
    an answer, so it retries. False when the turn failed (it released its claim for that retry)."""
    try:
        await asyncio.wait_for(asyncio.shield(task), max(within - (time.monotonic() - started), 0.1))
    except asyncio.TimeoutError:
        pass  # still working under its renewed lease: a retry waits for it, then finds it done
    except Exception:  # noqa: BLE001 - logged by the turn itself
        return False
    return True
