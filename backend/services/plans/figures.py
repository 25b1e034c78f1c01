"""The plan's arithmetic: the instalment, deferral and waiver plans from the loan's position (formulas in
the package docstring). Pure: reads the loan and its position, writes nothing."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_DOWN, Decimal

from backend.core.config import BusinessRules
from backend.models import Loan, PlanType
from backend.plan_schemas import DeferredOut, PlanFiguresOut, PlanRowOut

from ..ledger import LoanPosition
from ..money import CENT, ZERO, add_months, amortize


@dataclass(frozen=True)
class PlanRow:
    seq: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee


@dataclass
class Plan:
    plan_type: PlanType
    months: int | None
    as_of: date
    annual_rate: Decimal
    outstanding_principal: Decimal
    carried_interest: Decimal = ZERO
    carried_fees: Decimal = ZERO
    carried_penalty: Decimal = ZERO
    amount: Decimal = ZERO
    total_term_months: int | None = None
    waived_penalty: Decimal = ZERO
    waived_fees: Decimal = ZERO
    remaining_after_waiver: Decimal = ZERO
    deferred: list[DeferredOut] = field(default_factory=list)
    rows: list[PlanRow] = field(default_factory=list)
    replaced_seqs: list[int] = field(default_factory=list)  # the loan's instalments the plan replaces

    @property
    def carried_total(self) -> Decimal:
        return self.carried_interest + self.carried_fees + self.carried_penalty

    def figures(self) -> PlanFiguresOut:
        rows = self.rows
        waiver = self.plan_type == PlanType.waiver
        return PlanFiguresOut(
            plan_type=self.plan_type.value, months=self.months, as_of=self.as_of, annual_rate=self.annual_rate,
            outstanding_principal=self.outstanding_principal, carried_interest=self.carried_interest,
            carried_fees=self.carried_fees, carried_penalty_interest=self.carried_penalty,
            carried_total=self.carried_total, amount=self.amount,
            monthly_amount=rows[0].total if rows else None, instalments=len(rows),
            total_interest=sum((r.interest for r in rows), ZERO),
            total_repayable=self.remaining_after_waiver if waiver else sum((r.total for r in rows), ZERO),
            first_due_date=rows[0].due_date if rows else None, last_due_date=rows[-1].due_date if rows else None,
            total_term_months=self.total_term_months, waived_penalty_interest=self.waived_penalty,
            waived_fees=self.waived_fees, waived_amount=self.waived_penalty + self.waived_fees,
            deferred=self.deferred,
            schedule=[PlanRowOut(seq=r.seq, due_date=r.due_date, principal=r.principal, interest=r.interest,
                                 fee=r.fee, total=r.total) for r in rows],
        )


def months_between(start: date, day: date) -> int:
    """Whole calendar months from start's month to day's month."""
    return (day.year - start.year) * 12 + day.month - start.month


def spread(total: Decimal, n: int) -> list[Decimal]:
    """total over n parts: total/n rounded down to the cent, the last part taking the remainder."""
    part = (total / n).quantize(CENT, rounding=ROUND_DOWN)
    return [part] * (n - 1) + [total - part * (n - 1)]


def instalment_plan(loan: Loan, pos: LoanPosition, months: int) -> Plan:
    start, as_of = loan.start_date, pos.as_of
    m = months_between(start, as_of)
    s = add_months(start, m)
    replaced = pos.open_rows
    principal = sum((r.unpaid_principal for r in replaced), ZERO)
    plan = Plan(
        PlanType.instalment, months, as_of, loan.annual_rate, principal,
        carried_interest=sum((r.unpaid_interest for r in replaced if r.instalment.due_date <= s), ZERO),
        carried_fees=sum((r.unpaid_fee for r in replaced), ZERO),
        carried_penalty=sum((r.penalty_due for r in replaced), ZERO),
        total_term_months=m + months, replaced_seqs=[r.instalment.seq for r in replaced],
    )
    plan.amount = principal + plan.carried_total
    fees = spread(plan.carried_total, months)
    plan.rows = [
        PlanRow(k.seq, add_months(start, m + k.seq), k.principal, k.interest, fees[k.seq - 1])
        for k in amortize(principal, loan.annual_rate, months, s)
    ]
    return plan


def upcoming_rows(pos: LoanPosition):
    return [r for r in pos.open_rows if r.instalment.due_date >= pos.as_of]


def deferral_plan(loan: Loan, pos: LoanPosition, count: int) -> Plan:
    start = loan.start_date
    upcoming = upcoming_rows(pos)
    last = max(i.due_date for i in loan.instalments)
    m_last = months_between(start, last)
    moved, kept = upcoming[:count], upcoming[count:]
    plan = Plan(PlanType.deferral, count, pos.as_of, loan.annual_rate, pos.outstanding_principal,
                total_term_months=m_last + count, replaced_seqs=[r.instalment.seq for r in upcoming])
    rows: list[tuple[date, Decimal, Decimal, Decimal]] = [
        (r.instalment.due_date, r.unpaid_principal, r.unpaid_interest, r.unpaid_fee) for r in kept]
    for j, r in enumerate(moved, start=1):
        new_due = add_months(start, m_last + j)
        plan.deferred.append(DeferredOut(seq=r.instalment.seq, due_date=r.instalment.due_date, new_due_date=new_due,
                                         amount=r.unpaid_principal + r.unpaid_interest + r.unpaid_fee))
        rows.append((new_due, r.unpaid_principal, r.unpaid_interest, r.unpaid_fee))
    plan.rows = [PlanRow(k, *row) for k, row in enumerate(rows, start=1)]
    plan.amount = sum((d.amount for d in plan.deferred), ZERO)
    return plan


def waiver_plan(loan: Loan, pos: LoanPosition, rules: BusinessRules) -> Plan:
    parts = rules.repayment_plans.waivable
    plan = Plan(PlanType.waiver, None, pos.as_of, loan.annual_rate, pos.outstanding_principal)
    plan.waived_penalty = pos.penalty_interest if "penalty_interest" in parts else ZERO
    plan.waived_fees = sum((r.unpaid_fee for r in pos.rows), ZERO) if "fees" in parts else ZERO
    plan.amount = plan.waived_penalty + plan.waived_fees
    plan.remaining_after_waiver = pos.total_outstanding - plan.amount
    return plan
