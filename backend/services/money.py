"""The one place where loan arithmetic is defined. Every amount is a Decimal in yuan.

Formulas (documented here, used everywhere):

* Rounding: every stored or shown amount is rounded to cents, half up (``q2``).
* Schedule, equal instalments (等额本息): monthly rate r = annual_rate / 12;
  payment A = q2(P * r * (1+r)^n / ((1+r)^n - 1)) (A = q2(P / n) when r = 0).
  Instalment k: interest_k = q2(balance_{k-1} * r), principal_k = A - interest_k, and the last
  instalment takes the remaining balance as principal, so the principals sum to P exactly.
  Due dates fall on the start date's day of month k months later (clamped to month end).
* Penalty interest (罚息): per overdue instalment,
  q2(unpaid principal * annual_rate * multiplier / basis * days overdue), with multiplier and
  day-count basis from config/business.yml.
* Accrued interest for early settlement: principal not yet due * annual_rate / basis * days since
  the last due date (or the start date), capped at the current instalment's scheduled interest.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def q2(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def add_months(start: date, months: int) -> date:
    """start + months, keeping the day of month where it exists (Jan 31 + 1 -> Feb 28/29)."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class ScheduledInstalment:
    seq: int
    due_date: date
    principal: Decimal
    interest: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest


def level_payment(principal: Decimal, annual_rate: Decimal, term: int) -> Decimal:
    if term <= 0:
        raise ValueError("term must be positive")
    with localcontext() as ctx:
        ctx.prec = 40
        r = Decimal(annual_rate) / 12
        if r == 0:
            return q2(Decimal(principal) / term)
        growth = (1 + r) ** term
        return q2(Decimal(principal) * r * growth / (growth - 1))


def amortize(principal: Decimal, annual_rate: Decimal, term: int, start: date) -> list[ScheduledInstalment]:
    """Equal-instalment schedule; see the module docstring for the formula."""
    principal = q2(principal)
    payment = level_payment(principal, annual_rate, term)
    r = Decimal(annual_rate) / 12
    balance = principal
    rows: list[ScheduledInstalment] = []
    for k in range(1, term + 1):
        interest = q2(balance * r)
        part = balance if k == term else min(payment - interest, balance)
        rows.append(ScheduledInstalment(k, add_months(start, k), part, interest))
        balance -= part
    return rows


def penalty_interest(
    unpaid_principal: Decimal, annual_rate: Decimal, multiplier: Decimal, basis: int, days: int
) -> Decimal:
    if days <= 0 or unpaid_principal <= 0:
        return ZERO
    return q2(Decimal(unpaid_principal) * Decimal(annual_rate) * Decimal(multiplier) / basis * days)


def accrued_interest(principal: Decimal, annual_rate: Decimal, basis: int, days: int, cap: Decimal) -> Decimal:
    if days <= 0 or principal <= 0:
        return ZERO
    return min(q2(Decimal(principal) * Decimal(annual_rate) / basis * days), cap)
