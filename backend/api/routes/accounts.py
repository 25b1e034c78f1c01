"""Read API used by the bot's actions: identities, customers, loans and their figures."""
from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query

from backend.api.deps import DB, ApiRoute, PathId, Rules, Scoped, Today
from backend.schemas import (
    CustomerOut, IdentityOut, InstalmentOut, LoanSummary, OverdueOut, PaymentOut, PayoffOut,
)
from backend.services import accounts
from backend.services.ledger import payoff_quote

router = APIRouter(prefix="/api/v1", tags=["accounts"], route_class=ApiRoute)
Caller = Scoped("accounts:read")
IdentityReader = Scoped("identities:read")

AsOf = Query(None, description="Business date (Asia/Shanghai) to compute figures for; default today")


def _as_of(clock, as_of: date | None) -> date:
    return as_of or clock.today()


@router.get("/identities/{channel}/{external_id}", response_model=IdentityOut)
def identity(channel: str, external_id: str, db: DB, _: IdentityReader) -> IdentityOut:
    """Who is behind a channel identity (wechat openid, sms phone, web account), and is it verified."""
    return accounts.get_identity(db, channel, external_id)


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def customer(customer_id: PathId, db: DB, _: Caller) -> CustomerOut:
    return accounts.customer_out(accounts.get_customer(db, customer_id))


@router.get("/customers/{customer_id}/loans", response_model=list[LoanSummary])
def customer_loans(customer_id: PathId, db: DB, rules: Rules, clock: Today, _: Caller, as_of: date | None = AsOf):
    day = _as_of(clock, as_of)
    return [accounts.loan_summary(loan, rules, day) for loan in accounts.loans_of(db, customer_id)]


@router.get("/loans/{loan_id}", response_model=LoanSummary)
def loan(loan_id: PathId, db: DB, rules: Rules, clock: Today, _: Caller, as_of: date | None = AsOf):
    """Outstanding amounts, the current amount due and the next due date."""
    return accounts.loan_summary(accounts.get_loan(db, loan_id), rules, _as_of(clock, as_of))


@router.get("/loans/{loan_id}/schedule", response_model=list[InstalmentOut])
def loan_schedule(loan_id: PathId, db: DB, rules: Rules, clock: Today, _: Caller, as_of: date | None = AsOf):
    return accounts.schedule(accounts.get_loan(db, loan_id), rules, _as_of(clock, as_of))


@router.get("/loans/{loan_id}/payments", response_model=list[PaymentOut])
def loan_payments(loan_id: PathId, db: DB, _: Caller):
    loan_ = accounts.get_loan(db, loan_id)
    return [PaymentOut.model_validate(p) for p in reversed(loan_.payments)]


@router.get("/loans/{loan_id}/overdue", response_model=OverdueOut)
def loan_overdue(loan_id: PathId, db: DB, rules: Rules, clock: Today, _: Caller, as_of: date | None = AsOf):
    """Overdue status with days past due and penalty interest."""
    return accounts.overdue(accounts.get_loan(db, loan_id), rules, _as_of(clock, as_of))


@router.get("/loans/{loan_id}/payoff", response_model=PayoffOut)
def loan_payoff(
    loan_id: PathId, db: DB, rules: Rules, clock: Today, _: Caller,
    settle_on: date | None = Query(None, alias="date", description="Settlement date; default today"),
):
    """Early settlement quote for a date (see backend.services.ledger.payoff_quote)."""
    today = clock.today()
    return accounts.payoff_out(payoff_quote(accounts.get_loan(db, loan_id), rules, today, settle_on or today))

