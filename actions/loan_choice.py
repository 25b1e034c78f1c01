"""Which loan a workflow form is about: the only open one, or the one the borrower picks."""
from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.backend import BackendClient, BackendError, backend
from texts import text

from .account import OPEN_STATUSES
from .formatting import loan_name
from .identity import require_customer
from .reading import entity, message_text

_LAST4 = re.compile(r"(?<!\d)(\d{4})(?!\d)")


async def open_loans(client: BackendClient, customer_id: int) -> list[dict]:
    return [loan for loan in await client.loans(customer_id) if loan["status"] in OPEN_STATUSES]


def pick(loans: list[dict], tracker: Tracker, value: Any = None) -> dict | None:
    """The loan named by a button (loan_ref entity), four digits or the product name; the only one."""
    if len(loans) == 1:
        return loans[0]
    text = message_text(tracker)
    wanted = {str(v) for v in (entity(tracker, "loan_ref"), value) if v}
    wanted |= set(_LAST4.findall(text))
    for loan in loans:
        if loan["loan_no_last4"] in wanted:
            return loan
    named = [loan for loan in loans if loan["product_name"] in text]
    return named[0] if len(named) == 1 else None


def loan_by_last4(loans: list[dict], last4: str | None) -> dict | None:
    return next((loan for loan in loans if loan["loan_no_last4"] == last4), None)


class ActionAskFormLoan(Action):
    """Asks which loan, with one button per open loan (the button's text is its last four digits)."""

    def name(self) -> str:
        return "action_ask_form_loan"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        try:
            client = backend()
            loans = await open_loans(client, await require_customer(client, tracker))
        except (BackendError, TypeError, ValueError):
            loans = []
        buttons = [{"title": loan_name(loan), "payload": text("service.loan_button", last4=loan["loan_no_last4"])}
                   for loan in loans]
        dispatcher.utter_message(text=text("service.which_loan"), buttons=buttons)
        return []
