"""Session start: decide from the channel identity whether this conversation is verified."""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .backend_client import BackendClient, BackendUnavailable
from .identity import resolve_caller

# Slots that must not survive into a new session: verification by code is per conversation.
RESET_SLOTS = ("pending_action", "identity_phone", "identity_id_last4", "identity_otp", "identity_outcome",
               "promise_date", "promise_amount")


class ActionSessionStart(Action):
    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        events: list = [SessionStarted()]
        # Carry over what the conversation knew (e.g. the chosen loan), then re-derive identity.
        carried = {k: v for k, v in tracker.current_slot_values().items() if v is not None and k not in RESET_SLOTS}
        events += [SlotSet(k, v) for k, v in carried.items()]
        try:
            caller = await resolve_caller(BackendClient(), tracker.sender_id)
        except BackendUnavailable:
            caller = None
        verified = bool(caller and caller.may_see_account)
        events += [SlotSet("verified", verified), SlotSet("customer_id", caller.customer_id if verified else None)]
        events.append(ActionExecuted("action_listen"))
        return events
