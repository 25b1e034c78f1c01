"""Short answers read from the question the bot just asked.

「是」「对」「是我」「不是」「我不是」 mean different things after different questions: after
「请问您是王**本人吗？」 they confirm the identity or say it is the wrong person; after 「需要为您转接
人工客服吗？」 they accept or decline a person. The action that asks sets the slot
``answer_context`` (identity_check, offer_human); the rules in data/rules.yml read the answer in
that context. The slot only describes the bot's *last* turn: ``action_answer_context`` runs on every
user message (it is the slot's custom mapping, run by Rasa before the next action is predicted) and
clears a context that was set before the borrower's previous message, so a 「好的」 three turns later
is read on its own again.
"""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .knowledge import kb

SLOT = "answer_context"
IDENTITY_CHECK = "identity_check"
OFFER_HUMAN = "offer_human"


def ask(context: str) -> SlotSet:
    """The event an action returns together with its question."""
    return SlotSet(SLOT, context)


def context_is_stale(events: list[dict]) -> bool:
    """Was the context set before the borrower's previous message (not in the bot's last turn)?"""
    users = [i for i, e in enumerate(events) if e.get("event") == "user"]
    if not users:
        return True
    # No earlier message: a context set before this one was set in the bot's last turn (a notice the
    # backend appended to a new conversation asks the identity question without a user event).
    previous = users[-2] if len(users) >= 2 else -1
    set_at = [i for i, e in enumerate(events) if e.get("event") == "slot" and e.get("name") == SLOT and e.get("value")]
    return not set_at or set_at[-1] < previous


class ActionAnswerContext(Action):
    """Custom slot mapping of ``answer_context``: expire a context older than the bot's last turn."""

    def name(self) -> str:
        return "action_answer_context"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        if tracker.get_slot(SLOT) and context_is_stale(tracker.events):
            return [SlotSet(SLOT, None)]
        return []


class ActionNoHumanNeeded(Action):
    """「不用了」 to the offer of a person."""

    def name(self) -> str:
        return "action_no_human_needed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        dispatcher.utter_message(text=kb("offer_human_declined"))
        return [SlotSet(SLOT, None)]
