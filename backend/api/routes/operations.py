"""Writes from other services: payments from the payment gateway, the daily segment job."""
from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import DB, ApiRoute, PathId, Rules, Scoped, Today
from backend.schemas import PaymentIn, PaymentOut, PaymentResult
from backend.services import accounts, audit, segments
from backend.services.payments import record_payment

router = APIRouter(prefix="/api/v1", tags=["operations"], route_class=ApiRoute)


@router.post("/loans/{loan_id}/payments", response_model=PaymentResult, status_code=201)
def post_payment(loan_id: PathId, data: PaymentIn, db: DB, rules: Rules, clock: Today,
                 caller: Scoped("payments:write")):
    loan = accounts.get_loan(db, loan_id)
    payment, allocation = record_payment(db, loan, data, rules, clock.today(), clock.now(), caller)
    return PaymentResult(
        payment=PaymentOut.model_validate(payment), allocation=allocation,
        loan=accounts.loan_summary(loan, rules, clock.today()),
    )


@router.post("/segments/recompute")
def recompute_segments(db: DB, rules: Rules, clock: Today, caller: Scoped("segments:recompute")) -> dict[str, int]:
    """Refresh loan statuses and every customer's risk and value tier (run daily by the scheduler)."""
    counts = segments.recompute_all(db, rules, clock.today(), clock.now())
    audit.record(db, caller, "segments.recomputed", "customer", "*", **counts)
    return counts
