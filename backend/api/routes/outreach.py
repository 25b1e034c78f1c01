"""Outreach notices for the bot and the dashboard (backend.services.outreach).

The bot's action for an EXTERNAL_* notice re-reads the notice by the notice_id entity (and then the
loan) to word the message; the summary counts what the outreach log says since a moment.
"""
from __future__ import annotations

from datetime import datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from backend.api.deps import DB, ApiRoute, Rules, Scoped, Today
from backend.core.errors import not_found
from backend.models import OutreachNotice
from backend.services.outreach.summary import summary

router = APIRouter(prefix="/api/v1", tags=["outreach"], route_class=ApiRoute)

# The conversation id holds the borrower's phone number or openid: never in a response.
_PRIVATE = ("conversation",)


class NoticeOut(BaseModel):
    notice_id: str
    kind: str
    customer_id: int | None
    loan_id: int | None
    instalment_seq: int | None
    payload: dict  # the figures known at planning (decimals as strings)
    status: str
    channel: str | None  # where it went (or is going)


@router.get("/outreach/notices/{notice_id}", response_model=NoticeOut)
def get_notice(notice_id: str, db: DB, _: Scoped("outreach:notices")) -> NoticeOut:
    n = db.scalar(select(OutreachNotice).where(OutreachNotice.notice_id == notice_id))
    if n is None:
        raise not_found("该提醒", "Outreach notice")
    return NoticeOut(notice_id=n.notice_id, kind=n.kind.value, customer_id=n.customer_id, loan_id=n.loan_id,
                     instalment_seq=n.instalment_seq, status=n.status.value,
                     payload={k: v for k, v in n.payload.items() if k not in _PRIVATE},
                     channel=n.channel.value if n.channel else None)


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
