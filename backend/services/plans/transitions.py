"""The request's state machine: submitted -> under_review -> approved / rejected, or withdrawn. Each change
is a conditional UPDATE (records.transition) and writes an audit row."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules
from backend.core.errors import AppError, not_found
from backend.models import PlanRequest, PlanStatus
from backend.models.plan import PLAN_STATUS_LABELS
from backend.plan_schemas import PlanFiguresOut

from .. import accounts, audit, records
from ..masking import mask_numbers
from .apply import apply_plan
from .eligibility import LIVE, assess
from .requests import get_request
from .shaping import _local

_transition = records.transition


def _ended(req: PlanRequest) -> AppError:
    label = PLAN_STATUS_LABELS[req.status]
    return AppError(409, "request_ended", texts.text("errors.plans.request_ended", status=label),
                    f"The request has already ended ({req.status.value})")


def withdraw(db: Session, rules: BusinessRules, reference: str, customer_id: int, now: datetime,
             actor: str) -> PlanRequest:
    """The borrower withdraws their request while it is submitted or under review."""
    req = get_request(db, reference)
    if req.customer_id != customer_id:
        raise not_found(texts.text("errors.things.plan_request"), "Repayment-plan request")
    before = req.status
    if not _transition(db, req, PlanRequest.status.in_(LIVE), status=PlanStatus.withdrawn,
                       withdrawn_at=_local(now, rules)):
        raise _ended(req)
    audit.record(db, actor, "plan_request.withdrawn", "plan_request", req.id, reference=req.reference,
                 from_status=before.value, customer_id=customer_id)
    return req


def start_review(db: Session, rules: BusinessRules, reference: str, by: str, now: datetime, via: str) -> PlanRequest:
    req = get_request(db, reference)
    if not _transition(db, req, PlanRequest.status == PlanStatus.submitted, status=PlanStatus.under_review,
                       reviewer=by, review_started_at=_local(now, rules)):
        if req.status == PlanStatus.under_review:
            raise AppError(409, "already_under_review", texts.text("errors.plans.already_under_review"),
                           "The request is already under review")
        raise _ended(req)
    audit.record(db, by, "plan_request.review_started", "plan_request", req.id, reference=req.reference, via=via)
    return req


def _not_under_review(req: PlanRequest) -> AppError:
    if req.status == PlanStatus.submitted:
        return AppError(409, "not_under_review", texts.text("errors.plans.not_under_review"),
                        "Start the review before deciding")
    return _ended(req)


def _supervisor_required(rules: BusinessRules) -> AppError:
    limit = rules.repayment_plans.supervisor_approval_above
    return AppError(403, "supervisor_required", texts.text("errors.plans.supervisor_required", limit=limit),
                    f"Plans above {limit} yuan need a supervisor's approval")


def approve(db: Session, rules: BusinessRules, reference: str, by: str, role: str, note: str | None,
            today: date, now: datetime, via: str) -> PlanRequest:
    """Approve and apply the plan, recomputed for today (see the module docstring)."""
    req = get_request(db, reference)
    if req.status != PlanStatus.under_review:
        raise _not_under_review(req)
    limit = rules.repayment_plans.supervisor_approval_above
    if req.amount > limit and role != "supervisor":
        raise _supervisor_required(rules)
    loan = accounts.get_loan(db, req.loan_id)
    a = assess(db, rules, loan, req.plan_type, req.months, today, exclude_request_id=req.id)
    if a.refusals:
        first = a.refusals[0]
        raise AppError(409, first.code, texts.text("errors.plans.no_longer_eligible", reason=first.message_zh),
                       f"The request is no longer eligible: {first.message_en}")
    plan = a.plan
    if plan.amount > limit and role != "supervisor":
        raise _supervisor_required(rules)
    note = mask_numbers(note) if note and note.strip() else None
    if not _transition(db, req, PlanRequest.status == PlanStatus.under_review, status=PlanStatus.approved,
                       decided_by=by, decided_role=role, decided_at=_local(now, rules), decided_on=today,
                       decision_reason=note, approved_quote=plan.figures().model_dump(mode="json")):
        raise _not_under_review(req)
    replaced = apply_plan(db, rules, loan, plan)
    audit.record(db, by, "plan_request.approved", "plan_request", req.id, reference=req.reference,
                 loan_id=loan.id, plan_type=req.plan_type.value, months=req.months, role=role,
                 amount=str(plan.amount), quoted_amount=str(PlanFiguresOut.model_validate(req.quote).amount),
                 replaced_instalments=replaced, new_instalments=len(plan.rows), loan_status=loan.status.value,
                 via=via)
    return req


def reject(db: Session, rules: BusinessRules, reference: str, by: str, role: str, reason: str, today: date,
           now: datetime, via: str) -> PlanRequest:
    req = get_request(db, reference)
    if not reason.strip():
        raise AppError(422, "reason_required", texts.text("errors.plans.reason_required"), "A rejection needs a reason")
    reason = mask_numbers(reason)
    if not _transition(db, req, PlanRequest.status == PlanStatus.under_review, status=PlanStatus.rejected,
                       decided_by=by, decided_role=role, decided_at=_local(now, rules), decided_on=today,
                       decision_reason=reason):
        raise _not_under_review(req)
    audit.record(db, by, "plan_request.rejected", "plan_request", req.id, reference=req.reference,
                 loan_id=req.loan_id, role=role, via=via)
    return req
