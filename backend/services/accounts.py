"""Read models for the bot: customers, identities and loan figures, masked and exact."""
from __future__ import annotations

from datetime import date
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

import texts
from backend.core.config import BusinessRules
from backend.core.errors import not_found
from backend.models import Channel, ChannelIdentity, Customer, Loan, LoanStatus
from backend.schemas import (
    CustomerOut, IdentityOut, InstalmentOut, LoanSummary, OverdueOut, PayoffOut,
)

from .ledger import LoanPosition, PayoffQuote, position
from .masking import mask_phone
from .money import ZERO


def customer_out(c: Customer) -> CustomerOut:
    return CustomerOut(
        id=c.id, name=c.name, phone_masked=mask_phone(c.phone), id_last4=c.id_last4,
        preferred_channel=c.preferred_channel.value, consent_reminders=c.consent_reminders,
        consent_marketing=c.consent_marketing, card_bank=c.card_bank, card_last4=c.card_last4,
        risk_tier=c.risk_tier, value_tier=c.value_tier,
    )


def _mask_external(channel: Channel, external_id: str) -> str:
    if channel == Channel.sms:
        return mask_phone(external_id)
    if channel == Channel.wechat:
        return external_id[:4] + "****" + external_id[-4:] if len(external_id) > 8 else "****"
    return external_id


def get_identity(db: Session, channel: str, external_id: str) -> IdentityOut:
    try:
        ch = Channel(channel)
    except ValueError:
        raise not_found(texts.text("errors.things.channel"), "Channel") from None
    ident = db.scalar(
        select(ChannelIdentity).where(ChannelIdentity.channel == ch, ChannelIdentity.external_id == external_id)
    )
    if ident is None:
        raise not_found(texts.text("errors.things.channel_identity"), "Channel identity")
    return IdentityOut(
        channel=ch.value, external_id_masked=_mask_external(ch, external_id), customer_id=ident.customer_id,
        verified=ident.verified, status=ident.status.value, opted_out=bool(ident.opted_out),
        last_inbound_at=ident.last_inbound_at,
        customer=customer_out(ident.customer) if ident.customer else None,
    )


def get_customer(db: Session, customer_id: int) -> Customer:
    customer = db.get(Customer, customer_id)
    if customer is None:
        raise not_found(texts.text("errors.things.customer"), "Customer")
    return customer


def get_loan(db: Session, loan_id: int) -> Loan:
    loan = db.scalar(
        select(Loan).where(Loan.id == loan_id).options(selectinload(Loan.instalments), selectinload(Loan.payments))
    )
    if loan is None:
        raise not_found(texts.text("errors.things.loan"), "Loan")
    return loan


def loans_of(db: Session, customer_id: int) -> list[Loan]:
    get_customer(db, customer_id)
    return list(db.scalars(
        select(Loan).where(Loan.customer_id == customer_id).order_by(Loan.id)
        .options(selectinload(Loan.instalments))
    ))


def loan_summary(loan: Loan, rules: BusinessRules, as_of: date) -> LoanSummary:
    pos = position(loan, rules, as_of)
    nxt = pos.next_row
    return LoanSummary(
        id=loan.id, loan_no_last4=loan.loan_no[-4:], product=loan.product,
        product_name=rules.products[loan.product].name, principal=loan.principal,
        annual_rate=loan.annual_rate, term_months=loan.term_months, start_date=loan.start_date,
        status=_current_status(loan, pos), as_of=as_of, outstanding_principal=pos.outstanding_principal,
        outstanding_interest=sum((r.unpaid_interest for r in pos.rows), ZERO),
        outstanding_fees=sum((r.unpaid_fee for r in pos.rows), ZERO),
        total_outstanding=pos.total_outstanding, amount_due=pos.amount_due,
        next_due_date=nxt.instalment.due_date if nxt else None,
        next_instalment_amount=nxt.total_due if nxt else None,
        overdue_amount=pos.overdue_amount, days_past_due=pos.days_past_due,
        penalty_interest=pos.penalty_interest, instalments_remaining=len(pos.open_rows),
        settled_on=settled_on(loan),
    )


def settled_on(loan: Loan) -> date | None:
    """The day a settled loan was paid off: the stored date (ledger.refresh_loan_status sets it when the
    last instalment is paid), else the latest day an instalment was settled, else the last payment's day."""
    if loan.status != LoanStatus.settled:
        return None
    if loan.settled_on is not None:
        return loan.settled_on
    days = [i.settled_on for i in loan.instalments if i.settled_on]
    if days:
        return max(days)
    return max((p.paid_on for p in loan.payments), default=None)


def _current_status(loan: Loan, pos: LoanPosition) -> str:
    """The stored status is refreshed daily; between runs, arrears as of today decide."""
    if loan.status in (LoanStatus.active, LoanStatus.overdue):
        return LoanStatus.overdue.value if pos.days_past_due > 0 else LoanStatus.active.value
    return loan.status.value


def schedule(loan: Loan, rules: BusinessRules, as_of: date) -> list[InstalmentOut]:
    pos: LoanPosition = position(loan, rules, as_of)
    out = []
    for r in pos.rows:
        i = r.instalment
        paid = i.paid_principal + i.paid_interest + i.paid_fee + i.paid_penalty
        out.append(InstalmentOut(
            seq=i.seq, due_date=i.due_date, principal=i.principal, interest=i.interest, fee=i.fee,
            total=i.principal + i.interest + i.fee, paid_amount=paid, penalty_interest=r.penalty_due,
            amount_outstanding=r.total_due, days_past_due=r.days_past_due, status=i.status.value,
        ))
    return out


def overdue(loan: Loan, rules: BusinessRules, as_of: date) -> OverdueOut:
    pos = position(loan, rules, as_of)
    rows = pos.overdue_rows
    return OverdueOut(
        loan_id=loan.id, as_of=as_of, is_overdue=bool(rows), days_past_due=pos.days_past_due,
        overdue_instalments=len(rows),
        overdue_principal=sum((r.unpaid_principal for r in rows), ZERO),
        overdue_interest=sum((r.unpaid_interest + r.unpaid_fee for r in rows), ZERO),
        penalty_interest=sum((r.penalty_due for r in rows), ZERO),
        overdue_amount=pos.overdue_amount,
    )


def payoff_out(q: PayoffQuote) -> PayoffOut:
    return PayoffOut(
        loan_id=q.loan.id, settle_on=q.settle_on, principal=q.principal, interest=q.interest,
        penalty_interest=q.penalty_interest, fees=q.fees, early_settlement_fee=q.early_settlement_fee,
        total=q.total,
    )

