"""How figures are written to borrowers: 「¥2,500.00」, 「12月15日（周二）」, 「15.60%」."""
from __future__ import annotations

# One implementation for both environments: the backend renders outgoing notices with the same helpers.
from texts.formatting import day, loan_name, masked_name, percent, yuan

__all__ = ["day", "loan_name", "masked_name", "percent", "yuan"]
