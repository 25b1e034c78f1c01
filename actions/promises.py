"""Promises to pay (「明天还」「发工资就还」): recorded in the backend, which the scheduler respects."""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import clock

from .account import AccountAnswer
from .backend_client import BackendClient, BackendUnavailable
from .formatting import day, loan_name, yuan
from .identity import split_sender
from .loan_choice import open_loans
from .workflows import WorkflowForm


class ValidatePromiseForm(WorkflowForm):
    """The promised date (today or later) and, when the borrower named one, the amount (not more
    than what is outstanding on the loan the promise is for); the shared form rules apply."""

    form = "promise_form"
    label = "还款承诺登记"
    slots = ("promise_date", "promise_amount", "promise_amount_pending")

    def name(self) -> str:
        return "validate_promise_form"

    async def required_slots(self, domain_slots, dispatcher, tracker, domain) -> list[str]:
        # An amount the borrower named is checked too (rasa_sdk validates required slots only).
        named = tracker.get_slot("promise_amount") is not None or tracker.get_slot("promise_amount_pending")
        return domain_slots + (["promise_amount"] if named else [])

    async def validate_promise_date(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> dict[str, Any]:
        try:
            d = date.fromisoformat(str(value))
        except ValueError:
            return self.invalid(dispatcher, tracker, "promise_date", "没听清具体日期，请告诉我哪天还款，例如「明天」或「12月5日」。")
        if d < clock.today():
            return self.invalid(dispatcher, tracker, "promise_date", "这个日期已经过去了，请告诉我今天或以后的日期。")
        amount = tracker.get_slot("promise_amount")
        # At activation only the form's own slots are candidates: an amount said with the date
        # (「明天还100万」) is checked here.
        checked = await self.validate_promise_amount(amount, dispatcher, tracker, domain) if amount else {}
        return {**self.valid(promise_date=d.isoformat()), **checked}

    async def validate_promise_amount(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> dict[str, Any]:
        try:
            amount = Decimal(str(value))
            loans = await open_loans(BackendClient(), int(tracker.get_slot("customer_id")))
        except (InvalidOperation, TypeError, ValueError, BackendUnavailable):
            return self.valid(promise_amount=None, promise_amount_pending=None)  # the backend checks it again
        loan = ActionRecordPromise.choose(loans, tracker) if loans else None
        if loan is None or Decimal(loan["total_outstanding"]) >= amount > 0:
            return self.valid(promise_amount=str(amount), promise_amount_pending=None)
        return {**self.invalid(dispatcher, tracker, "promise_amount",
                               f"{yuan(amount)}超过了您{loan_name(loan)}剩余应还的 {yuan(loan['total_outstanding'])}，"
                               "请重新告诉我打算还多少。"), "promise_amount_pending": "yes"}


class ActionRecordPromise(AccountAnswer):
    intent = "promise_to_pay"

    def name(self) -> str:
        return "action_record_promise"

    @staticmethod
    def choose(loans: list[dict], tracker: Tracker) -> dict | None:
        # A promise goes to the chosen loan, else the one in arrears, else the one due soonest.
        chosen = AccountAnswer.choose(loans, tracker)
        if chosen:
            return chosen
        return sorted(loans, key=lambda l: (-l["days_past_due"], l["next_due_date"] or "9999"))[0]

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        promised = tracker.get_slot("promise_date")
        if not promised:
            return []  # the form was cancelled, expired or handed to a person: it said so already
        channel, _ = split_sender(tracker.sender_id)
        amount = tracker.get_slot("promise_amount")
        promise = await client.record_promise(loan["id"], promised, amount,
                                              channel if channel in ("wechat", "sms", "web") else "web")
        dispatcher.utter_message(text=(
            f"好的，已为您登记：{day(promise['promised_date'])}还款 {yuan(promise['amount'])}（{loan_name(loan)}）。"
            "请在当天确保还款账户资金充足，感谢您的配合。"))
        return [SlotSet("promise_date", None), SlotSet("promise_amount", None), SlotSet("promise_amount_pending", None)]
