"""Early-settlement intents: after quoting the payoff for a date, the bot records that the borrower
intends to settle then. Rules and refusals: backend.services.settlements."""
from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import DB, ApiRoute, PathId, Rules, Scoped, Today
from backend.schemas import SettlementIntentIn, SettlementIntentOut
from backend.services import settlements

router = APIRouter(prefix="/api/v1", tags=["early settlement"], route_class=ApiRoute)
Caller = Scoped("settlements")


@router.post("/loans/{loan_id}/settlement-intents", response_model=SettlementIntentOut, status_code=201)
def record_intent(loan_id: PathId, data: SettlementIntentIn, db: DB, rules: Rules, clock: Today, caller: Caller):
    """Record the borrower's intent to settle on ``settle_on``, with the payoff the backend computes for
    that date (the same as GET /loans/{id}/payoff?date=). 404 not the customer's loan, 409 settled,
    422 a date in the past, too far ahead (config/business.yml early_settlement) or after maturity."""
    intent = settlements.record(db, rules, loan_id, data, clock.today(), clock.now(), caller)
    return settlements.intent_out(db, rules, intent)


@router.get("/customers/{customer_id}/settlement-intents", response_model=list[SettlementIntentOut])
def customer_intents(customer_id: PathId, db: DB, rules: Rules, _: Caller):
    """The customer's intents, newest first (replaced ones with status cancelled)."""
    return settlements.customer_intents(db, rules, customer_id)
