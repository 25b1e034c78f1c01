"""The backend's outbox worker: delivers decision notices within a second or two of the decision.

A daemon thread started in the app's lifespan (backend.main) and stopped with it. Every
``POLL_SECONDS`` it runs the dispatcher on due notices of the decision kinds (plan_decision,
complaint_update) with the app's current rules, clock and Rasa client (app.state: read on each round,
so tests and the console see the same ones) — rules, channel choice, the outbox message delivered
through Rasa's HTTP API, audit (backend.services.outreach.dispatcher). Scheduled notices (reminders,
overdue notices, offers, rating requests) are the scheduler's (scheduler/jobs.py), which also sends
decisions that waited; both claim notices the same way, so a message is never sent twice.

``app.state.outbox_poll_seconds`` = 0 starts no thread (the backend tests run ``run_once`` themselves).
"""
from __future__ import annotations

import logging
import os
import socket
import threading

from fastapi import FastAPI

from . import dispatcher, kinds
from .context import Outreach
from .sender import RasaSender

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


def context(app: FastAPI) -> Outreach:
    clock = app.state.clock
    return Outreach(app.state.rules, clock.now, RasaSender(app.state.rasa),
                    holder=f"backend:{socket.gethostname()}:{os.getpid()}", actor="backend",
                    clock_wall=clock.wall, clock_today=clock.today)


def run_once(app: FastAPI) -> dict:
    """Deliver the decision notices due now; counts by outcome."""
    with app.state.sessionmaker() as db:
        return dict(dispatcher.dispatch_due(db, context(app), only=kinds.DECISIONS))


class OutboxWorker:
    def __init__(self, app: FastAPI, every: float = POLL_SECONDS) -> None:
        self.app, self.every = app, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="outbox-worker", daemon=True)

    def start(self) -> "OutboxWorker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                counts = run_once(self.app)
                if counts:
                    log.info("outbox: decision notices %s", counts)
            except Exception:  # a database hiccup: the next round tries again
                log.exception("outbox worker round failed")
