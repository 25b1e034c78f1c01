"""Promises to pay (「明天还」「发工资就还」): recorded in the backend, which the scheduler respects."""
from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import clock

from .account import AccountAnswer
from .formatting import day, loan_name, yuan
from .identity import split_sender


class ValidatePromiseForm(FormValidationAction):
    def name(self) -> str:
        return "validate_promise_form"

    def validate_promise_date(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> dict[str, Any]:
        try:
            d = date.fromisoformat(str(value))
        except ValueError:
            dispatcher.utter_message(text="没听清具体日期，请告诉我哪天还款，例如「明天」或「12月5日」。")
            return {"promise_date": None}
        if d < clock.today():
            dispatcher.utter_message(text="这个日期已经过去了，请告诉我今天或以后的日期。")
            return {"promise_date": None}
        return {"promise_date": d.isoformat()}


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
            dispatcher.utter_message(text="请问您预计哪天还款？例如「明天」或「12月5日」。")
            return []
        channel, _ = split_sender(tracker.sender_id)
        amount = tracker.get_slot("promise_amount")
        promise = await client.record_promise(loan["id"], promised, amount,
                                              channel if channel in ("wechat", "sms", "web") else "web")
        dispatcher.utter_message(text=(
            f"好的，已为您登记：{day(promise['promised_date'])}还款 {yuan(promise['amount'])}（{loan_name(loan)}）。"
            "请在当天确保还款账户资金充足，感谢您的配合。"))
        return [SlotSet("promise_date", None), SlotSet("promise_amount", None)]
