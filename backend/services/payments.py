"""Recording a payment: allocation, status updates and the audit entry in one transaction."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules
from backend.core.errors import AppError
from backend.models import Loan, LoanStatus, Payment
from backend.schemas import PaymentIn

from . import audit
from .ledger import apply_payment, refresh_loan_status


def record_payment(db: Session, loan: Loan, data: PaymentIn, rules: BusinessRules, today: date, now: datetime, actor: str):
    paid_on = data.paid_on or today
    if paid_on > today:
        raise AppError(422, "date_in_future", texts.text("errors.payments.date_in_future"),
                       "The payment date cannot be in the future")
    if loan.status == LoanStatus.settled:
        raise AppError(409, "loan_settled", texts.text("errors.payments.loan_settled"), "The loan is already settled")
    if db.scalar(select(Payment.id).where(Payment.reference == data.reference)) is not None:
        raise AppError(409, "duplicate_reference", texts.text("errors.payments.duplicate_reference"),
                       "A payment with this reference is already recorded")
    allocation = apply_payment(loan, rules, data.amount, paid_on)
    refresh_loan_status(loan, today)  # statuses describe today, also when the payment is dated earlier
    payment = Payment(loan=loan, amount=data.amount, paid_on=paid_on, paid_at=now, method=data.method, reference=data.reference)
    db.add(payment)
    try:
        db.flush()
    except IntegrityError:  # the same reference posted concurrently
        raise AppError(409, "duplicate_reference", texts.text("errors.payments.duplicate_reference"),
                       "A payment with this reference is already recorded") from None
    audit.record(db, actor, "payment.recorded", "loan", loan.id, amount=str(data.amount),
                 reference=data.reference, allocation={k: str(v) for k, v in allocation.items()})
    return payment, allocation
