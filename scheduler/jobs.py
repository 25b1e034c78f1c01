"""The scheduler's jobs. Each first takes or renews the lease (backend.services.outreach.lease): a
second scheduler process started by mistake runs nothing while the first is alive, and takes over
once the first has stopped renewing for lease_ttl_seconds.

Jobs are module-level functions (the persistent job store keeps them by reference); what they need
(database, rules, clock, Rasa) is the process's Runtime, set up once by scheduler.__main__.
"""
from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from sqlalchemy.orm import Session, sessionmaker

from backend.core.clock import Clock
from backend.core.config import BusinessRules
from backend.services.outreach import dispatcher, lease, planner
from backend.services.outreach.context import Outreach
from backend.services.outreach.sender import Sender

log = logging.getLogger("scheduler")


@dataclass
class Runtime:
    rules: BusinessRules
    sessions: sessionmaker[Session]
    clock: Clock
    sender: Sender
    backend_url: str = ""
    api_key: str = ""
    dispatchers: int = 1  # OUTREACH_DISPATCHERS: dispatcher threads side by side
    concurrency: int = 1  # OUTREACH_DELIVERY_CONCURRENCY: deliveries in flight per dispatcher
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")

    def outreach(self, dispatcher: int | None = None) -> Outreach:
        """``dispatcher``: its number, claims are then marked ``<holder>/d<n>``."""
        holder = self.holder if dispatcher is None else f"{self.holder}/d{dispatcher}"
        return Outreach(self.rules, self.clock.now, self.sender, holder=holder, actor="scheduler",
                        clock_wall=self.clock.wall, clock_today=self.clock.today)

    def hold_lease(self, db: Session) -> bool:
        # Wall-clock time, not the (possibly shifted demo) business clock: every process agrees on it.
        held = lease.acquire(db, self.holder, self.clock.wall(), self.rules.outreach.lease_ttl_seconds)
        if not held:
            log.debug("lease held by another scheduler: nothing to do")
        return held


RUNTIME: Runtime | None = None


def _runtime() -> Runtime:
    if RUNTIME is None:
        raise RuntimeError("scheduler runtime not set up (scheduler.__main__ does it)")
    return RUNTIME


def heartbeat() -> None:
    """Keep the lease while idle, so a second process cannot take it between jobs."""
    rt = _runtime()
    with rt.sessions() as db:
        rt.hold_lease(db)


def plan_notices() -> dict | None:
    """The business day's notices (idempotent: at start-up and every plan_every_minutes)."""
    rt = _runtime()
    with rt.sessions() as db:
        if not rt.hold_lease(db):
            return None
        result = planner.plan_day(db, rt.rules, rt.clock.today(), rt.clock.now())
    log.info("outreach planned for %s: %s", rt.clock.today().isoformat(), result)
    return result


def _dispatch(rt: Runtime, number: int | None) -> Counter:
    with rt.sessions() as db:
        return dispatcher.dispatch_due(db, rt.outreach(number), keep_going=lambda: rt.hold_lease(db),
                                       concurrency=rt.concurrency)


def dispatch_notices() -> dict | None:
    """Send what is due with ``rt.dispatchers`` dispatchers side by side (threads of this process:
    they share its lease, rules and pooled Rasa client, and mostly wait for Rasa, which lets the
    others run; each claims its own batches, FOR UPDATE SKIP LOCKED on PostgreSQL and a guarded
    UPDATE everywhere, so no notice has two), each renewing the lease between batches (stops if it
    was lost)."""
    rt = _runtime()
    with rt.sessions() as db:
        if not rt.hold_lease(db):
            return None
    if rt.dispatchers <= 1:
        counts = _dispatch(rt, None)
    else:
        with ThreadPoolExecutor(max_workers=rt.dispatchers, thread_name_prefix="outreach-dispatcher") as pool:
            counts = sum(pool.map(lambda n: _dispatch(rt, n), range(1, rt.dispatchers + 1)), Counter())
    if counts:
        log.info("outreach dispatched: %s", dict(counts))
    return dict(counts)


def recompute_segments() -> None:
    """Daily: refresh loan statuses and customer risk/value tiers in the backend."""
    rt = _runtime()
    with rt.sessions() as db:
        if not rt.hold_lease(db):
            return
    resp = httpx.post(f"{rt.backend_url}/api/v1/segments/recompute", headers={"X-API-Key": rt.api_key}, timeout=300)
    resp.raise_for_status()
    log.info("segments recomputed: %s", resp.json())
