"""Telling the borrower, on their own channel, that staff decided on their request or complaint.

The backend only triggers an EXTERNAL_* intent with the record's reference; the bot re-reads the
record and words the message. The notice goes out after the decision is committed (the bot's action
reads it through the API, and no write lock is held while Rasa works), and a notice that cannot be
delivered (Rasa down or answering an error, or the conversation paused for staff) never undoes or
fails the decision: it is logged and written to the audit log.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session

from backend.models import ComplaintTicket, PlanRequest

from . import audit
from .rasa_api import RasaClient

log = logging.getLogger(__name__)

PLAN_DECISION = "EXTERNAL_plan_decision"  # a plan request was approved or rejected
COMPLAINT_UPDATE = "EXTERNAL_complaint_update"  # a ticket was started, resolved, closed or extended


@dataclass(frozen=True)
class Notice:
    intent: str
    entity_type: str
    entity_id: int
    reference: str
    conversation: str
    channel: str  # web / wechat / sms


def _failure(exc: Exception) -> str:
    """What went wrong, without the URL (it holds the borrower's conversation id)."""
    cause = exc.__cause__ or exc
    if isinstance(cause, httpx.HTTPStatusError):
        return f"http_{cause.response.status_code}"
    return type(cause).__name__


def send_after_commit(db: Session, rasa: RasaClient, notice: Notice, actor: str, via: str) -> bool:
    """Commit the decision, then ask Rasa to tell the borrower; audit the outcome either way."""
    db.commit()
    detail = dict(reference=notice.reference, intent=notice.intent, channel=notice.channel, via=via)
    try:
        answer = rasa.trigger_intent(notice.conversation, notice.channel, notice.intent,
                                     {"reference": notice.reference})
        # While staff hold the conversation Rasa stores the intent but the bot says nothing.
        error = "conversation_paused" if (answer.get("tracker") or {}).get("paused") else None
    except Exception as exc:  # the decision stands whatever the notice does
        error = _failure(exc)
    if error:
        log.warning("notice %s for %s not delivered: %s", notice.intent, notice.reference, error)
        audit.record(db, actor, "notice_failed", notice.entity_type, notice.entity_id, error=error, **detail)
        return False
    audit.record(db, actor, "notice_sent", notice.entity_type, notice.entity_id, **detail)
    return True


def plan_decided(db: Session, rasa: RasaClient, req: PlanRequest, actor: str, via: str) -> bool:
    return send_after_commit(db, rasa, Notice(PLAN_DECISION, "plan_request", req.id, req.reference,
                                              req.conversation, req.channel.value), actor, via)


def complaint_updated(db: Session, rasa: RasaClient, ticket: ComplaintTicket, actor: str, via: str) -> bool:
    return send_after_commit(db, rasa, Notice(COMPLAINT_UPDATE, "complaint_ticket", ticket.id, ticket.reference,
                                              ticket.conversation, ticket.channel.value), actor, via)
