"""Sending due notices, exactly once, through the outbox (backend.services.outreach.outbox).

* Claim: ids of due notices selected FOR UPDATE SKIP LOCKED on PostgreSQL, then a conditional UPDATE
  planned -> sending with a fresh claim token (the guard on SQLite too), so two dispatchers (two
  scheduler processes, or the scheduler and the backend's outbox worker) never both own a notice.
  The claim is committed before Rasa is called; no write lock is held while Rasa works.
* Each claimed notice: the rules (backend.services.outreach.rules), a channel (routing), the
  conversation's tracker (paused for staff? already delivered?), the message (a decision's, saved
  with the decision; a scheduled notice's, rendered now: backend.services.outreach.render, with the
  identity question first where outreach.identity_check asks for it), then the conversation it goes
  to is committed, then the channel's sender appends it through Rasa's HTTP API, then the outcome is
  committed. Every step writes an OutreachAttempt row.
* A notice whose conversation is already set may have reached Rasa before (a timeout, a crash after
  the call): Rasa's tracker is asked first, and a delivered notice is marked sent, not sent again.
* A notice left in "sending" for ``stale_sending_seconds`` (its dispatcher died) is re-claimed and
  goes through the same path.
* Concurrency (``dispatch_due(concurrency=n)``, the scheduler's OUTREACH_DELIVERY_CONCURRENCY): a
  claimed batch is delivered by a bounded thread pool, each thread with its own session and the
  Sender's pooled HTTP client (keep-alive connections to Rasa, no new connection per notice). A
  borrower's notices (one claim batch) go to one thread, one after the other, so the caps, which
  count what the borrower was sent or is being sent by another claim, see each outcome before the
  next notice is checked; every rule is still checked per notice when it is its turn. Several
  dispatchers (the scheduler's OUTREACH_DISPATCHERS threads) each claim their own batches.
* Delivered means the tracker shows the bot message carrying the notice id (sender.find_notice, the
  same test as the recovery above); a 200 without it is an attempt with outcome ``no_reply``.
* Rasa failing: retry after retry_backoff_minutes (the rules are checked again first: a loan paid
  meanwhile is skipped, not retried); after max_attempts failed attempts the notice is a permanent
  failure (status failed, a warning in the log, counted in the summary), never "sent".
* Decisions keep their audit rows: notice_sent, notice_deferred (the first time it has to wait),
  notice_failed, by the staff member who decided and the way they did (the notice's payload).
"""
from __future__ import annotations

import logging
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.core.clock import local
from backend.models import Channel, OutboxStatus, OutreachAttempt, OutreachKind, OutreachNotice, OutreachStatus
from backend.services import audit

from . import kinds, outbox, render, routing, rules
from .context import Outreach
from .sender import DELIVERED, NO_REPLY, SendFailed, find_notice

log = logging.getLogger(__name__)
notice_log = logging.getLogger("backend.services.notices")  # what the decisions' notices did
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
    if status == OutreachStatus.sent:
        outbox.finish(db, notice.id, OutboxStatus.sent, now)
    elif status != OutreachStatus.planned:  # skipped, expired: its message is never sent
        outbox.finish(db, notice.id, OutboxStatus.failed, now, rule)
    elif status == OutreachStatus.planned:
        outbox.finish(db, notice.id, OutboxStatus.queued, now, rule)
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
    outbox.finish(db, notice.id, OutboxStatus.failed if final else OutboxStatus.queued, now, error)
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
    try:
        state = ctx.sender.look(route.conversation)
    except SendFailed as exc:
        return _call_failed(db, ctx, notice, token, now, exc.error, route.channel)
    if find_notice(state.events, notice.notice_id) == DELIVERED:
        return _sent(db, notice, token, now, route, "found in the tracker")
    if state.paused:  # staff hold the conversation: nothing is said in it now
        return _paused(db, ctx, notice, token, now, route.channel)
    message = _message(db, ctx, notice, route, state.slots, now)
    if message is None:  # the figures leave nothing to say (paid meanwhile)
        _end(db, notice, token, now, OutreachStatus.skipped, "suppressed:paid", "paid", route.channel)
        return Outcome("skipped", "paid")
    # Written before the call: after a crash, recovery asks this conversation's tracker.
    if not _update(db, notice, token, channel=Channel(route.channel), conversation=route.conversation,
                   identity_id=route.identity_id):
        return Outcome("lost")
    outbox.sending(db, message, route.conversation, route.channel, now)
    db.commit()
    result = ctx.sender.send(route.conversation, route.channel, message.text, list(message.events or []),
                             {"notice_id": notice.notice_id, "kind": notice.kind.value})
    now = ctx.now()
    if result.delivered:
        return _sent(db, notice, token, now, route)
    if result.paused:
        return _paused(db, ctx, notice, token, now, route.channel)
    return _call_failed(db, ctx, notice, token, now, result.error, route.channel)


def compose(db: Session, ctx: Outreach, notice: OutreachNotice, channel: str, slots: dict) -> render.Rendered | None:
    """What a scheduled notice says on that channel now: the identity question first where
    outreach.identity_check asks for it (``slots``: the conversation's, contact_confirmed), else the
    message with today's figures; None when there is nothing to say."""
    if notice.kind not in kinds.DECISIONS and render.needs_identity_check(ctx.cfg, notice, channel, slots):
        return render.identity_question(db, notice)
    return render.render(db, ctx.rules, notice, ctx.today())


def _message(db: Session, ctx: Outreach, notice: OutreachNotice, route: routing.Route, slots: dict,
             now: datetime):
    """The outbox message to deliver: a decision's (saved with it), else composed now; None: nothing to say."""
    saved = outbox.of_notice(db, notice.id)
    if notice.kind in kinds.DECISIONS and saved is not None:
        return saved
    rendered = compose(db, ctx, notice, route.channel, slots)
    if rendered is None:
        return None
    if saved is not None:  # a retry: today's figures
        saved.text, saved.events = rendered.text, list(rendered.events)
        db.flush()
        return saved
    return outbox.queue(db, notice, route.conversation, route.channel, rendered.text, rendered.events, now)


# --------------------------------------------------------------------------- claiming

def _claimed(db: Session, token: str) -> list[OutreachNotice]:
    return list(db.scalars(select(N).where(N.claim_token == token, N.status == OutreachStatus.sending)
                           .order_by(N.priority, N.next_attempt_at, N.id).execution_options(populate_existing=True)))


def _of_kinds(stmt, only: frozenset[OutreachKind] | None):
    return stmt if only is None else stmt.where(N.kind.in_(sorted(only, key=lambda k: k.value)))


def claim_batch(db: Session, ctx: Outreach, cutoff: datetime, size: int,
                only: frozenset[OutreachKind] | None = None) -> tuple[list[OutreachNotice], str]:
    """Claim up to ``size`` notices due by ``cutoff`` that this run has not handled yet (``only``: of
    these kinds). On PostgreSQL rows another worker is claiming are skipped (FOR UPDATE SKIP LOCKED);
    the guarded UPDATE below keeps a notice with one worker on every database."""
    stmt = _of_kinds(select(N.id).where(
        N.status == OutreachStatus.planned, N.next_attempt_at <= cutoff,
        or_(N.claimed_at.is_(None), N.claimed_at < cutoff)), only).order_by(N.priority, N.next_attempt_at, N.id).limit(size)
    if db.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids = list(db.scalars(stmt))
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


def recover_stale(db: Session, ctx: Outreach, only: frozenset[OutreachKind] | None = None,
                  ) -> list[tuple[OutreachNotice, str]]:
    """Re-claim notices whose dispatcher died while they were "sending"."""
    now = ctx.now()
    before = now - timedelta(seconds=ctx.cfg.stale_sending_seconds)
    stale = db.execute(_of_kinds(select(N.id, N.claim_token).where(
        N.status == OutreachStatus.sending, N.claimed_at < before), only).order_by(N.id)).all()
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
    # Only the rows this call changed (another dispatcher may be lapsing the same ones right now).
    ids = list(db.scalars(update(N).where(N.id.in_(ids), N.status == OutreachStatus.planned)
                          .values(status=OutreachStatus.expired, last_error="stale").returning(N.id)
                          .execution_options(synchronize_session=False)))
    if not ids:
        db.commit()
        return 0
    db.add_all([OutreachAttempt(notice_id=pk, at=now, outcome="expired", detail="stale") for pk in ids])
    outbox.finish(db, ids, OutboxStatus.failed, now, "stale")
    db.commit()
    return len(ids)


# --------------------------------------------------------------------------- runs

def _audit_decision(db: Session, ctx: Outreach, notice: OutreachNotice, outcome: Outcome, first: bool) -> None:
    """A decision's notice, audited for the staff member who decided (payload actor and via) when it is
    first taken up: sent, deferred (waits for the window, a cap, a channel) or failed (Rasa down, the
    conversation held by staff; retried later); taken up again later (by the scheduler, or the worker
    after a wait): only sent or given up."""
    if notice.kind not in kinds.DECISIONS or outcome.status == "lost":
        return
    p = notice.payload
    actor, via = (p.get("actor") or ctx.actor, p.get("via") or "scheduler") if first else (ctx.actor, "scheduler")
    detail = dict(reference=p["reference"], intent=kinds.INTENTS[notice.kind], channel=p.get("channel"), via=via)
    intent, ref = detail["intent"], p["reference"]
    if outcome.status == "sent":
        if outcome.channel and outcome.channel != p.get("channel"):
            detail["sent_on"] = outcome.channel  # not the request's channel (e.g. WeChat's window was closed)
        audit.record(db, actor, "notice_sent", p["entity_type"], p["entity_id"], **detail)
        return
    if not first and outcome.status in ("deferred", "retry"):
        return
    if outcome.status == "deferred" and not outcome.paused:
        notice_log.info("notice %s for %s waits: %s", intent, ref, outcome.rule)
        audit.record(db, actor, "notice_deferred", p["entity_type"], p["entity_id"], reason=outcome.rule,
                     until=outcome.until.isoformat() if outcome.until else None, **detail)
        return
    error = "conversation_paused" if outcome.paused else outcome.rule
    notice_log.warning("notice %s for %s not delivered: %s", intent, ref, error)
    audit.record(db, actor, "notice_failed", p["entity_type"], p["entity_id"], error=error, **detail)


def _run(db: Session, ctx: Outreach, notice: OutreachNotice, token: str, counts: Counter) -> None:
    first = False
    try:
        # First taken up: due when it was written (a decision at night was audited as deferred then).
        # Only a decision's notice is audited (_audit_decision): no query for the others.
        first = notice.kind in kinds.DECISIONS and \
            local(notice.planned_for, ctx.tz) <= local(notice.created_at, ctx.tz) and \
            not db.scalar(select(exists().where(OutreachAttempt.notice_id == notice.id)))
        outcome = process(db, ctx, notice, token)
        _audit_decision(db, ctx, notice, outcome, first)
        db.commit()
    except Exception:
        db.rollback()  # the notice stays "sending" and is recovered after stale_sending_seconds
        log.exception("outreach notice %s: dispatch failed", notice.notice_id)
        outcome = Outcome("error", "internal_error")
        try:
            _audit_decision(db, ctx, notice, outcome, first)
            db.commit()
        except Exception:
            db.rollback()
            log.exception("outreach notice %s: audit failed", notice.notice_id)
    counts[outcome.status] += 1


def _group_key(notice: OutreachNotice):
    """Notices of one borrower (or, without one, of one conversation) are taken one after the other:
    the caps count what the borrower was sent, and each is checked after the previous one's outcome."""
    if notice.customer_id is not None:
        return ("customer", notice.customer_id)
    return ("conversation", (notice.payload or {}).get("conversation") or f"notice:{notice.id}")


def _run_group(sessions: sessionmaker, ctx: Outreach, group: list[tuple[OutreachNotice, str]]) -> Counter:
    """In a delivery thread, with its own session: the group's claimed notices, in order (the rows
    as claimed, copied into this session without a query; every write is guarded by the claim)."""
    counts: Counter = Counter()
    with sessions() as db:
        for claimed, token in group:
            _run(db, ctx, db.merge(claimed, load=False), token, counts)
    return counts


def _deliver(db: Session, ctx: Outreach, claimed: list[tuple[OutreachNotice, str]], counts: Counter,
             pool: ThreadPoolExecutor | None, sessions: sessionmaker | None) -> None:
    """The claimed notices: one by one in ``db`` without a pool; else the borrowers' groups
    (_group_key) side by side, each in a delivery thread with its own session, the groups in claim
    order. Every rule is still checked per notice when it is its turn."""
    if pool is None or sessions is None or len(claimed) <= 1:
        for notice, token in claimed:
            _run(db, ctx, notice, token, counts)
        return
    groups: dict = {}
    for notice, token in claimed:
        groups.setdefault(_group_key(notice), []).append((notice, token))
    db.commit()  # end the claiming session's read transaction while the threads work
    for got in pool.map(lambda group: _run_group(sessions, ctx, group), list(groups.values())):
        counts.update(got)


def dispatch_due(db: Session, ctx: Outreach, keep_going: Callable[[], bool] = lambda: True,
                 only: frozenset[OutreachKind] | None = None, concurrency: int = 1) -> Counter:
    """Recover stale claims, lapse stale notices, then send what is due in batches while
    ``keep_going()`` (the scheduler renews its lease there); ``only``: notices of these kinds (the
    backend's worker: decisions). ``concurrency`` > 1: that many deliveries in flight at once (a
    bounded thread pool, a session per thread, the Sender's pooled HTTP client shared; one borrower's
    notices stay in order in one thread). Counts by outcome."""
    counts: Counter = Counter()
    if not keep_going():
        return counts
    cutoff = ctx.now()
    if only is None:
        counts["expired"] += expire_stale(db, ctx)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="outreach-delivery") \
        if concurrency > 1 else None
    sessions = sessionmaker(bind=db.get_bind(), expire_on_commit=False) if pool else None
    try:
        recovered = recover_stale(db, ctx, only)
        counts["recovered"] += len(recovered)
        _deliver(db, ctx, recovered, counts, pool, sessions)
        while True:
            batch, token = claim_batch(db, ctx, cutoff, ctx.cfg.batch_size, only)
            _deliver(db, ctx, [(notice, token) for notice in batch], counts, pool, sessions)
            if len(batch) < ctx.cfg.batch_size or not keep_going():
                break
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return +counts
