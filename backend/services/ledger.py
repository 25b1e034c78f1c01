"""Loan positions: what is owed, overdue, and what settles a loan, as of a given day.

All arithmetic goes through backend.services.money; this module only decides which amounts
apply to which instalment.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import texts
from backend.core.config import BusinessRules
from backend.core.errors import AppError
from backend.models import Instalment, InstalmentStatus, Loan, LoanStatus

from .money import ZERO, accrued_interest, add_months, penalty_interest, q2


@dataclass
class InstalmentPosition:
    instalment: Instalment
    unpaid_principal: Decimal
    unpaid_interest: Decimal
    unpaid_fee: Decimal
    penalty_due: Decimal
    days_past_due: int

    @property
    def total_due(self) -> Decimal:
        return self.unpaid_principal + self.unpaid_interest + self.unpaid_fee + self.penalty_due

    @property
    def settled(self) -> bool:
        return self.total_due == ZERO


@dataclass
class LoanPosition:
    loan: Loan
    as_of: date
    rows: list[InstalmentPosition] = field(default_factory=list)

    @property
    def open_rows(self) -> list[InstalmentPosition]:
        return [r for r in self.rows if not r.settled]

    @property
    def overdue_rows(self) -> list[InstalmentPosition]:
        return [r for r in self.open_rows if r.days_past_due > 0]

    @property
    def outstanding_principal(self) -> Decimal:
        return sum((r.unpaid_principal for r in self.rows), ZERO)

    @property
    def total_outstanding(self) -> Decimal:
        """Everything still to repay on the schedule, plus penalty interest to date."""
        return sum((r.total_due for r in self.rows), ZERO)

    @property
    def penalty_interest(self) -> Decimal:
        return sum((r.penalty_due for r in self.rows), ZERO)

    @property
    def overdue_amount(self) -> Decimal:
        return sum((r.total_due for r in self.overdue_rows), ZERO)

    @property
    def days_past_due(self) -> int:
        return max((r.days_past_due for r in self.overdue_rows), default=0)

    @property
    def next_row(self) -> InstalmentPosition | None:
        """The first unpaid instalment not yet overdue (due today or later)."""
        return next((r for r in self.open_rows if r.instalment.due_date >= self.as_of), None)

    @property
    def amount_due(self) -> Decimal:
        """What brings the loan up to date by the next due date: arrears plus the next instalment."""
        nxt = self.next_row
        return self.overdue_amount + (nxt.total_due if nxt else ZERO)


def _penalty_due(inst: Instalment, loan: Loan, rules: BusinessRules, as_of: date, unpaid_principal: Decimal) -> Decimal:
    booked = inst.penalty_charged - inst.paid_penalty
    since = inst.penalty_accrued_to or inst.due_date
    fresh = penalty_interest(
        unpaid_principal, loan.annual_rate, rules.penalty_rate_multiplier,
        rules.penalty_day_count_basis, (as_of - since).days,
    )
    return booked + fresh


def position(loan: Loan, rules: BusinessRules, as_of: date) -> LoanPosition:
    pos = LoanPosition(loan=loan, as_of=as_of)
    for inst in loan.instalments:
        unpaid_principal = inst.principal - inst.paid_principal
        unpaid_interest = inst.interest - inst.paid_interest
        unpaid_fee = inst.fee - inst.paid_fee
        open_ = unpaid_principal + unpaid_interest + unpaid_fee > 0
        dpd = (as_of - inst.due_date).days if open_ and inst.due_date < as_of else 0
        penalty = _penalty_due(inst, loan, rules, as_of, unpaid_principal) if dpd > 0 else (
            inst.penalty_charged - inst.paid_penalty
        )
        pos.rows.append(InstalmentPosition(inst, unpaid_principal, unpaid_interest, unpaid_fee, penalty, max(dpd, 0)))
    return pos


@dataclass
class PayoffQuote:
    loan: Loan
    settle_on: date
    principal: Decimal
    interest: Decimal
    penalty_interest: Decimal
    fees: Decimal
    early_settlement_fee: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.penalty_interest + self.fees + self.early_settlement_fee


def payoff_quote(loan: Loan, rules: BusinessRules, today: date, settle_on: date) -> PayoffQuote:
    """Amount that settles the loan on ``settle_on``.

    = all unpaid principal + interest, fees and penalty of instalments due on or before that day
    + interest accrued in the current period on the principal not yet due (money.accrued_interest)
    + the product's early settlement fee on the principal repaid ahead of schedule.
    """
    if loan.status == LoanStatus.settled:
        raise AppError(409, "loan_settled", texts.text("errors.ledger.loan_settled"), "The loan is already settled")
    if settle_on < today:
        raise AppError(422, "date_in_past", texts.text("errors.ledger.date_in_past"),
                       "The settlement date cannot be in the past")
    last_due = loan.instalments[-1].due_date
    if settle_on > last_due:
        raise AppError(422, "date_after_maturity", texts.text("errors.ledger.date_after_maturity"),
                       "The settlement date is after the last due date")

    pos = position(loan, rules, settle_on)
    due = [r for r in pos.rows if r.instalment.due_date <= settle_on]
    later = [r for r in pos.rows if r.instalment.due_date > settle_on]
    principal = sum((r.unpaid_principal for r in pos.rows), ZERO)
    interest = sum((r.unpaid_interest for r in due), ZERO)
    fees = sum((r.unpaid_fee for r in due), ZERO)
    penalty = sum((r.penalty_due for r in due), ZERO)

    early_principal = sum((r.unpaid_principal for r in later), ZERO)
    if later:
        current = later[0].instalment
        period_start = add_months(loan.start_date, current.seq - 1)
        # Capped at the instalment's scheduled interest; interest already paid towards it is not charged twice.
        accrued = accrued_interest(
            early_principal, loan.annual_rate, rules.penalty_day_count_basis,
            (settle_on - period_start).days, current.interest,
        )
        interest += max(accrued - current.paid_interest, ZERO)
    product = rules.products[loan.product]
    paid_count = sum(1 for r in pos.rows if r.settled)
    waived = product.early_settlement_fee_waived_after_instalments and paid_count >= product.early_settlement_fee_waived_after_instalments
    fee = ZERO if waived else q2(early_principal * product.early_settlement_fee_rate)
    return PayoffQuote(loan, settle_on, principal, interest, penalty, fees, fee)


def refresh_loan_status(loan: Loan, as_of: date) -> None:
    """Derive instalment and loan statuses from what is paid. A restructured loan keeps that status
    until its new schedule is paid in full, then it is settled like any other."""
    for inst in loan.instalments:
        unpaid = (inst.principal - inst.paid_principal) + (inst.interest - inst.paid_interest) + (inst.fee - inst.paid_fee)
        if unpaid == 0 and inst.penalty_charged == inst.paid_penalty:
            inst.status = InstalmentStatus.paid
        elif inst.due_date < as_of:
            inst.status = InstalmentStatus.overdue
        elif inst.paid_principal + inst.paid_interest + inst.paid_fee > 0:
            inst.status = InstalmentStatus.partial
        else:
            inst.status = InstalmentStatus.pending
    if all(i.status == InstalmentStatus.paid for i in loan.instalments):
        loan.status = LoanStatus.settled
        loan.settled_on = max((i.settled_on for i in loan.instalments if i.settled_on), default=as_of)
    elif loan.status == LoanStatus.restructured:
        return
    elif any(i.status == InstalmentStatus.overdue for i in loan.instalments):
        loan.status = LoanStatus.overdue
    else:
        loan.status = LoanStatus.active


def apply_payment(loan: Loan, rules: BusinessRules, amount: Decimal, paid_on: date) -> dict[str, Decimal]:
    """Allocate a payment oldest instalment first: penalty, fee, interest, then principal.

    Raises before touching anything if the amount exceeds what the schedule still holds.
    Returns the allocation by component.
    """
    amount = q2(amount)
    if amount <= 0:
        raise AppError(422, "amount_not_positive", texts.text("errors.ledger.amount_not_positive"),
                       "The amount must be positive")
    pos = position(loan, rules, paid_on)
    if amount > pos.total_outstanding:
        raise AppError(
            422, "amount_exceeds_outstanding",
            texts.text("errors.ledger.amount_exceeds_outstanding", total=pos.total_outstanding),
            f"The amount exceeds the outstanding total {pos.total_outstanding}; request a payoff quote to settle early",
        )
    left = amount
    alloc = {"penalty": ZERO, "fee": ZERO, "interest": ZERO, "principal": ZERO}
    for row in pos.rows:
        if left == 0:
            break
        if row.settled:
            continue
        inst = row.instalment
        # Book penalty accrued up to today so later accrual starts from here.
        inst.penalty_charged = inst.paid_penalty + row.penalty_due
        if row.days_past_due > 0:
            inst.penalty_accrued_to = paid_on
        for part, unpaid, attr in (
            ("penalty", row.penalty_due, "paid_penalty"),
            ("fee", row.unpaid_fee, "paid_fee"),
            ("interest", row.unpaid_interest, "paid_interest"),
            ("principal", row.unpaid_principal, "paid_principal"),
        ):
            take = min(left, unpaid)
            if take > 0:
                setattr(inst, attr, getattr(inst, attr) + take)
                alloc[part] += take
                left -= take
        if (inst.principal - inst.paid_principal) + (inst.interest - inst.paid_interest) + (inst.fee - inst.paid_fee) == 0 \
                and inst.penalty_charged == inst.paid_penalty:
            inst.settled_on = paid_on
    refresh_loan_status(loan, paid_on)
    return alloc
