"""How figures are written to borrowers: 「¥2,500.00」 and 「12月15日（周二）」."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

WEEKDAYS = "一二三四五六日"


def yuan(value: Decimal | str | float) -> str:
    return f"¥{Decimal(str(value)):,.2f}"


def day(value: date | str) -> str:
    d = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{d.month}月{d.day}日（周{WEEKDAYS[d.weekday()]}）"
