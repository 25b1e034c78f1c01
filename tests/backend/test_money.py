"""Loan arithmetic (backend.services.money), checked against figures worked out in the test."""
from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest

from backend.services.money import (
    accrued_interest, add_months, amortize, level_payment, penalty_interest, q2,
)

CENT = Decimal("0.01")


def hand_round(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def present_value(payment: Decimal, monthly_rate: Decimal, n: int) -> Decimal:
    """PV of n level payments: sum of payment / (1+r)^k, k = 1..n (the annuity identity, summed term by term)."""
    with localcontext() as ctx:
        ctx.prec = 50
        return sum(payment / (1 + monthly_rate) ** k for k in range(1, n + 1))


# ----------------------------------------------------------------------------- level payment

def test_level_payment_12000_at_12_percent_over_12_months_is_1066_19():
    r = Decimal("0.12") / 12
    # 1066.19 is the smallest cent amount whose 12 payments repay 12000 at 1% a month:
    assert present_value(Decimal("1066.19"), r, 12) >= Decimal("12000")
    assert present_value(Decimal("1066.18"), r, 12) < Decimal("12000")
    # ... and the exact annuity payment rounds half up to it.
    with localcontext() as ctx:
        ctx.prec = 50
        exact = Decimal("12000") / present_value(Decimal(1), r, 12)
    assert Decimal("1066.185") < exact < Decimal("1066.19")
    assert hand_round(exact) == Decimal("1066.19")
    assert level_payment(Decimal("12000"), Decimal("0.12"), 12) == Decimal("1066.19")


def test_level_payment_rejects_non_positive_term():
    with pytest.raises(ValueError):
        level_payment(Decimal("1000"), Decimal("0.12"), 0)


# ----------------------------------------------------------------------------- amortization

SCHEDULE = amortize(Decimal("12000"), Decimal("0.12"), 12, date(2026, 1, 31))


def test_amortize_12000_rows_match_hand_computation():
    assert len(SCHEDULE) == 12
    assert [s.seq for s in SCHEDULE] == list(range(1, 13))
    # Independent balance walk: interest = round(balance * 1%), principal = 1066.19 - interest,
    # last instalment takes whatever balance is left.
    balance = Decimal("12000.00")
    for k, row in enumerate(SCHEDULE, start=1):
        interest = hand_round(balance * Decimal("0.01"))
        principal = balance if k == 12 else Decimal("1066.19") - interest
        assert (row.interest, row.principal) == (interest, principal), f"instalment {k}"
        balance -= principal
    assert balance == Decimal("0.00")


def test_amortize_12000_spot_values():
    # Worked by hand: 12000 * 1% = 120.00, 1066.19 - 120.00 = 946.19; balance 11053.81 * 1% = 110.5381 -> 110.54.
    assert (SCHEDULE[0].interest, SCHEDULE[0].principal) == (Decimal("120.00"), Decimal("946.19"))
    assert (SCHEDULE[1].interest, SCHEDULE[1].principal) == (Decimal("110.54"), Decimal("955.65"))
    # Every instalment but the last is the level payment.
    assert all(s.total == Decimal("1066.19") for s in SCHEDULE[:-1])


def test_amortize_principals_sum_exactly_and_last_absorbs_remainder():
    assert sum(s.principal for s in SCHEDULE) == Decimal("12000.00")
    before_last = sum(s.principal for s in SCHEDULE[:-1])
    assert SCHEDULE[-1].principal == Decimal("12000.00") - before_last
    # last interest = round(remaining balance * 1%), and the last total differs from the level payment
    assert SCHEDULE[-1].interest == hand_round(SCHEDULE[-1].principal * Decimal("0.01"))
    assert SCHEDULE[-1].principal == Decimal("1055.58")
    assert SCHEDULE[-1].interest == Decimal("10.56")
    assert SCHEDULE[-1].total == Decimal("1066.14")
    # all amounts carry exactly two decimals
    assert all(s.principal.as_tuple().exponent == -2 and s.interest.as_tuple().exponent == -2 for s in SCHEDULE)


def test_amortize_due_dates_clamp_to_month_end_without_drifting():
    assert [s.due_date for s in SCHEDULE] == [
        date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31), date(2026, 6, 30),
        date(2026, 7, 31), date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31), date(2026, 11, 30),
        date(2026, 12, 31), date(2027, 1, 31),
    ]
    # leap year, and a 30th that must come back to the 30th after February
    assert [s.due_date for s in amortize(Decimal("900"), Decimal("0.12"), 3, date(2024, 1, 31))] == [
        date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
    assert [s.due_date for s in amortize(Decimal("900"), Decimal("0.12"), 2, date(2026, 1, 30))] == [
        date(2026, 2, 28), date(2026, 3, 30)]
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)


def test_amortize_zero_rate():
    rows = amortize(Decimal("1000"), Decimal("0"), 3, date(2026, 5, 10))
    assert [r.interest for r in rows] == [Decimal("0.00")] * 3
    assert [r.principal for r in rows] == [Decimal("333.33"), Decimal("333.33"), Decimal("333.34")]
    assert [r.due_date for r in rows] == [date(2026, 6, 10), date(2026, 7, 10), date(2026, 8, 10)]
    assert level_payment(Decimal("1000"), Decimal("0"), 3) == Decimal("333.33")
    even = amortize(Decimal("1200"), Decimal("0.00"), 12, date(2026, 1, 1))
    assert {r.total for r in even} == {Decimal("100.00")}


def test_amortize_other_terms_sum_exactly():
    for principal, rate, term in [("5000", "0.0999", 6), ("87654.32", "0.2399", 36), ("300.01", "0.18", 24)]:
        rows = amortize(Decimal(principal), Decimal(rate), term, date(2026, 8, 31))
        assert sum(r.principal for r in rows) == Decimal(principal)
        assert all(r.principal > 0 for r in rows)


# ----------------------------------------------------------------------------- rounding

@pytest.mark.parametrize("raw, rounded", [
    ("2.345", "2.35"), ("2.344", "2.34"), ("2.355", "2.36"), ("0.005", "0.01"), ("0.004", "0.00"),
    ("-2.345", "-2.35"), ("10", "10.00"), ("1066.185", "1066.19"),
])
def test_q2_rounds_half_up_to_cents(raw, rounded):
    result = q2(Decimal(raw))
    assert result == Decimal(rounded)
    assert str(result) == rounded


# ----------------------------------------------------------------------------- penalty and accrual

def test_penalty_interest_formula():
    # 5000 * 12% * 1.5 / 360 * 10 = 25.00 exactly
    assert penalty_interest(Decimal("5000"), Decimal("0.12"), Decimal("1.5"), 360, 10) == Decimal("25.00")
    # 1234.56 * 18% * 1.5 / 360 * 7 = 6.48144 -> 6.48
    assert penalty_interest(Decimal("1234.56"), Decimal("0.18"), Decimal("1.5"), 360, 7) == Decimal("6.48")
    # 1000 * 9% * 1.5 / 360 * 1 = 0.375 -> 0.38 (half up)
    assert penalty_interest(Decimal("1000"), Decimal("0.09"), Decimal("1.5"), 360, 1) == Decimal("0.38")
    # 955.65 * 12% * 1.5 / 360 * 31 = 14.8125... -> 14.81
    expected = hand_round(Decimal("955.65") * Decimal("0.12") * Decimal("1.5") / 360 * 31)
    assert expected == Decimal("14.81")
    assert penalty_interest(Decimal("955.65"), Decimal("0.12"), Decimal("1.5"), 360, 31) == expected


@pytest.mark.parametrize("principal, days", [("5000", 0), ("5000", -3), ("0", 10), ("-1", 10)])
def test_penalty_interest_is_zero_when_nothing_is_overdue(principal, days):
    assert penalty_interest(Decimal(principal), Decimal("0.12"), Decimal("1.5"), 360, days) == Decimal("0.00")


def test_accrued_interest_is_capped_at_the_scheduled_interest():
    # 10000 * 12% / 360 * 15 = 50.00
    assert accrued_interest(Decimal("10000"), Decimal("0.12"), 360, 15, Decimal("100.00")) == Decimal("50.00")
    # 31 days would be 103.33, capped at the instalment's 100.00
    assert accrued_interest(Decimal("10000"), Decimal("0.12"), 360, 31, Decimal("100.00")) == Decimal("100.00")
    assert accrued_interest(Decimal("10000"), Decimal("0.12"), 360, 0, Decimal("100.00")) == Decimal("0.00")
