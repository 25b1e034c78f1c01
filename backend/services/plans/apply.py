"""Applying an approved plan to the loan's schedule."""
from __future__ import annotations

from sqlalchemy.orm import Session

from backend.core.config import BusinessRules
from backend.models import Instalment, Loan, LoanStatus, PlanType

from ..ledger import position, refresh_loan_status
from .figures import Plan


def apply_plan(db: Session, rules: BusinessRules, loan: Loan, plan: Plan) -> list[int]:
    """Change the loan's schedule as the plan says; returns the replaced instalment numbers."""
    as_of = plan.as_of
    if plan.plan_type == PlanType.waiver:
        pos = position(loan, rules, as_of)
        for r in pos.rows:
            inst = r.instalment
            if plan.waived_fees > 0 and inst.fee != inst.paid_fee:
                inst.fee = inst.paid_fee
            if plan.waived_penalty > 0 and r.penalty_due > 0:
                inst.penalty_charged = inst.paid_penalty
                if r.days_past_due > 0:
                    inst.penalty_accrued_to = as_of  # accrual on principal still overdue restarts today
        refresh_loan_status(loan, as_of)
        db.flush()
        return []

    replaced = set(plan.replaced_seqs)
    for inst in list(loan.instalments):
        if inst.seq not in replaced:
            continue
        if inst.paid_principal + inst.paid_interest + inst.paid_fee + inst.paid_penalty > 0:
            # Keep what was paid as the record of the payment; the rest is in the plan.
            inst.principal, inst.interest, inst.fee = inst.paid_principal, inst.paid_interest, inst.paid_fee
            inst.penalty_charged = inst.paid_penalty
            inst.settled_on = as_of
        else:
            loan.instalments.remove(inst)  # delete-orphan
    db.flush()  # deletes before the inserts below (sequence numbers are unique per loan)
    seq = max((i.seq for i in loan.instalments), default=0)
    for row in plan.rows:
        seq += 1
        loan.instalments.append(Instalment(seq=seq, due_date=row.due_date, principal=row.principal,
                                           interest=row.interest, fee=row.fee))
    loan.status = LoanStatus.restructured
    refresh_loan_status(loan, as_of)
    db.flush()
    return sorted(replaced)
