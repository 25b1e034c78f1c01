"""The notice held back behind the identity question, given when the borrower says it is them.

The backend words and delivers every notice itself (backend.services.outreach: render, outbox,
dispatcher). On a channel where the number may have changed hands (outreach.identity_check) it first
asks 「请问您是王**本人吗？」 and sets ``answer_context`` and ``pending_notice``; the borrower's 「是」
runs this action, which asks the backend for the notice's text as of now (GET
/outreach/notices/{id}: ``text``, None when it no longer applies, e.g. paid meanwhile) and says it.
"""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.backend import BackendClient, BackendError, backend

from .answer_context import SLOT
from .identity import owns
from .knowledge import kb

ANONYMOUS_KINDS = ("csat_followup", "hardship_offer")  # may reach a conversation with no customer


async def notice_is_ours(client: BackendClient, tracker: Tracker, notice: dict) -> bool:
    """A notice about a customer is said only in a conversation of that customer (the channel
    identity it was routed to, or this conversation's verification); one about no one (a rating
    request for an anonymous chat) carries nothing personal."""
    if notice.get("customer_id") is None:
        return notice["kind"] in ANONYMOUS_KINDS
    return await owns(client, tracker, {"customer_id": notice["customer_id"]})


class ActionIdentityConfirmed(Action):
    """「是」「是我」「对」 to 「请问您是王**本人吗？」: the notice that was held back is given now."""

    def name(self) -> str:
        return "action_identity_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        events: list = [SlotSet(SLOT, None), SlotSet("contact_confirmed", True), SlotSet("pending_notice", None)]
        notice_id = tracker.get_slot("pending_notice")
        text = None
        try:
            client = backend()
            notice = await client.outreach_notice(notice_id) if notice_id else None
            if notice and await notice_is_ours(client, tracker, notice):
                text = notice.get("text")
        except BackendError:
            text = None
        dispatcher.utter_message(text=text or kb("identity_check_thanks"))
        if text and notice["kind"] == "csat_followup":  # the rating answer is read for this case
            events.append(SlotSet("handoff_case", notice["payload"].get("case_id")))
        return events
