"""Early-settlement intents: the date a borrower says they will pay a loan off, with the payoff for it.

The amount is always computed here (ledger.payoff_quote: the figure GET /loans/{id}/payoff gives
for that date), never taken from the bot. Refusals: not the customer's loan (404), a settled loan
(409), a date in the past, more than early_settlement.intent_max_days_ahead days away or after the
loan's last due date (422). A newer intent for a loan replaces the earlier one (status cancelled),
so staff see one date to expect per loan.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules
from backend.core.errors import AppError, not_found
from backend.models import Channel, Loan, SettlementIntent, SettlementIntentStatus
from backend.schemas import PayoffOut, SettlementIntentIn, SettlementIntentOut

from . import accounts, audit
from .ledger import payoff_quote
from .plans import _local


def _too_far(limit: int, latest: date) -> AppError:
    return AppError(422, "date_too_far",
                    texts.text("errors.settlements.date_too_far", limit=limit, latest=latest),
                    f"The settlement date must be within {limit} days (by {latest:%Y-%m-%d})")


def record(db: Session, rules: BusinessRules, loan_id: int, data: SettlementIntentIn, today: date, now: datetime,
           actor: str) -> SettlementIntent:
    """Store the intent with the payoff recomputed for its date; refusals write nothing."""
    accounts.get_customer(db, data.customer_id)
    loan = accounts.get_loan(db, loan_id)
    if loan.customer_id != data.customer_id:
        raise not_found(texts.text("errors.things.customer_loan"), "Loan of this customer")
    quote = accounts.payoff_out(payoff_quote(loan, rules, today, data.settle_on))  # settled, past, after maturity
    limit = rules.early_settlement.intent_max_days_ahead
    if data.settle_on > today + timedelta(days=limit):
        raise _too_far(limit, today + timedelta(days=limit))
    replaced = list(db.scalars(select(SettlementIntent.id).where(
        SettlementIntent.loan_id == loan.id, SettlementIntent.status == SettlementIntentStatus.recorded)))
    if replaced:
        db.execute(update(SettlementIntent).where(SettlementIntent.id.in_(replaced))
                   .values(status=SettlementIntentStatus.cancelled).execution_options(synchronize_session=False))
    intent = SettlementIntent(
        loan_id=loan.id, customer_id=data.customer_id, conversation=data.conversation, channel=Channel(data.channel),
        settle_on=data.settle_on, quoted_total=quote.total, quote=quote.model_dump(mode="json"), quoted_on=today,
        status=SettlementIntentStatus.recorded, created_at=_local(now, rules))
    db.add(intent)
    db.flush()
    audit.record(db, actor, "settlement_intent.recorded", "settlement_intent", intent.id, loan_id=loan.id,
                 customer_id=data.customer_id, settle_on=data.settle_on.isoformat(), total=str(quote.total),
                 channel=data.channel, replaced=replaced)
    return intent


def intent_out(db: Session, rules: BusinessRules, intent: SettlementIntent) -> SettlementIntentOut:
    loan_no = db.scalar(select(Loan.loan_no).where(Loan.id == intent.loan_id))
    return SettlementIntentOut(
        id=intent.id, loan_id=intent.loan_id, loan_no_last4=loan_no[-4:], customer_id=intent.customer_id,
        channel=intent.channel.value, status=intent.status.value, settle_on=intent.settle_on,
        total=intent.quoted_total, quote=PayoffOut.model_validate(intent.quote), quoted_on=intent.quoted_on,
        created_at=_local(intent.created_at, rules))


def of_customer(db: Session, customer_id: int, recorded_only: bool = False) -> list[SettlementIntent]:
    """The customer's intents, newest first."""
    stmt = select(SettlementIntent).where(SettlementIntent.customer_id == customer_id)
    if recorded_only:
        stmt = stmt.where(SettlementIntent.status == SettlementIntentStatus.recorded)
    return list(db.scalars(stmt.order_by(SettlementIntent.created_at.desc(), SettlementIntent.id.desc())))


def customer_intents(db: Session, rules: BusinessRules, customer_id: int) -> list[SettlementIntentOut]:
    accounts.get_customer(db, customer_id)
    return [intent_out(db, rules, i) for i in of_customer(db, customer_id)]
