"""Plan decisions and complaint updates as outreach notices (service kind, own cap, contact window).

The notice answers in the conversation the borrower used for the request or the complaint. Its
dedupe key names the decision: ``plan:<ref>:<status>:<audit id>``, ``complaint:<ref>:<event id>:<audit
id>``, where the audit id is the decision's row in the append-only audit log, written just before:
a decision is told at most once, and a reference issued again after records were deleted (the test
fixtures do that; SQLite then reuses ids too) is still a new decision. The payload names the staff
member and the way they decided (``actor``, ``via``): the notice's audit rows are theirs.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.clock import earliest_send
from backend.models import AuditLog, ComplaintEvent, ComplaintTicket, OutreachKind as K, OutreachNotice, PlanRequest

from .context import Outreach
from .planner import _row, insert_new


def record(db: Session, ctx: Outreach, kind: K, key: str, customer_id: int | None, loan_id: int | None,
           payload: dict) -> OutreachNotice:
    """Insert the notice (once per key) and return it, in the caller's transaction (not committed)."""
    now = ctx.now()
    start = earliest_send(ctx.cfg, ctx.tz, now)
    expires = now + timedelta(days=ctx.cfg.service_valid_days)
    insert_new(db, [_row(kind, key, customer_id, now.date(), start, expires, now, payload, loan_id)])
    return db.scalar(select(OutreachNotice).where(OutreachNotice.dedupe_key == key)
                     .execution_options(populate_existing=True))


def _decision_audit_id(db: Session, entity_type: str, entity_id: int) -> int:
    return db.scalar(select(func.max(AuditLog.id)).where(
        AuditLog.entity_type == entity_type, AuditLog.entity_id == str(entity_id))) or 0


def plan_decided(db: Session, ctx: Outreach, req: PlanRequest, actor: str, via: str) -> OutreachNotice:
    key = f"plan:{req.reference}:{req.status.value}:{_decision_audit_id(db, 'plan_request', req.id)}"
    return record(db, ctx, K.plan_decision, key, req.customer_id, req.loan_id, {
        "reference": req.reference, "status": req.status.value, "conversation": req.conversation,
        "channel": req.channel.value, "entity_type": "plan_request", "entity_id": req.id,
        "actor": actor, "via": via})


def complaint_updated(db: Session, ctx: Outreach, ticket: ComplaintTicket, actor: str, via: str) -> OutreachNotice:
    event_id = db.scalar(select(func.max(ComplaintEvent.id)).where(ComplaintEvent.ticket_id == ticket.id))
    key = f"complaint:{ticket.reference}:{event_id}:{_decision_audit_id(db, 'complaint_ticket', ticket.id)}"
    return record(db, ctx, K.complaint_update, key, ticket.customer_id, None, {
        "reference": ticket.reference, "status": ticket.status.value, "event_id": event_id,
        "conversation": ticket.conversation, "channel": ticket.channel.value, "entity_type": "complaint_ticket",
        "entity_id": ticket.id, "actor": actor, "via": via})
