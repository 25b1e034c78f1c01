"""Sending due notices, exactly once.

* Claim: a conditional UPDATE planned -> sending with a fresh claim token, so two dispatchers (two
  scheduler processes, or the scheduler and the backend's immediate path) never both own a notice.
  The claim is committed before Rasa is called; no write lock is held while Rasa works.
* Each claimed notice: the rules (backend.services.outreach.rules), a channel (routing), then the
  conversation it goes to is committed, then Rasa is called, then the outcome is committed. Every
  step writes an OutreachAttempt row.
* A notice whose conversation is already set may have reached Rasa before (a timeout, a crash after
  the call): Rasa's tracker is asked first, and a delivered notice is marked sent, not sent again.
* A notice left in "sending" for ``stale_sending_seconds`` (its dispatcher died) is re-claimed and
  goes through the same path.
* Delivered means the bot said something: Rasa answering 200 is not enough. The tracker must show a
  bot message after the notice's EXTERNAL_* event (sender.find_notice, the same test as the recovery
  above); an action that said nothing is an attempt with outcome ``no_reply``.
* Rasa failing, or the bot saying nothing: retry after retry_backoff_minutes (the rules are checked
  again first: a loan paid meanwhile is skipped, not retried); after max_attempts failed attempts the
  notice is a permanent failure (status failed, a warning in the log, counted in the summary), never
  "sent".
"""
from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from backend.models import Channel, OutreachAttempt, OutreachNotice, OutreachStatus
from backend.services import audit

from . import kinds, routing, rules
from .clock import local
from .context import Outreach, fresh
from .sender import DELIVERED, NO_REPLY, SendFailed

log = logging.getLogger(__name__)
N = OutreachNotice


@dataclass(frozen=True)
class Outcome:
    status: str  # sent / skipped / deferred / retry / failed / expired / lost
    rule: str | None = None  # the rule, or Rasa's error code
    until: datetime | None = None
    paused: bool = False  # Rasa answered for a conversation paused for staff
    channel: str | None = None  # where it was sent


# --------------------------------------------------------------------------- writing

def _attempt(db: Session, notice: OutreachNotice, at: datetime, outcome: str, channel: str | None = None,
             detail: str | None = None) -> None:
    db.add(OutreachAttempt(notice_id=notice.id, at=at, channel=Channel(channel) if channel else None,
                           outcome=outcome, detail=detail))


def _update(db: Session, notice: OutreachNotice, token: str, **values) -> bool:
    """Change the notice only while this claim still owns it."""
    result = db.execute(update(N).where(N.id == notice.id, N.claim_token == token, N.status == OutreachStatus.sending)
                        .values(**values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        log.warning("outreach notice %s: claim lost (recovered by another dispatcher)", notice.notice_id)
        return False
    return True


def _end(db: Session, notice: OutreachNotice, token: str, now: datetime, status: OutreachStatus, outcome: str,
         rule: str | None, via: str | None = None, detail: str | None = None, **values) -> bool:
    """Move the claimed notice out of "sending" and log the step (``via``: the channel tried)."""
    if not _update(db, notice, token, status=status, last_error=rule, **values):
        return False
    _attempt(db, notice, now, outcome, via, detail)
    return True


# --------------------------------------------------------------------------- one notice

def _sent(db: Session, notice: OutreachNotice, token: str, now: datetime, route: routing.Route,
          detail: str | None = None) -> Outcome:
    _end(db, notice, token, now, OutreachStatus.sent, "sent", None, route.channel, detail, sent_at=now,
         channel=Channel(route.channel), conversation=route.conversation, identity_id=route.identity_id)
    return Outcome("sent", channel=route.channel)


def _verdict(db: Session, notice: OutreachNotice, token: str, now: datetime, verdict: rules.Verdict) -> Outcome:
    if verdict.action == rules.EXPIRE:
        _end(db, notice, token, now, OutreachStatus.expired, "expired", verdict.rule, detail=verdict.rule)
        return Outcome("expired", verdict.rule)
    if verdict.action == rules.SKIP:
        _end(db, notice, token, now, OutreachStatus.skipped, f"suppressed:{verdict.rule}", verdict.rule)
        return Outcome("skipped", verdict.rule)
    _end(db, notice, token, now, OutreachStatus.planned, f"deferred:{verdict.rule}", verdict.rule,
         detail=f"until {verdict.until.isoformat()}", next_attempt_at=verdict.until)
    return Outcome("deferred", verdict.rule, verdict.until)


def _paused(db: Session, ctx: Outreach, notice: OutreachNotice, token: str, now: datetime, channel: str) -> Outcome:
    """Staff hold the conversation: Rasa stored the intent but the bot said nothing."""
    if notice.kind in kinds.DECISIONS:
        until = now + timedelta(minutes=ctx.cfg.handoff_recheck_minutes)
        if until < local(notice.expires_at, ctx.tz):
            _end(db, notice, token, now, OutreachStatus.planned, "deferred:handoff", "handoff", channel,
                 f"until {until.isoformat()}", next_attempt_at=until)
            return Outcome("deferred", "handoff", until, paused=True)
        _end(db, notice, token, now, OutreachStatus.expired, "expired", "handoff", channel, "handoff")
        return Outcome("expired", "handoff", paused=True)
    _end(db, notice, token, now, OutreachStatus.skipped, "suppressed:handoff", "handoff", channel)
    return Outcome("skipped", "handoff", paused=True)


def _call_failed(db: Session, ctx: Outreach, notice: OutreachNotice, token: str, now: datetime, error: str,
                 channel: str | None) -> Outcome:
    attempts = notice.attempts + 1
    backoff = ctx.cfg.retry_backoff_minutes
    until = now + timedelta(minutes=backoff[min(attempts, len(backoff)) - 1])
    final = attempts >= ctx.cfg.max_attempts or until >= local(notice.expires_at, ctx.tz)
    values = dict(status=OutreachStatus.failed) if final else dict(status=OutreachStatus.planned, next_attempt_at=until)
    if not _update(db, notice, token, attempts=attempts, last_error=error, **values):
        return Outcome("lost", error)
    _attempt(db, notice, now, NO_REPLY if error == NO_REPLY else "rasa_error", channel, error)
    if final:
        _attempt(db, notice, now, "permanent_failure", channel, f"{error} after {attempts} attempts")
        log.warning("outreach notice %s (%s) failed permanently after %d attempts: %s",
                    notice.notice_id, notice.kind.value, attempts, error)
        return Outcome("failed", error)
    _attempt(db, notice, now, "retry_scheduled", channel, f"attempt {attempts + 1} at {until.isoformat()}")
    return Outcome("retry", error, until)


def process(db: Session, ctx: Outreach, notice: OutreachNotice, token: str) -> Outcome:
    """Take one claimed notice as far as it goes now. The caller commits."""
    now = ctx.now()
    if notice.conversation:  # a call may have reached Rasa before: never deliver twice
        try:
            seen = ctx.sender.find(notice.conversation, notice.notice_id)
        except SendFailed as exc:
            return _call_failed(db, ctx, notice, token, now, exc.error, notice.channel.value if notice.channel else None)
        if seen == DELIVERED:
            previous = routing.Route(notice.channel.value, notice.conversation, notice.identity_id)
            return _sent(db, notice, token, now, previous, "found in the tracker")
    verdict = rules.check(db, ctx, notice, now)
    if verdict.action != rules.SEND:
        return _verdict(db, notice, token, now, verdict)
    route = routing.route(db, ctx.cfg, notice, now, ctx.wall())
    if route == routing.LATER:
        until = now + timedelta(minutes=ctx.cfg.no_channel_retry_minutes)
        if until >= local(notice.expires_at, ctx.tz):
            _end(db, notice, token, now, OutreachStatus.expired, "expired", "no_channel", detail="no_channel")
            return Outcome("expired", "no_channel")
        _end(db, notice, token, now, OutreachStatus.planned, "deferred:no_channel", "no_channel",
             detail=f"until {until.isoformat()}", next_attempt_at=until)
        return Outcome("deferred", "no_channel", until)
    if isinstance(route, str):
        outcome = "no_channel" if route == routing.NO_CHANNEL else f"suppressed:{route}"
        _end(db, notice, token, now, OutreachStatus.skipped, outcome, route)
        return Outcome("skipped", route)
    # Written before the call: after a crash, recovery asks this conversation's tracker.
    if not _update(db, notice, token, channel=Channel(route.channel), conversation=route.conversation,
                   identity_id=route.identity_id):
        return Outcome("lost")
    db.commit()
    result = ctx.sender.send(route.conversation, route.channel, kinds.INTENTS[notice.kind],
                             kinds.entities(notice.kind, notice.notice_id, notice.payload))
    now = ctx.now()
    if result.delivered:
        return _sent(db, notice, token, now, route)
    if result.paused:
        return _paused(db, ctx, notice, token, now, route.channel)
    return _call_failed(db, ctx, notice, token, now, result.error, route.channel)


# --------------------------------------------------------------------------- claiming

def _claimed(db: Session, token: str) -> list[OutreachNotice]:
    return list(db.scalars(select(N).where(N.claim_token == token, N.status == OutreachStatus.sending)
                           .order_by(N.priority, N.next_attempt_at, N.id).execution_options(populate_existing=True)))


def claim_batch(db: Session, ctx: Outreach, cutoff: datetime, size: int) -> tuple[list[OutreachNotice], str]:
    """Claim up to ``size`` notices due by ``cutoff`` that this run has not handled yet."""
    ids = list(db.scalars(select(N.id).where(
        N.status == OutreachStatus.planned, N.next_attempt_at <= cutoff,
        or_(N.claimed_at.is_(None), N.claimed_at < cutoff)).order_by(N.priority, N.next_attempt_at, N.id).limit(size)))
    token = str(uuid.uuid4())
    if ids:
        db.execute(update(N).where(N.id.in_(ids), N.status == OutreachStatus.planned).values(
            status=OutreachStatus.sending, claimed_by=ctx.holder, claim_token=token, claimed_at=ctx.now())
            .execution_options(synchronize_session=False))
    db.commit()
    return (_claimed(db, token) if ids else []), token


def claim_one(db: Session, ctx: Outreach, pk: int) -> str | None:
    """Claim this notice if it is due now; its claim token, or None."""
    token = str(uuid.uuid4())
    now = ctx.now()
    result = db.execute(update(N).where(N.id == pk, N.status == OutreachStatus.planned, N.next_attempt_at <= now)
                        .values(status=OutreachStatus.sending, claimed_by=ctx.holder, claim_token=token,
                                claimed_at=now).execution_options(synchronize_session=False))
    db.commit()
    return token if result.rowcount == 1 else None


def dispatch_one(db: Session, ctx: Outreach, pk: int) -> Outcome:
    """Send this notice now if the rules allow (the backend's immediate path for decisions); else
    it stays planned for the scheduler. Commits."""
    token = claim_one(db, ctx, pk)
    if token is None:
        notice = fresh(db, N, pk)
        if notice.status != OutreachStatus.planned:
            return Outcome(notice.status.value, notice.last_error)
        return Outcome("deferred", notice.last_error or "window", local(notice.next_attempt_at, ctx.tz))
    notice = _claimed(db, token)[0]
    outcome = process(db, ctx, notice, token)
    db.commit()
    return outcome


def recover_stale(db: Session, ctx: Outreach) -> list[tuple[OutreachNotice, str]]:
    """Re-claim notices whose dispatcher died while they were "sending"."""
    now = ctx.now()
    before = now - timedelta(seconds=ctx.cfg.stale_sending_seconds)
    stale = db.execute(select(N.id, N.claim_token).where(N.status == OutreachStatus.sending, N.claimed_at < before)
                       .order_by(N.id)).all()
    out = []
    for pk, old in stale:
        token = str(uuid.uuid4())
        result = db.execute(update(N).where(N.id == pk, N.status == OutreachStatus.sending, N.claim_token == old)
                            .values(claimed_by=ctx.holder, claim_token=token, claimed_at=now)
                            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            out.append(token)
    db.commit()
    return [(notice, token) for token in out for notice in _claimed(db, token)]


def expire_stale(db: Session, ctx: Outreach, limit: int = 1000) -> int:
    """Planned notices past their expiry, ended in one go (they would lapse when claimed anyway)."""
    now = ctx.now()
    ids = list(db.scalars(select(N.id).where(N.status == OutreachStatus.planned, N.expires_at <= now).limit(limit)))
    if not ids:
        return 0
    db.execute(update(N).where(N.id.in_(ids), N.status == OutreachStatus.planned)
               .values(status=OutreachStatus.expired, last_error="stale").execution_options(synchronize_session=False))
    db.add_all([OutreachAttempt(notice_id=pk, at=now, outcome="expired", detail="stale") for pk in ids])
    db.commit()
    return len(ids)


# --------------------------------------------------------------------------- runs

def _audit_decision(db: Session, ctx: Outreach, notice: OutreachNotice, outcome: Outcome) -> None:
    """Decisions told later by the scheduler get the same audit rows as the immediate path."""
    if notice.kind not in kinds.DECISIONS or outcome.status in ("deferred", "retry", "lost"):
        return
    p = notice.payload
    detail = dict(reference=p["reference"], intent=kinds.INTENTS[notice.kind], channel=p.get("channel"), via="scheduler")
    if outcome.channel and outcome.channel != p.get("channel"):
        detail["sent_on"] = outcome.channel  # not the request's channel (e.g. WeChat's window was closed)
    if outcome.status == "sent":
        audit.record(db, ctx.actor, "notice_sent", p["entity_type"], p["entity_id"], **detail)
    else:
        audit.record(db, ctx.actor, "notice_failed", p["entity_type"], p["entity_id"], error=outcome.rule, **detail)


def _run(db: Session, ctx: Outreach, notice: OutreachNotice, token: str, counts: Counter) -> None:
    try:
        outcome = process(db, ctx, notice, token)
        _audit_decision(db, ctx, notice, outcome)
        db.commit()
    except Exception:
        db.rollback()  # the notice stays "sending" and is recovered after stale_sending_seconds
        log.exception("outreach notice %s: dispatch failed", notice.notice_id)
        outcome = Outcome("error")
    counts[outcome.status] += 1


def dispatch_due(db: Session, ctx: Outreach, keep_going: Callable[[], bool] = lambda: True) -> Counter:
    """Recover stale claims, lapse stale notices, then send what is due in batches while
    ``keep_going()`` (the scheduler renews its lease there). Counts by outcome."""
    counts: Counter = Counter()
    if not keep_going():
        return counts
    cutoff = ctx.now()
    counts["expired"] += expire_stale(db, ctx)
    for notice, token in recover_stale(db, ctx):
        counts["recovered"] += 1
        _run(db, ctx, notice, token, counts)
    while True:
        batch, token = claim_batch(db, ctx, cutoff, ctx.cfg.batch_size)
        for notice in batch:
            _run(db, ctx, notice, token, counts)
        if len(batch) < ctx.cfg.batch_size or not keep_going():
            break
    return +counts
