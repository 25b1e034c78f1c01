"""Telling the borrower, on their own channel, that staff decided on their request or complaint.

A decision becomes an outreach notice (kind plan_decision / complaint_update: service cap, contact
window; backend.services.outreach) and its message in the outbox, worded now by the backend from the
decided record (backend.services.outreach.render: the same words the bot uses for the status), both
written IN THE DECISION'S TRANSACTION: the request commits the decision and what will be said about
it together (get_db commits once per request), or neither. No request waits on Rasa: the backend's
outbox worker (backend.services.outreach.worker) delivers it within a second or so through Rasa's
HTTP API, as a bot message on the borrower's channel that the tracker records.

Inside the contact window the notice goes out at once; otherwise (a decision at 22:00 business time:
the app's clock, which OUTREACH_DEMO_TIME shifts for demos and end-to-end runs, backend.core.clock) it
waits for the window and the worker or the scheduler sends it then. A notice that cannot be delivered
(Rasa down or answering an error, the conversation paused for staff) never undoes the decision: it is
logged, audited (notice_failed, by the staff member who decided) and retried
(backend.services.outreach.dispatcher).

The request's session carries the app's rules and clock (backend.api.deps.get_db puts them in
``db.info``), so the routes call these functions with the session.
"""
from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from backend.core.clock import Clock, local
from backend.core.config import BusinessRules, effective_rules, get_settings, load_rules
from backend.models import ComplaintTicket, OutreachNotice, PlanRequest

from . import audit
from .outreach import decisions, kinds, outbox, render
from .outreach.context import Outreach
from .rasa_api import RasaClient

log = logging.getLogger(__name__)


def _context(db: Session) -> Outreach:
    rules: BusinessRules = db.info.get("rules") or effective_rules(load_rules(get_settings().business_rules_path),
                                                                   get_settings())
    clock: Clock = db.info.get("clock") or Clock.from_settings(get_settings())
    return Outreach(rules, clock.now, sender=None, clock_wall=clock.wall, clock_today=clock.today)


def _queue(db: Session, ctx: Outreach, notice: OutreachNotice, text: str | None, actor: str,
           via: str) -> OutreachNotice:
    """Save the message with the notice; a notice that must wait for the contact window is audited
    as deferred now (the worker audits what happens to one that is due at once)."""
    if not text or outbox.of_notice(db, notice.id) is not None:
        return notice
    p = notice.payload
    outbox.queue(db, notice, p["conversation"], p["channel"], text, [], ctx.now())
    until = local(notice.next_attempt_at, ctx.tz)
    if until > ctx.now():
        intent = kinds.INTENTS[notice.kind]
        log.info("notice %s for %s waits: %s", intent, p["reference"], "window")
        audit.record(db, actor, "notice_deferred", p["entity_type"], p["entity_id"], reason="window",
                     until=until.isoformat(), reference=p["reference"], intent=intent, channel=p["channel"], via=via)
    return notice


def plan_decided(db: Session, rasa: RasaClient | None, req: PlanRequest, actor: str, via: str) -> OutreachNotice:
    """Queue the decision's notice in the caller's transaction (``rasa``: unused, delivery is the worker's)."""
    ctx = _context(db)
    notice = decisions.plan_decided(db, ctx, req, actor, via)
    return _queue(db, ctx, notice, render.plan_decided(db, ctx.rules, req), actor, via)


def complaint_updated(db: Session, rasa: RasaClient | None, ticket: ComplaintTicket, actor: str,
                      via: str) -> OutreachNotice:
    ctx = _context(db)
    notice = decisions.complaint_updated(db, ctx, ticket, actor, via)
    return _queue(db, ctx, notice, render.complaint_updated(db, ctx.rules, ticket), actor, via)
