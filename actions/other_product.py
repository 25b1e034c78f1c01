"""A question about something that is not our loan: another lender's product, a credit card or a
household bill (the `product` entity with role `elsewhere`, bot/nlu/entities.py).

The classifier still says what is asked (「花呗逾期会怎样」 is ask_overdue_consequences); the rule in
data/rules.yml sends any such question here instead of to our account answers, so we never answer
with our figures for someone else's product. The texts (texts/zh/knowledge.yml) say what we
cannot do, where to go instead, and what we can do."""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from texts import text

from .knowledge import has_kb, kb

ELSEWHERE = "elsewhere"
KINDS = ("other_lender", "credit_card", "non_loan_bill")


def product_mention(tracker: Tracker) -> tuple[str, str] | None:
    """(kind, the words the borrower used) of the first product named elsewhere, or None."""
    message = tracker.latest_message or {}
    text = message.get("text") or ""
    for ent in message.get("entities") or []:
        if ent.get("entity") == "product" and ent.get("role") == ELSEWHERE and ent.get("value") in KINDS:
            start, end = ent.get("start"), ent.get("end")
            words = text[start:end] if isinstance(start, int) and isinstance(end, int) else ""
            return ent["value"], words or ent["value"]
    return None


class ActionOtherProduct(Action):
    def name(self) -> str:
        return "action_other_product"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        kind, words = product_mention(tracker) or ("other_lender", text("service.other_product_unnamed"))
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        parts = [kb(f"other_product_{kind}", product=words)]
        if intent and has_kb(f"other_product_{intent}"):
            parts.append(kb(f"other_product_{intent}"))
        parts.append(kb("other_product_closing"))
        dispatcher.utter_message(text="\n".join(parts))
        return []
