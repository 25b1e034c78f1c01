"""How figures are written to borrowers: 「¥2,500.00」, 「12月15日（周二）」, 「15.60%」.

Shared by both environments (standard library and the catalogue only): the action server
(actions/formatting.py re-exports these) and the backend, which renders outgoing notices
(backend.services.outreach.render). One formatter each, so a figure reads the same wherever it is said.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from texts import raw, text


def yuan(value: Decimal | str | float) -> str:
    return f"¥{Decimal(str(value)):,.2f}"


def day(value: date | str, with_year: bool = False) -> str:
    d = date.fromisoformat(value) if isinstance(value, str) else value
    return text("format.day_with_year" if with_year else "format.day", year=d.year, month=d.month, day=d.day,
                weekday=raw(f"format.weekdays.{d.weekday()}"))


def percent(rate: Decimal | str) -> str:
    return f"{Decimal(str(rate)) * 100:.2f}%"


def loan_name(loan: dict) -> str:
    return text("format.loan", product=loan["product_name"], last4=loan["loan_no_last4"])


def masked_name(name: str) -> str:
    """王小明 -> 王**: enough for the borrower to recognise, nothing for a stranger to learn."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""
