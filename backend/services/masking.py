"""The one masking rule for personal numbers (phone 138****5678, ID and card: last four only)."""
from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = phone[-11:] if len(phone) >= 11 else phone
    if len(digits) < 7:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def last4(number: str | None) -> str | None:
    if not number:
        return number
    return f"****{number[-4:]}"


def mask_name(name: str) -> str:
    """张三丰 -> 张**: for logs and lists where the full name is not needed."""
    return name[:1] + "*" * (len(name) - 1) if name else name
