"""Policy texts from the catalogue's knowledge base (texts/zh/knowledge.yml, reviewed by compliance)."""
from __future__ import annotations

from decimal import Decimal

from bot.rules import rules
from texts import has, text


def reminder_days(days_before: list[int]) -> str:
    """The reminder days as the borrower reads them after 「还款日」: [3, 1, 0] -> 「前3天、前1天和当天」."""
    parts = [text("format.days_before", days=d) if d else text("format.same_day") for d in days_before]
    if len(parts) > 1:
        return text("format.and").join([text("format.enumeration").join(parts[:-1]), parts[-1]])
    return "".join(parts)


def rule_values() -> dict[str, str]:
    """The numbers the knowledge texts quote, from the business rules the backend serves (bot/rules.py)."""
    served = rules()
    multiplier = Decimal(served["penalty"]["rate_multiplier"])
    return {
        "penalty_multiplier": str(served["penalty"]["rate_multiplier"]),
        "penalty_markup": f"{(multiplier - 1) * 100:.0f}",
        "penalty_day_count_basis": str(served["penalty"]["day_count_basis"]),
        "complaint_decision_days": str(served["complaints"]["decision_days"]),
        "plan_decision_days": str(served["repayment_plans"]["decision_days"]),
        "reminder_days": reminder_days(served["outreach"]["reminder_days_before"]),
    }


def has_kb(key: str) -> bool:
    return has(f"knowledge.{key}")


def kb(key: str, **values) -> str:
    """A knowledge text; the rule numbers it quotes are filled in unless given."""
    return text(f"knowledge.{key}", **{**rule_values(), **values})
