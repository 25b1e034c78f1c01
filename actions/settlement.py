"""Early settlement (提前结清): the payoff quote for a date, how to pay, and the recorded intent.

request_early_repayment (verified) -> action_settlement_start -> settlement_form: which loan, the
date (today unless the borrower named one; a past date is re-asked), then the quote exactly as the
backend's payoff endpoint computes it for that date, and whether to record the intent to settle.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

import texts
from bot import clock
from bot.backend import BackendError, backend

from .account import BUSY, NOT_VERIFIED
from .formatting import day, loan_name, yuan
from .identity import require_customer, split_sender, verified_customer_id
from .knowledge import kb
from .loan_choice import loan_by_last4, open_loans, pick
from .workflows import (
    QUESTION, WorkflowForm, entity, has_any, is_short_answer, is_strong_confirm, latest_intent, message_text, offer_pending,
)

SETTLE_SLOTS = ("form_loan", "settle_date", "settle_confirm")
SETTLE_WORDS = re.compile(texts.raw("vocabulary.settle_words"))
RECORD_WORDS = tuple(texts.words("vocabulary.settle_record"))


def quote_text(loan: dict, quote: dict) -> str:
    parts = texts.text("settlement.quote.principal_interest", principal=yuan(quote["principal"]),
                       interest=yuan(quote["interest"]))
    if quote["penalty_interest"] != "0.00":
        parts += texts.text("settlement.quote.penalty", amount=yuan(quote["penalty_interest"]))
    if quote["fees"] != "0.00":
        parts += texts.text("settlement.quote.fees", amount=yuan(quote["fees"]))
    parts += texts.text("settlement.quote.early_fee", amount=yuan(quote["early_settlement_fee"]))
    return texts.text("settlement.quote.total", date=day(quote["settle_on"]), loan=loan_name(loan),
                      total=yuan(quote["total"]), parts=parts)


class ActionSettlementStart(Action):
    def name(self) -> str:
        return "action_settlement_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = backend()
        try:
            customer_id = await verified_customer_id(client, tracker)
            loans = await open_loans(client, customer_id) if customer_id is not None else []
        except BackendError:
            dispatcher.utter_message(text=BUSY)
            return [SlotSet("workflow_next", "done")]
        if customer_id is None:
            dispatcher.utter_message(text=NOT_VERIFIED)
            return [SlotSet("workflow_next", "done")]
        if not loans:
            dispatcher.utter_message(text=texts.text("settlement.no_open_loans"))
            return [SlotSet("workflow_next", "done")]
        chosen = pick(loans, tracker, tracker.get_slot("loan_ref"))
        return [SlotSet(s, None) for s in SETTLE_SLOTS] + [
            SlotSet("form_reasks", 0), SlotSet("form_loan", chosen["loan_no_last4"] if chosen else None),
            SlotSet("settle_date", entity(tracker, "date") or clock.today().isoformat()),
            SlotSet("workflow_next", "settlement_form")]


class ValidateSettlementForm(WorkflowForm):
    form = "settlement_form"
    label = texts.text("settlement.form_label")
    slots = SETTLE_SLOTS

    own_intent = "request_early_repayment"

    def name(self) -> str:
        return "validate_settlement_form"

    def reads_as_answer(self, slot: str, tracker: Tracker) -> bool:
        """A date answers (「那下个月15号还清呢」 re-quotes, whatever the classifier said), and so do
        the form's own yes / no words."""
        text = message_text(tracker)
        if slot == "form_loan" and entity(tracker, "loan_ref"):
            return True
        if slot in ("settle_date", "settle_confirm") and entity(tracker, "date") and (
                latest_intent(tracker) != "promise_to_pay" or SETTLE_WORDS.search(text) or QUESTION.search(text)):
            return True  # 「那1月15号呢」「下个月15号还清呢」; 「后天一定还」 is a promise: noted
        if slot == "settle_confirm" and (any(w in text for w in RECORD_WORDS) or has_any(text, "decline") or is_strong_confirm(text) or is_short_answer(text, "confirm")
                                         or is_short_answer(text, "change") or latest_intent(tracker) in ("affirm", "deny")):
            return True
        return super().reads_as_answer(slot, tracker)

    async def validate_form_loan(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        try:
            client = backend()
            loan = pick(await open_loans(client, await require_customer(client, tracker)), tracker, value)
        except BackendError:
            return self.end(dispatcher, BUSY, "form_loan")
        if loan is None:
            return self.invalid(dispatcher, tracker, "form_loan", texts.text("settlement.loan_not_found"))
        return self.valid(form_loan=loan["loan_no_last4"])

    async def validate_settle_date(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        raw = value if _is_iso(value) else entity(tracker, "date")
        try:
            d = date.fromisoformat(str(raw))
        except (TypeError, ValueError):
            return self.invalid(dispatcher, tracker, "settle_date", texts.text("settlement.no_date"))
        if d < clock.today():
            return self.invalid(dispatcher, tracker, "settle_date", texts.text("settlement.past_date"))
        return self.valid(settle_date=d.isoformat())

    async def validate_settle_confirm(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = message_text(tracker) or str(value or "")
        new_date = entity(tracker, "date")
        if new_date and new_date != tracker.get_slot("settle_date"):  # 「那月底呢」: quote another date
            checked = await self.validate_settle_date(new_date, dispatcher, tracker, domain)
            return {**checked, "settle_confirm": None}
        if has_any(text, "decline"):  # 「先不用登记，我再考虑考虑」
            return self.valid(settle_confirm="no")
        if is_strong_confirm(text):
            return self.valid(settle_confirm="yes")
        if latest_intent(tracker) == "deny" or has_any(text, "change") or text.startswith(texts.raw("vocabulary.negation_prefix")):
            return self.valid(settle_confirm="no")
        if latest_intent(tracker) == "affirm" or has_any(text, "confirm"):
            return self.valid(settle_confirm="yes")
        return self.invalid(dispatcher, tracker, "settle_confirm", texts.text("settlement.ask_confirm_again"))


def _is_iso(value: Any) -> bool:
    try:
        date.fromisoformat(str(value))
        return True
    except ValueError:
        return False


async def _loan_and_quote(tracker: Tracker) -> tuple[dict, dict]:
    client = backend()
    loan = loan_by_last4(await open_loans(client, await require_customer(client, tracker)), tracker.get_slot("form_loan"))
    return loan, await client.payoff(loan["id"], tracker.get_slot("settle_date"))


class ActionAskSettleConfirm(Action):
    """The payoff quote for the chosen date (the backend's own figure), how to pay, and the offer."""

    def name(self) -> str:
        return "action_ask_settle_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        try:
            loan, quote = await _loan_and_quote(tracker)
        except (BackendError, TypeError):
            dispatcher.utter_message(text=BUSY)
            return []
        dispatcher.utter_message(text=quote_text(loan, quote) + kb("settlement_how"))
        dispatcher.utter_message(text=texts.text("settlement.offer"),
                                 buttons=list(texts.groups("settlement.buttons").values()))
        return []


class ActionSubmitSettlement(Action):
    def name(self) -> str:
        return "action_submit_settlement"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        reset = [SlotSet(s, None) for s in SETTLE_SLOTS] + [SlotSet("form_reasks", 0)]
        answer = tracker.get_slot("settle_confirm")
        if answer == "no":
            dispatcher.utter_message(text=kb("settlement_not_recorded"))
            return reset + offer_pending(dispatcher, tracker)
        if answer != "yes":
            return reset
        client = backend()
        channel, _ = split_sender(tracker.sender_id)
        try:
            customer_id = await require_customer(client, tracker)
            loan = loan_by_last4(await open_loans(client, customer_id), tracker.get_slot("form_loan"))
            intent = await client.record_settlement(loan["id"], {
                "customer_id": customer_id, "conversation": tracker.sender_id, "channel": channel,
                "settle_on": tracker.get_slot("settle_date")})
        except (BackendError, TypeError) as exc:
            refused = isinstance(exc, BackendError) and exc.refused
            dispatcher.utter_message(text=exc.message_zh if refused else BUSY + texts.text("settlement.not_recorded"))
            return reset
        dispatcher.utter_message(text=kb("settlement_recorded", settle_on=day(intent["settle_on"]),
                                         loan=loan_name(loan), total=yuan(intent["total"])))
        return reset + offer_pending(dispatcher, tracker)
