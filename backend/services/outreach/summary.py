"""What the outreach log says: counts for GET /api/v1/outreach/summary and the dashboard.

Counted from the attempt rows at or after ``since`` (each is one thing that happened): sent by kind
and channel; suppressed (skipped) by rule and kind; deferred by rule and kind; permanent failures,
Rasa errors, attempts the bot answered with nothing (no_reply) and expiries by kind. ``waiting`` is a snapshot of the notices still planned or sending.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.models import ChannelIdentity, OutreachAttempt as A, OutreachNotice as N, OutreachStatus


def _nest(rows) -> dict:
    out: dict = {}
    for outer, inner, n in rows:
        out.setdefault(outer, {})[inner] = n
    return out


def summary(db: Session, since: datetime) -> dict:
    rows = db.execute(select(A.outcome, N.kind, A.channel, func.count()).join(N, N.id == A.notice_id)
                      .where(A.at >= since).group_by(A.outcome, N.kind, A.channel)).all()
    sent, skipped, deferred, failed, errors, silent, expired = [], [], [], {}, {}, {}, {}
    for outcome, kind, channel, n in rows:
        kind = kind.value
        if outcome == "sent":
            sent.append((kind, channel.value if channel else "unknown", n))
        elif outcome.startswith("suppressed:") or outcome == "no_channel":
            skipped.append((outcome.removeprefix("suppressed:"), kind, n))
        elif outcome.startswith("deferred:"):
            deferred.append((outcome.removeprefix("deferred:"), kind, n))
        elif outcome == "permanent_failure":
            failed[kind] = failed.get(kind, 0) + n
        elif outcome == "rasa_error":
            errors[kind] = errors.get(kind, 0) + n
        elif outcome == "no_reply":
            silent[kind] = silent.get(kind, 0) + n
        elif outcome == "expired":
            expired[kind] = expired.get(kind, 0) + n
    waiting = dict(db.execute(select(N.status, func.count()).where(
        N.status.in_([OutreachStatus.planned, OutreachStatus.sending])).group_by(N.status)).all())
    return {
        "since": since.isoformat(),
        "sent": _nest(sent), "skipped": _nest(skipped), "deferred": _nest(deferred),
        "failed": failed, "rasa_errors": errors, "no_reply": silent, "expired": expired,
        "waiting": {s.value: waiting.get(s, 0) for s in (OutreachStatus.planned, OutreachStatus.sending)},
    }


def reminders(db: Session, start: datetime, end: datetime) -> dict:
    """The dashboard's reminder numbers: automated notices sent in [start, end), and how many of them
    the borrower answered (wrote on that channel identity after the notice)."""
    base = select(func.count()).select_from(N).where(
        N.service.is_(False), N.status == OutreachStatus.sent, N.sent_at >= start, N.sent_at < end)
    sent = db.scalar(base)
    answered = db.scalar(base.join(ChannelIdentity, ChannelIdentity.id == N.identity_id)
                         .where(ChannelIdentity.last_inbound_at > N.sent_at))
    failed = db.scalar(select(func.count()).select_from(A).join(N, N.id == A.notice_id).where(
        N.service.is_(False), A.outcome == "permanent_failure", A.at >= start, A.at < end))
    return {"sent": sent, "answered": answered, "failed": failed, "available": True}
