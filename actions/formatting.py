"""How figures are written to borrowers: 「¥2,500.00」, 「12月15日（周二）」, 「15.60%」."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

WEEKDAYS = "一二三四五六日"


def yuan(value: Decimal | str | float) -> str:
    return f"¥{Decimal(str(value)):,.2f}"


def day(value: date | str, with_year: bool = False) -> str:
    d = date.fromisoformat(value) if isinstance(value, str) else value
    prefix = f"{d.year}年" if with_year else ""
    return f"{prefix}{d.month}月{d.day}日（周{WEEKDAYS[d.weekday()]}）"


def percent(rate: Decimal | str) -> str:
    return f"{Decimal(str(rate)) * 100:.2f}%"


def loan_name(loan: dict) -> str:
    return f"{loan['product_name']}（尾号{loan['loan_no_last4']}）"


def masked_name(name: str) -> str:
    """王小明 -> 王**: enough for the borrower to recognise, nothing for a stranger to learn."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""
