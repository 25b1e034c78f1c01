"""Session start: decide from the channel identity whether this conversation is verified, and keep
a conversation that is with a person paused.

Rasa resets the paused flag when a new session starts (session_expiration_time); without the
guard a borrower who waited an hour for staff would suddenly get bot answers again."""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import contract
from bot.backend import BackendError, backend

from .identity import resolve_caller, split_sender

# Slots that must not survive into a new session: verification by code is per conversation.
RESET_SLOTS = ("pending_action", "identity_phone", "identity_id_last4", "identity_otp", "identity_outcome",
               "promise_date", "promise_amount", "answer_context", "contact_confirmed", "pending_notice")


class ActionSessionStart(Action):
    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        events: list = [SessionStarted()]
        # Carry over what the conversation knew (e.g. the chosen loan), then re-derive identity.
        carried = {k: v for k, v in tracker.current_slot_values().items() if v is not None and k not in RESET_SLOTS}
        carried.update(_awaiting_answer(tracker.events))
        events += [SlotSet(k, v) for k, v in carried.items()]
        try:
            caller = await resolve_caller(backend(), tracker.sender_id)
        except BackendError:
            caller = None
        verified = bool(caller and caller.may_see_account)
        events += [SlotSet("verified", verified), SlotSet("customer_id", caller.customer_id if verified else None)]
        events.append(ActionExecuted("action_listen"))
        await _record(tracker.sender_id, caller.customer_id if verified else None)
        if await _with_staff(tracker):
            events.append(ConversationPaused())
        return events


def _awaiting_answer(events: list[dict]) -> dict:
    """The question a notice asked since the borrower last wrote (the backend appends it without a
    user event, backend.services.outreach.render): its context and held notice stay for the answer."""
    out: dict = {}
    for event in reversed(events):
        if event.get("event") == "user":
            break
        if event.get("event") == "slot" and event.get("name") in ("answer_context", "pending_notice") \
                and event.get("name") not in out:
            out[event["name"]] = event.get("value")
    return {k: v for k, v in out.items() if v is not None}


async def _record(conversation: str, customer_id: int | None) -> None:
    channel, _ = split_sender(conversation)
    if channel not in contract.values("channel"):
        return  # e.g. a test conversation over the REST channel without a channel prefix
    try:
        await backend().record_session(conversation, channel, customer_id)
    except BackendError:
        pass  # statistics only: never block the conversation


async def _with_staff(tracker: Tracker) -> bool:
    """An open or claimed handoff case for this conversation. If the backend cannot tell, stay as
    the old session was (the tracker still shows its paused flag here)."""
    try:
        return await backend().current_handoff(tracker.sender_id) is not None
    except BackendError:
        return tracker.is_paused()
