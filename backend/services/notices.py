"""Telling the borrower, on their own channel, that staff decided on their request or complaint.

A decision becomes an outreach notice (kind plan_decision / complaint_update: service cap, contact
window; backend.services.outreach) sent through the same dispatcher as the scheduler's: the backend
only triggers an EXTERNAL_* intent with the notice id, its kind and the record's reference, and the
bot re-reads the record and words the message. The decision is committed first (the bot's action
reads it through the API, and no write lock is held while Rasa works). Inside the contact window the
notice goes out at once; otherwise (a decision at 22:00 business time: the app's clock, which
OUTREACH_DEMO_TIME shifts for demos and end-to-end runs, backend.core.clock) it waits for the
scheduler, which sends it when the window opens. A notice that cannot be delivered now (Rasa down or
answering an error, the conversation paused for staff, the bot saying nothing) never undoes or fails
the decision: it is logged, audited (notice_failed) and retried by the scheduler.

The request's session carries the app's rules and clock (backend.api.deps.get_db puts them in
``db.info``), so the routes call these functions with the session and the Rasa client only.
"""
from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from backend.core.clock import Clock
from backend.core.config import BusinessRules, effective_rules, get_settings, load_rules
from backend.models import ComplaintTicket, OutreachNotice, PlanRequest

from . import audit
from .outreach import decisions, dispatcher, kinds
from .outreach.context import Outreach
from .outreach.sender import RasaSender
from .rasa_api import RasaClient

log = logging.getLogger(__name__)

PLAN_DECISION = "EXTERNAL_plan_decision"  # a plan request was approved or rejected
COMPLAINT_UPDATE = "EXTERNAL_complaint_update"  # a ticket was started, resolved, closed or extended


def _context(db: Session, rasa: RasaClient, via: str) -> Outreach:
    rules: BusinessRules = db.info.get("rules") or effective_rules(load_rules(get_settings().business_rules_path),
                                                                   get_settings())
    clock: Clock = db.info.get("clock") or Clock.from_settings(get_settings())
    return Outreach(rules, clock.now, RasaSender(rasa), holder=f"backend:{via}", clock_wall=clock.wall)


def _tell(db: Session, notice: OutreachNotice, ctx: Outreach, actor: str, via: str) -> bool:
    """Dispatch the recorded notice now if the rules allow; audit what happened."""
    db.commit()
    p = notice.payload
    detail = dict(reference=p["reference"], intent=kinds.INTENTS[notice.kind], channel=p["channel"], via=via)
    try:
        outcome = dispatcher.dispatch_one(db, ctx, notice.id)
    except Exception:  # the decision stands whatever the notice does; the scheduler picks the notice up
        db.rollback()
        log.exception("notice %s for %s: dispatch failed", detail["intent"], p["reference"])
        outcome = dispatcher.Outcome("error", "internal_error")
    if outcome.status == "sent":
        if outcome.channel and outcome.channel != p["channel"]:
            detail["sent_on"] = outcome.channel  # not the request's channel (e.g. WeChat's window was closed)
        audit.record(db, actor, "notice_sent", p["entity_type"], p["entity_id"], **detail)
        return True
    if outcome.status == "deferred" and not outcome.paused:
        log.info("notice %s for %s waits: %s", detail["intent"], p["reference"], outcome.rule)
        audit.record(db, actor, "notice_deferred", p["entity_type"], p["entity_id"], reason=outcome.rule,
                     until=outcome.until.isoformat() if outcome.until else None, **detail)
        return False
    # While staff hold the conversation Rasa stores the intent but the bot says nothing.
    error = "conversation_paused" if outcome.paused else outcome.rule
    log.warning("notice %s for %s not delivered: %s", detail["intent"], p["reference"], error)
    audit.record(db, actor, "notice_failed", p["entity_type"], p["entity_id"], error=error, **detail)
    return False


def plan_decided(db: Session, rasa: RasaClient, req: PlanRequest, actor: str, via: str) -> bool:
    db.commit()
    ctx = _context(db, rasa, via)
    return _tell(db, decisions.plan_decided(db, ctx, req), ctx, actor, via)


def complaint_updated(db: Session, rasa: RasaClient, ticket: ComplaintTicket, actor: str, via: str) -> bool:
    db.commit()
    ctx = _context(db, rasa, via)
    return _tell(db, decisions.complaint_updated(db, ctx, ticket), ctx, actor, via)
