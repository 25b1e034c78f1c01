"""The outbox: every message the backend says to a borrower, saved before it is sent (the chatwoot pattern).

A row holds the conversation, the channel, the rendered text, the tracker events that go with it
(slots the bot reads the answer with) and its source, the outreach notice. It is written

* for a decision (plan approved or rejected, complaint started, extended, resolved or closed) by the
  decision's own transaction (backend.services.notices): the staff request commits the decision and
  its message together, or neither, and returns without calling Rasa;
* for a scheduled notice by the dispatcher when the notice's rules let it go, rendered then with the
  day's figures (backend.services.outreach.render).

Delivery: the dispatcher (backend.services.outreach.dispatcher) claims the notice (one worker per
notice and so per message: FOR UPDATE SKIP LOCKED on PostgreSQL, a guarded UPDATE everywhere), applies
the contact rules (window, caps, staff holding the conversation, the channel that can deliver now),
points the message at that channel's conversation, marks it ``sending`` and hands it to the channel's
sender (backend.services.outreach.sender: a ``bot`` event appended through Rasa's HTTP API), then
records ``sent`` or the error; a notice that gives up (permanent failure, expired, skipped) fails its
message. Retries with backoff are the notice's (outreach.retry_backoff_minutes, max_attempts).

Who runs it: the backend process runs a worker thread (backend.services.outreach.worker, started in
the app's lifespan) that delivers decision notices every half second, so a decision reaches the
borrower within a second or two (also in development and the end-to-end tests, which run no
scheduler); the scheduler process (scheduler/jobs.py) plans and delivers the scheduled notices, and
also any decision that had to wait (at night, while staff hold the conversation). Both claim the same
way, so they never both send a message.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.models import Channel, OutboxMessage as M, OutboxStatus, OutreachKind, OutreachNotice


def queue(db: Session, notice: OutreachNotice, conversation: str, channel: str, text: str, events: list[dict],
          now: datetime) -> M:
    """Save a message for the notice (the caller's transaction commits it)."""
    message = M(notice_id=notice.id, kind=OutreachKind(notice.kind), conversation=conversation, channel=Channel(channel),
                text=text, events=list(events), status=OutboxStatus.queued, attempts=0, created_at=now)
    db.add(message)
    db.flush()
    return message


def of_notice(db: Session, notice_pk: int) -> M | None:
    """The notice's message (the latest, should there be more)."""
    return db.scalar(select(M).where(M.notice_id == notice_pk).order_by(M.id.desc()).limit(1)
                     .execution_options(populate_existing=True))


def sending(db: Session, message: M, conversation: str, channel: str, now: datetime) -> None:
    """About to be handed to Rasa on that conversation (the route the rules chose)."""
    db.execute(update(M).where(M.id == message.id).values(
        conversation=conversation, channel=Channel(channel), status=OutboxStatus.sending,
        attempts=M.attempts + 1, attempted_at=now).execution_options(synchronize_session=False))


def finish(db: Session, notice_pk: int | list[int], status: OutboxStatus, now: datetime, error: str | None = None) -> None:
    """The outcome of the notice's delivery for its message: sent, failed, or back to queued (a retry)."""
    values: dict = {"status": status, "last_error": error}
    if status == OutboxStatus.sent:
        values["sent_at"] = now
    which = M.notice_id.in_(notice_pk) if isinstance(notice_pk, list) else M.notice_id == notice_pk
    db.execute(update(M).where(which, M.status != OutboxStatus.sent).values(**values)
               .execution_options(synchronize_session=False))
