"""Outreach notices for the bot and the dashboard (backend.services.outreach).

The bot reads a notice it held back behind the identity question (slot pending_notice) when the
borrower confirms: ``text`` is the message as the backend words it now (None: nothing to say any
more); the summary counts what the outreach log says since a moment.
"""
from __future__ import annotations

from datetime import datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

import texts
from backend.api.deps import DB, ApiRoute, Rules, Scoped, Today
from backend.services.outreach import render
from backend.core.errors import not_found
from backend.models import OutreachNotice
from backend.services.outreach.summary import summary

router = APIRouter(prefix="/api/v1", tags=["outreach"], route_class=ApiRoute)

# The conversation id holds the borrower's phone number or openid: never in a response.
_PRIVATE = ("conversation", "actor", "via")


class NoticeOut(BaseModel):
    notice_id: str
    kind: str
    customer_id: int | None
    loan_id: int | None
    instalment_seq: int | None
    payload: dict  # the figures known at planning (decimals as strings)
    status: str
    channel: str | None  # where it went (or is going)
    text: str | None = None  # the message as of today (backend.services.outreach.render); None: nothing to say


@router.get("/outreach/notices/{notice_id}", response_model=NoticeOut)
def get_notice(notice_id: str, db: DB, rules: Rules, clock: Today, _: Scoped("outreach:notices")) -> NoticeOut:
    n = db.scalar(select(OutreachNotice).where(OutreachNotice.notice_id == notice_id))
    if n is None:
        raise not_found(texts.text("errors.things.notice"), "Outreach notice")
    return NoticeOut(notice_id=n.notice_id, kind=n.kind.value, customer_id=n.customer_id, loan_id=n.loan_id,
                     instalment_seq=n.instalment_seq, status=n.status.value,
                     payload={k: v for k, v in n.payload.items() if k not in _PRIVATE},
                     channel=n.channel.value if n.channel else None,
                     text=_text(db, rules, n, clock.today()))


def _text(db, rules, notice: OutreachNotice, today) -> str | None:
    rendered = render.render(db, rules, notice, today)
    return rendered.text if rendered else None


@router.get("/outreach/summary")
def get_summary(db: DB, rules: Rules, clock: Today, _: Scoped("outreach:summary"),
                since: Annotated[datetime | None, Query(description="ISO date-time; default: today 00:00")] = None) -> dict:
    """Sent by kind and channel, skipped and deferred by rule and kind, failures and expiries by kind,
    and the notices still waiting."""
    tz = ZoneInfo(rules.timezone)
    if since is None:
        since = datetime.combine(clock.now().astimezone(tz).date(), time(0), tzinfo=tz)
    elif since.tzinfo is None:
        since = since.replace(tzinfo=tz)
    return summary(db, since.astimezone(tz))
