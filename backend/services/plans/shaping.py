"""API shaping: a quote and a stored request as the API and the console show them, in business time."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.clock import local
from backend.core.config import BusinessRules
from backend.models import Channel, Loan, PlanRequest
from backend.models.plan import PLAN_REASON_LABELS, PLAN_STATUS_LABELS, PLAN_TYPE_LABELS
from backend.plan_schemas import PlanFiguresOut, PlanQuoteOut, PlanRefusalOut, PlanRequestOut

from .. import accounts
from .eligibility import Assessment


def quote_out(rules: BusinessRules, loan: Loan, a: Assessment) -> PlanQuoteOut:
    return PlanQuoteOut(
        loan_id=loan.id, plan_type=a.plan_type.value, months=a.months, as_of=a.pos.as_of, eligible=a.eligible,
        refusals=[PlanRefusalOut(code=e.code, message_zh=e.message_zh, message_en=e.message_en) for e in a.refusals],
        needs_staff_review=bool(a.staff_review_reasons), staff_review_reasons=a.staff_review_reasons,
        requires_supervisor=a.requires_supervisor, decision_days=rules.repayment_plans.decision_days,
        quote=a.plan.figures() if a.plan else None,
    )



def _local(dt: datetime | None, rules: BusinessRules) -> datetime | None:
    """In the business timezone (stored date-times come back aware: backend.models.base.AwareDateTime)."""
    return local(dt, ZoneInfo(rules.timezone))



def request_out(db: Session, rules: BusinessRules, req: PlanRequest) -> PlanRequestOut:
    loan_no = db.scalar(select(Loan.loan_no).where(Loan.id == req.loan_id))
    channel, _, external = req.conversation.partition(":")
    return PlanRequestOut(
        id=req.id, reference=req.reference, loan_id=req.loan_id, loan_no_last4=loan_no[-4:],
        customer_id=req.customer_id,
        conversation_masked=f"{channel}:{accounts._mask_external(Channel(channel), external)}",
        channel=req.channel.value, reason_category=req.reason_category.value,
        reason_label=PLAN_REASON_LABELS[req.reason_category], reason_text=req.reason_text,
        plan_type=req.plan_type.value, plan_type_label=PLAN_TYPE_LABELS[req.plan_type], months=req.months,
        amount=req.amount, status=req.status.value, status_label=PLAN_STATUS_LABELS[req.status],
        needs_staff_review=req.needs_staff_review, staff_review_reasons=list(req.staff_review_reasons or []),
        requires_supervisor=req.amount > rules.repayment_plans.supervisor_approval_above,
        submitted_on=req.submitted_on, decision_due_on=req.decision_due_on,
        created_at=_local(req.created_at, rules), reviewer=req.reviewer,
        review_started_at=_local(req.review_started_at, rules), decided_by=req.decided_by,
        decided_at=_local(req.decided_at, rules), decision_reason=req.decision_reason,
        withdrawn_at=_local(req.withdrawn_at, rules), quote=PlanFiguresOut.model_validate(req.quote),
        approved_quote=PlanFiguresOut.model_validate(req.approved_quote) if req.approved_quote else None,
    )
