"""Customer segments (risk tier and value tier) from repayment history and configurable rules."""
from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from backend.core.config import BusinessRules, SegmentRule
from backend.models import Customer, Loan

from .ledger import position, refresh_loan_status
from .money import ZERO

_OPS = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt, "eq": operator.eq}


@dataclass(frozen=True)
class SegmentMetrics:
    days_past_due: int
    overdue_episodes_12m: int
    outstanding_principal: Decimal


def metrics_for(customer: Customer, rules: BusinessRules, as_of: date) -> SegmentMetrics:
    """Overdue episodes = instalments due in the last 12 months that were paid late or are unpaid past due."""
    since = as_of - timedelta(days=365)
    dpd, episodes, principal = 0, 0, ZERO
    for loan in customer.loans:
        pos = position(loan, rules, as_of)
        dpd = max(dpd, pos.days_past_due)
        principal += pos.outstanding_principal
        for row in pos.rows:
            inst = row.instalment
            if not (since < inst.due_date < as_of):
                continue
            late = inst.settled_on > inst.due_date if inst.settled_on else not row.settled
            episodes += int(late)
    return SegmentMetrics(dpd, episodes, principal)


def _condition_holds(metrics: SegmentMetrics, key: str, threshold) -> bool:
    name, _, op = key.rpartition("_")
    if op not in _OPS or not hasattr(metrics, name):
        raise ValueError(f"unknown segment condition {key!r}")
    value = getattr(metrics, name)
    return _OPS[op](value, type(value)(str(threshold)) if isinstance(value, Decimal) else threshold)


def pick_tier(rules: list[SegmentRule], metrics: SegmentMetrics) -> str:
    for rule in rules:
        if any(all(_condition_holds(metrics, k, v) for k, v in cond.items()) for cond in rule.any_of):
            return rule.tier
    return rules[-1].tier


def recompute_all(db: Session, rules: BusinessRules, as_of: date, now: datetime) -> dict[str, int]:
    """The daily job: refresh loan statuses, then every customer's tiers. Returns counts per tier."""
    counts: dict[str, int] = {}
    customers = db.scalars(
        select(Customer).options(selectinload(Customer.loans).selectinload(Loan.instalments))
    ).all()
    for customer in customers:
        for loan in customer.loans:
            refresh_loan_status(loan, as_of)
        m = metrics_for(customer, rules, as_of)
        customer.risk_tier = pick_tier(rules.risk_tier_rules, m)
        customer.value_tier = pick_tier(rules.value_tier_rules, m)
        customer.segment_computed_at = now
        key = f"risk:{customer.risk_tier}"
        counts[key] = counts.get(key, 0) + 1
    return counts
