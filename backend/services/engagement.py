"""Conversation outcomes the backend records: wrong person, unsubscribe / resubscribe, promises to pay, sessions."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules
from backend.core.errors import AppError
from backend.models import (
    Channel, ChannelIdentity, ConversationSession, Customer, IdentityStatus, Loan, LoanStatus, PromiseToPay,
)

from . import accounts, audit, channels
from .ledger import position
from .money import q2


def mark_wrong_person(db: Session, channel: str, external_id: str, actor: str) -> ChannelIdentity:
    """The person on this channel is not the borrower: never disclose anything to it again."""
    ident = channels.identity(db, channel, external_id)
    ident.status = IdentityStatus.wrong_person
    ident.verified = False
    db.flush()
    audit.record(db, actor, "identity.wrong_person", "channel_identity", ident.id, channel=channel)
    return ident


def unsubscribe(db: Session, customer: Customer, actor: str) -> None:
    customer.consent_reminders = False
    customer.consent_marketing = False
    audit.record(db, actor, "customer.unsubscribed", "customer", customer.id)


def resubscribe(db: Session, customer: Customer, actor: str) -> None:
    """The borrower wants automated reminders again (「恢复提醒」): reminders only. Marketing consent,
    withdrawn by an unsubscribe as well, is not given back by asking for reminders."""
    was = customer.consent_reminders
    customer.consent_reminders = True
    audit.record(db, actor, "customer.resubscribed", "customer", customer.id, was_subscribed=was)


def record_promise(db: Session, rules: BusinessRules, loan: Loan, promised_date: date, amount: Decimal | None,
                   channel: str, today: date, actor: str, now: datetime | None = None) -> PromiseToPay:
    if loan.status == LoanStatus.settled:
        raise AppError(409, "loan_settled", texts.text("errors.promises.loan_settled"), "The loan is already settled")
    if promised_date < today:
        raise AppError(422, "date_in_past", texts.text("errors.promises.date_in_past"),
                       "The promised date cannot be in the past")
    if promised_date > today + timedelta(days=rules.promise_max_days_ahead):
        raise AppError(422, "date_too_far",
                       texts.text("errors.promises.date_too_far", days=rules.promise_max_days_ahead),
                       f"The promised date must be within {rules.promise_max_days_ahead} days")
    pos = position(loan, rules, promised_date)
    amount = q2(amount) if amount is not None else pos.amount_due
    if amount <= 0 or amount > pos.total_outstanding:
        raise AppError(422, "amount_out_of_range", texts.text("errors.promises.amount_out_of_range"),
                       "The amount must be positive and not more than the outstanding total")
    # created_at in the business timezone (the database default would be UTC wall time on SQLite).
    promise = PromiseToPay(customer_id=loan.customer_id, loan_id=loan.id, promised_date=promised_date,
                           amount=amount, channel=channel, **({"created_at": now} if now else {}))
    db.add(promise)
    db.flush()
    audit.record(db, actor, "promise.recorded", "loan", loan.id, promised_date=promised_date.isoformat(), amount=str(amount))
    return promise


def record_session(db: Session, conversation: str, channel: str, customer_id: int | None, now: datetime) -> None:
    """One row per conversation session (action_session_start): the dashboard counts these."""
    if customer_id is not None:
        accounts.get_customer(db, customer_id)
    db.add(ConversationSession(conversation=conversation, channel=Channel(channel), customer_id=customer_id,
                               started_at=now))
