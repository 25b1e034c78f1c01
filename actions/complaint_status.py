"""A complaint's status in chat: asked for by the borrower, or told when staff update it.

An RP reference is a plan request (its status instead). Imports no workflow module: the workflow
forms answer 「我的投诉怎么样了」 in the middle of a form with this action (actions/workflows.py).
"""
from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import contract
from bot.backend import BackendError, backend
from texts import text, words
from texts.wording import complaint_detail

from .account import BUSY
from .identity import verified_customer_id
from .knowledge import kb
from .plan_status import answer_plan_status, plan_reference
from .reading import entity, has_any, message_text

RE_COMPLAINT_REF = re.compile(r"(?i)CP\d{8}-\d{4}")


def ticket_detail(ticket: dict) -> str:
    return complaint_detail(ticket, contract.live("complaint_status"))  # as the backend's notice (texts/wording.py)


def complaint_reference(tracker: Tracker) -> str | None:
    ref = entity(tracker, "reference") or next(iter(RE_COMPLAINT_REF.findall(message_text(tracker))), None)
    return ref.upper() if ref and ref.upper().startswith("CP") else None


class ActionAnswerComplaintStatus(Action):
    """By reference (a ticket filed under a verified account only to that borrower), else the
    verified borrower's latest ticket. An RP reference is a plan request: its status instead."""

    def name(self) -> str:
        return "action_answer_complaint_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = backend()
        try:
            customer_id = await verified_customer_id(client, tracker)
            plan_ref = plan_reference(tracker)
            if plan_ref or (customer_id and has_any(message_text(tracker), "application")
                            and not any(w in message_text(tracker) for w in words("vocabulary.complaint_word"))):
                if customer_id is None:
                    dispatcher.utter_message(text=text("complaint.status.plan_needs_verification"))
                else:
                    await answer_plan_status(dispatcher, client, customer_id, plan_ref)
                return []
            reference = complaint_reference(tracker)
            if reference:
                ticket = await client.complaint(reference)
                if ticket is None or (ticket["customer_id"] is not None and ticket["customer_id"] != customer_id):
                    dispatcher.utter_message(text=text("complaint.status.not_found", reference=reference))
                    return []
            elif customer_id is None:
                dispatcher.utter_message(text=kb("complaint_need_reference"))
                return []
            else:
                tickets = await client.customer_complaints(customer_id)
                if not tickets:
                    dispatcher.utter_message(text=kb("complaint_none"))
                    return []
                ticket = tickets[0]
        except BackendError:
            dispatcher.utter_message(text=BUSY)
            return []
        dispatcher.utter_message(text=kb("complaint_status", reference=ticket["reference"],
                                         category=ticket["category_label"], status=ticket["status_label"],
                                         update=ticket["last_update"], detail=ticket_detail(ticket)))
        return []
