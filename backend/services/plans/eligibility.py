"""Eligibility: every rule a request must meet, the staff-review flag and the plan when eligible."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules
from backend.core.errors import AppError
from backend.models import Loan, LoanStatus, PlanRequest, PlanStatus, PlanType
from backend.models.enums import PLAN_LIVE
from backend.models.plan import PLAN_TYPE_LABELS

from ..ledger import LoanPosition, position
from ..money import ZERO, add_months
from .figures import Plan, deferral_plan, instalment_plan, upcoming_rows, waiver_plan

LIVE = PLAN_LIVE



@dataclass
class Assessment:
    plan_type: PlanType
    months: int | None
    pos: LoanPosition
    refusals: list[AppError]
    staff_review_reasons: list[str]
    plan: Plan | None
    requires_supervisor: bool

    @property
    def eligible(self) -> bool:
        return not self.refusals


def _refuse(status: int, code: str, zh: str, en: str) -> AppError:
    return AppError(status, code, zh, en)


def _approved_recently(db: Session, rules: BusinessRules, loan_id: int, as_of: date) -> list[PlanRequest]:
    since = add_months(as_of, -rules.repayment_plans.approved_plans_window_months)
    return list(db.scalars(select(PlanRequest).where(
        PlanRequest.loan_id == loan_id, PlanRequest.status == PlanStatus.approved, PlanRequest.decided_on > since)
        .order_by(PlanRequest.decided_on.desc(), PlanRequest.id.desc())))


def _open_request(db: Session, loan_id: int, exclude_id: int | None = None) -> PlanRequest | None:
    stmt = select(PlanRequest).where(PlanRequest.loan_id == loan_id, PlanRequest.status.in_(LIVE))
    if exclude_id is not None:
        stmt = stmt.where(PlanRequest.id != exclude_id)
    return db.scalars(stmt.order_by(PlanRequest.id)).first()


def parse_plan_type(value: str) -> PlanType:
    try:
        return PlanType(value)
    except ValueError:
        raise AppError(422, "invalid_plan_type", texts.text("errors.plans.invalid_plan_type"),
                       f"Unknown plan type {value!r}; use instalment, deferral or waiver") from None


def assess(db: Session, rules: BusinessRules, loan: Loan, plan_type: PlanType, months: int | None, as_of: date,
           exclude_request_id: int | None = None) -> Assessment:
    """Every eligibility rule for the plan, the staff-review flag and, when eligible, the plan. Writes nothing."""
    pr = rules.repayment_plans
    months = None if plan_type == PlanType.waiver else months  # a waiver has no months
    pos = position(loan, rules, as_of)
    refusals: list[AppError] = []
    if plan_type.value not in pr.plan_types:
        refusals.append(_refuse(422, "plan_type_not_offered",
                                texts.text("errors.plans.plan_type_not_offered", plan_type=PLAN_TYPE_LABELS[plan_type]),
                                f"{plan_type.value} plans are not offered"))
    settled = loan.status == LoanStatus.settled or pos.total_outstanding == ZERO
    if settled:
        refusals.append(_refuse(409, "loan_settled", texts.text("errors.plans.loan_settled"),
                                "The loan is settled; no repayment plan is needed"))
    pending = _open_request(db, loan.id, exclude_request_id)
    if pending is not None:
        refusals.append(_refuse(409, "request_pending",
                                texts.text("errors.plans.request_pending", reference=pending.reference),
                                f"The loan already has an open request ({pending.reference}); wait for the decision "
                                f"or withdraw it first"))
    recent = _approved_recently(db, rules, loan.id, as_of)
    if len(recent) >= pr.max_approved_in_window:
        last = recent[0].decided_on
        refusals.append(_refuse(409, "recent_plan_approved",
                                texts.text("errors.plans.recent_plan_approved",
                                           months=pr.approved_plans_window_months, last=last),
                                f"A repayment plan was approved for this loan within the last "
                                f"{pr.approved_plans_window_months} months ({last:%Y-%m-%d})"))

    plan: Plan | None = None
    if plan_type == PlanType.instalment:
        if months is None:
            refusals.append(_refuse(422, "months_required", texts.text("errors.plans.instalment_months_required"),
                                    "Say how many instalments"))
        elif not pr.instalment_min_months <= months <= pr.instalment_max_months:
            refusals.append(_refuse(
                422, "months_out_of_range",
                texts.text("errors.plans.instalment_months_out_of_range",
                           low=pr.instalment_min_months, high=pr.instalment_max_months),
                f"The number of instalments must be {pr.instalment_min_months} to {pr.instalment_max_months}"))
        elif not settled:
            plan = instalment_plan(loan, pos, months)
    elif plan_type == PlanType.deferral:
        upcoming = len(upcoming_rows(pos))
        if months is None:
            refusals.append(_refuse(422, "months_required", texts.text("errors.plans.deferral_months_required"),
                                    "Say how many instalments to defer"))
        elif not 1 <= months <= pr.defer_max_instalments:
            refusals.append(_refuse(422, "months_out_of_range",
                                    texts.text("errors.plans.deferral_months_out_of_range",
                                               high=pr.defer_max_instalments),
                                    f"Between 1 and {pr.defer_max_instalments} instalments can be deferred"))
        elif not settled and months > upcoming:
            refusals.append(_refuse(422, "not_enough_instalments",
                                    texts.text("errors.plans.not_enough_instalments", upcoming=upcoming, months=months),
                                    f"Only {upcoming} instalments are still to come; {months} cannot be deferred"))
        elif not settled:
            plan = deferral_plan(loan, pos, months)
    elif not settled:
        plan = waiver_plan(loan, pos, rules)
        if plan.amount == ZERO:
            refusals.append(_refuse(422, "nothing_to_waive", texts.text("errors.plans.nothing_to_waive"),
                                    "There is no penalty interest or fee to waive"))
    if plan is not None and plan.total_term_months is not None and plan.total_term_months > pr.max_total_term_months:
        refusals.append(_refuse(
            422, "term_too_long",
            texts.text("errors.plans.term_too_long", term=plan.total_term_months, limit=pr.max_total_term_months),
            f"The total term would be {plan.total_term_months} months, over the {pr.max_total_term_months}-month "
            f"maximum"))

    th = pr.staff_review_thresholds
    review = []
    if pos.outstanding_principal > th.outstanding_principal_above:
        review.append("outstanding_principal_above")
    if pos.days_past_due > th.days_past_due_above:
        review.append("days_past_due_above")
    supervisor = plan is not None and plan.amount > pr.supervisor_approval_above
    return Assessment(plan_type, months, pos, refusals, review, plan if not refusals else None, supervisor)
