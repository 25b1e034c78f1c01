"""Storing and reading requests: the quote (writes nothing), submission, the borrower's and staff's lists."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules
from backend.core.errors import AppError, not_found
from backend.models import Channel, PlanReason, PlanRequest, PlanStatus, PlanType
from backend.plan_schemas import PlanQuoteOut, PlanRequestIn, PlanRequestOut

from .. import accounts, audit, records
from ..masking import mask_numbers
from .eligibility import LIVE, assess, parse_plan_type
from .shaping import _local, quote_out, request_out

REFERENCE_TRIES = 5


def quote(db: Session, rules: BusinessRules, loan_id: int, plan_type: str, months: int | None,
          as_of: date) -> PlanQuoteOut:
    """The indicative plan and its eligibility; writes nothing."""
    loan = accounts.get_loan(db, loan_id)
    return quote_out(rules, loan, assess(db, rules, loan, parse_plan_type(plan_type), months, as_of))



def get_request(db: Session, reference: str) -> PlanRequest:
    req = db.scalar(select(PlanRequest).where(PlanRequest.reference == reference))
    if req is None:
        raise not_found(texts.text("errors.things.plan_request"), "Repayment-plan request")
    return req


def _next_reference(db: Session, day: date) -> str:
    return records.next_reference(db, PlanRequest.reference, "RP", day)



def submit(db: Session, rules: BusinessRules, data: PlanRequestIn, today: date, now: datetime,
           actor: str) -> PlanRequest:
    """Store the request the borrower confirmed; eligibility is checked again (refused with the first reason)."""
    accounts.get_customer(db, data.customer_id)
    loan = accounts.get_loan(db, data.loan_id)
    if loan.customer_id != data.customer_id:
        raise not_found(texts.text("errors.things.customer_loan"), "Loan of this customer")
    plan_type = PlanType(data.plan_type)
    months = None if plan_type == PlanType.waiver else data.months
    a = assess(db, rules, loan, plan_type, months, today)
    if a.refusals:
        raise a.refusals[0]
    now = _local(now, rules)
    figures = a.plan.figures()
    for _ in range(REFERENCE_TRIES):
        req = PlanRequest(
            reference=_next_reference(db, today), loan_id=loan.id, customer_id=data.customer_id,
            conversation=data.conversation, channel=Channel(data.channel),
            reason_category=PlanReason(data.reason_category),
            reason_text=mask_numbers(data.reason_text) if data.reason_text else None,
            plan_type=plan_type, months=months, amount=a.plan.amount, quote=figures.model_dump(mode="json"),
            status=PlanStatus.submitted, needs_staff_review=bool(a.staff_review_reasons),
            staff_review_reasons=a.staff_review_reasons, submitted_on=today,
            decision_due_on=today + timedelta(days=rules.repayment_plans.decision_days), created_at=now,
        )
        try:
            with db.begin_nested():
                db.add(req)
        except IntegrityError:
            continue  # the reference number was just taken by a concurrent request
        break
    else:
        raise AppError(409, "busy", texts.text("errors.busy"), "Could not number the request; try again")
    audit.record(db, actor, "plan_request.submitted", "plan_request", req.id, reference=req.reference,
                 loan_id=loan.id, customer_id=data.customer_id, plan_type=plan_type.value, months=months,
                 amount=str(req.amount), reason_category=data.reason_category,
                 needs_staff_review=req.needs_staff_review, channel=data.channel)
    return req


def customer_requests(db: Session, rules: BusinessRules, customer_id: int) -> list[PlanRequestOut]:
    """The customer's requests, newest first (「我的申请怎么样了」 is the first)."""
    accounts.get_customer(db, customer_id)
    reqs = db.scalars(select(PlanRequest).where(PlanRequest.customer_id == customer_id)
                      .order_by(PlanRequest.id.desc()))
    return [request_out(db, rules, r) for r in reqs]


def staff_list(db: Session, rules: BusinessRules, statuses: list[PlanStatus] | None = None,
               plan_type: PlanType | None = None, needs_staff_review: bool | None = None,
               loan_id: int | None = None) -> list[PlanRequestOut]:
    """Requests for staff, oldest first; the open ones (submitted, under review) unless statuses are given."""
    stmt = select(PlanRequest).where(PlanRequest.status.in_(statuses or LIVE))
    if plan_type is not None:
        stmt = stmt.where(PlanRequest.plan_type == plan_type)
    if needs_staff_review is not None:
        stmt = stmt.where(PlanRequest.needs_staff_review.is_(needs_staff_review))
    if loan_id is not None:
        stmt = stmt.where(PlanRequest.loan_id == loan_id)
    return [request_out(db, rules, r) for r in db.scalars(stmt.order_by(PlanRequest.id))]
