"""Repayment-plan (hardship) requests: the bot quotes, files and withdraws them. Staff review and
decide in the console only (backend.api.routes.console), as the signed-in staff member with the role of
their account; no API key can. Formulas and rules: backend.services.plans.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import DB, ApiRoute, PathId, QueryId, Rules, Scoped, Today
from backend.models import PlanStatus, PlanType
from backend.plan_schemas import (
    PlanQuoteOut, PlanRequestIn, PlanRequestOut, PlanStatusName, PlanTypeName, PlanWithdrawIn,
)
from backend.services import plans

router = APIRouter(prefix="/api/v1", tags=["repayment plans"], route_class=ApiRoute)
Caller = Scoped("plans:bot")


@router.get("/loans/{loan_id}/plan-quote", response_model=PlanQuoteOut)
def plan_quote(loan_id: PathId, db: DB, rules: Rules, clock: Today, _: Caller,
               plan_type: Annotated[PlanTypeName, Query(description="instalment 分期, deferral 延期 or waiver 减免")],
               months: Annotated[int | None, Query(ge=1, le=600, description="instalments (分期) or "
                                                   "instalments to defer (延期); not for a waiver")] = None):
    """An indicative plan as of today with its eligibility (every refusal reason) and whether it goes to
    staff review. Nothing is stored."""
    return plans.quote(db, rules, loan_id, plan_type, months, clock.today())


@router.post("/plan-requests", response_model=PlanRequestOut, status_code=201)
def submit(data: PlanRequestIn, db: DB, rules: Rules, clock: Today, caller: Caller):
    """File the plan the borrower confirmed: eligibility again, then a reference (RP + date + number)."""
    req = plans.submit(db, rules, data, clock.today(), clock.now(), caller)
    return plans.request_out(db, rules, req)


@router.get("/plan-requests", response_model=list[PlanRequestOut])
def staff_list(db: DB, rules: Rules, _: Scoped("staff:read"),
               status: Annotated[list[PlanStatusName] | None, Query()] = None,
               plan_type: PlanTypeName | None = None, needs_staff_review: bool | None = None,
               loan_id: QueryId = None):
    """Requests for staff, oldest first; the open ones (submitted, under review) unless ?status= is given."""
    return plans.staff_list(db, rules, [PlanStatus(s) for s in status] if status else None,
                            PlanType(plan_type) if plan_type else None, needs_staff_review, loan_id)


@router.get("/plan-requests/{reference}", response_model=PlanRequestOut)
def get_request(reference: str, db: DB, rules: Rules, _: Caller):
    return plans.request_out(db, rules, plans.get_request(db, reference))


@router.get("/customers/{customer_id}/plan-requests", response_model=list[PlanRequestOut])
def customer_requests(customer_id: PathId, db: DB, rules: Rules, _: Caller):
    """The customer's requests, newest first (「我的申请怎么样了」: the first one)."""
    return plans.customer_requests(db, rules, customer_id)


@router.post("/plan-requests/{reference}/withdraw", response_model=PlanRequestOut)
def withdraw(reference: str, data: PlanWithdrawIn, db: DB, rules: Rules, clock: Today, caller: Caller):
    """The borrower withdraws their request (only while submitted or under review)."""
    req = plans.withdraw(db, rules, reference, data.customer_id, clock.now(), caller)
    return plans.request_out(db, rules, req)
