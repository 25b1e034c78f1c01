"""Service turns: unsubscribe, wrong person, and fallback."""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.backend import BackendClient, BackendError, backend
from texts import section, text

from .identity import resolve_caller, split_sender, verified_customer_id
from .handoff import hand_over
from .knowledge import kb
from .session import RESET_SLOTS

# Topics offered as buttons when the bot did not understand (title, intent).
SUGGESTIONS = section("service.suggestions")
DEFAULT_SUGGESTIONS = ["query_balance", "query_repayment_schedule"]


async def reminder_customer(client: BackendClient, tracker: Tracker) -> int | None:
    """Whose reminders a message is about: the channel's active identity, else the verified borrower."""
    caller = await resolve_caller(client, tracker.sender_id)
    customer_id = caller.customer_id if caller.status == "active" else None
    if customer_id is None and caller.status != "wrong_person":
        customer_id = await verified_customer_id(client, tracker)  # the backend's record, not the slot
    return int(customer_id) if customer_id is not None else None


class ActionUnsubscribe(Action):
    """Only what the borrower asked for: reminders off, confirmed in one line with the way back."""

    def name(self) -> str:
        return "action_unsubscribe"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = backend()
        try:
            customer_id = await reminder_customer(client, tracker)
            if customer_id is not None:
                await client.unsubscribe(customer_id)
                dispatcher.utter_message(text=kb("unsubscribe_done"))
                return []
        except BackendError:
            pass
        dispatcher.utter_message(text=kb("unsubscribe_unknown"))
        return []


class ActionResubscribe(Action):
    """「恢复提醒」 undoes an unsubscribe; 「怎么没给我发提醒」 from a subscribed borrower is told when
    reminders come. Never changes anything for a caller we do not know."""

    def name(self) -> str:
        return "action_resubscribe"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = backend()
        try:
            customer_id = await reminder_customer(client, tracker)
            if customer_id is None:
                dispatcher.utter_message(text=kb("resubscribe_unknown"))
                return []
            customer = await client.customer(customer_id) or {}
            if customer.get("consent_reminders") is False:
                await client.resubscribe(customer_id)
                dispatcher.utter_message(text=kb("resubscribe_done"))
            else:
                dispatcher.utter_message(text=kb("reminders_already_on"))
        except BackendError:
            dispatcher.utter_message(text=kb("service_busy"))
        return []


class ActionWrongPerson(Action):
    """Apologise, reveal nothing, mark the channel identity as wrong, end the conversation."""

    def name(self) -> str:
        return "action_wrong_person"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        channel, external = split_sender(tracker.sender_id)
        try:
            if channel and external:
                await backend().mark_wrong_person(channel, external)
        except BackendError:
            pass  # the apology still goes out; nothing is disclosed either way
        dispatcher.utter_message(text=kb("wrong_person"))
        events = [SlotSet("verified", False), SlotSet("customer_id", None), SlotSet("loan_ref", None)]
        # A form in progress is closed by the rule that follows (action_deactivate_loop). The answer
        # context is left to expire with the next message (actions/answer_context.py): every rule
        # that runs this action then sees the same slots.
        return events + [SlotSet(s, None) for s in RESET_SLOTS if s != "answer_context"]


def _previous_user_intent(tracker: Tracker) -> str | None:
    users = [e for e in tracker.events if e.get("event") == "user"]
    if len(users) < 2:
        return None
    return (users[-2].get("parse_data") or {}).get("intent", {}).get("name")


class ActionFallback(Action):
    """First miss: ask to rephrase with two likely topics as buttons. Second miss in a row: hand over
    to a person."""

    def name(self) -> str:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        if _previous_user_intent(tracker) == "nlu_fallback":
            dispatcher.utter_message(text=kb("fallback_to_person"))
            return await hand_over(dispatcher, tracker, "repeated_fallback")
        ranking = tracker.latest_message.get("intent_ranking", []) or []
        likely = [r["name"] for r in ranking if r.get("name") in SUGGESTIONS][:2]
        for extra in DEFAULT_SUGGESTIONS:
            if len(likely) < 2 and extra not in likely:
                likely.append(extra)
        dispatcher.utter_message(
            text=text("service.fallback"),
            buttons=[{"title": SUGGESTIONS[i], "payload": f"/{i}"} for i in likely])
        return []
