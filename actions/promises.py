"""Promises to pay (「明天还」「发工资就还」): recorded in the backend, which the scheduler respects."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import clock, contract
from bot.backend import BackendError, backend
from texts import raw, text

from .account import AccountAnswer
from .formatting import day, loan_name, yuan
from .identity import require_customer, split_sender
from .loan_choice import open_loans
from .workflows import WorkflowForm, entity


_REST = re.compile(raw("vocabulary.promise_rest"))
_CLAUSE = re.compile(raw("vocabulary.promise_clause"))


def instalments_promised(tracker: Tracker) -> list[tuple[str, str | None, bool]]:
    """Several dates in the message that started the promise (「明天先还两千，剩下的下周五还」):
    [(iso date, amount or None, is it "the rest")], one per clause that names a date, in order.
    An amount in a clause without a date goes with the next date. Fewer than two: one promise."""
    message = next((e for e in reversed(tracker.events) if e.get("event") == "user"
                    and sum(1 for x in (e.get("parse_data") or {}).get("entities") or [] if x.get("entity") == "date") >= 2),
                   None)
    if message is None:
        return []
    text = (message.get("parse_data") or {}).get("text") or message.get("text") or ""
    ents = sorted((x for x in message["parse_data"]["entities"] if x.get("entity") in ("date", "amount")),
                  key=lambda x: x.get("start", 0))
    bounds = [0] + [m.start() or m.end() for m in _CLAUSE.finditer(text) if m.start() > 0] + [len(text)]
    parts: list[tuple[str, str | None, bool]] = []
    carry: str | None = None
    for start, end in zip(bounds, bounds[1:]):
        inside = [x for x in ents if start <= x.get("start", -1) < end]
        dates = [x["value"] for x in inside if x["entity"] == "date"]
        amounts = [str(x["value"]) for x in inside if x["entity"] == "amount"]
        amount = amounts[0] if amounts else carry
        if not dates:
            carry = amount
            continue
        carry = None
        parts.append((str(dates[0]), amount, bool(_REST.search(text[start:end]))))
    today = clock.today().isoformat()
    return [p for p in parts if p[0] >= today]


class ValidatePromiseForm(WorkflowForm):
    """The promised date (today or later) and, when the borrower named one, the amount (not more
    than what is outstanding on the loan the promise is for); the shared form rules apply."""

    form = "promise_form"
    label = text("promise.form_label")
    slots = ("promise_date", "promise_amount", "promise_amount_pending")

    own_intent = "promise_to_pay"

    def name(self) -> str:
        return "validate_promise_form"

    def reads_as_answer(self, slot: str, tracker: Tracker) -> bool:
        return bool(entity(tracker, "date") or entity(tracker, "amount")) or super().reads_as_answer(slot, tracker)

    async def required_slots(self, domain_slots, dispatcher, tracker, domain) -> list[str]:
        # An amount the borrower named is checked too (rasa_sdk validates required slots only).
        named = tracker.get_slot("promise_amount") is not None or tracker.get_slot("promise_amount_pending")
        return domain_slots + (["promise_amount"] if named else [])

    async def validate_promise_date(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> dict[str, Any]:
        if isinstance(value, list):  # several dates (「明天先还两千，剩下的下周五还」): each is recorded
            value = min(value)      # by action_record_promise; the earliest is checked here
        try:
            d = date.fromisoformat(str(value))
        except ValueError:
            return self.invalid(dispatcher, tracker, "promise_date", text("promise.no_date"))
        if d < clock.today():
            return self.invalid(dispatcher, tracker, "promise_date", text("promise.past_date"))
        amount = tracker.get_slot("promise_amount")
        # At activation only the form's own slots are candidates: an amount said with the date
        # (「明天还100万」) is checked here.
        checked = await self.validate_promise_amount(amount, dispatcher, tracker, domain) if amount else {}
        return {**self.valid(promise_date=d.isoformat()), **checked}

    async def validate_promise_amount(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> dict[str, Any]:
        if isinstance(value, list):  # several amounts: checked with their dates when recorded
            value = value[0]
        try:
            amount = Decimal(str(value))
            client = backend()
            loans = await open_loans(client, await require_customer(client, tracker))
        except (InvalidOperation, TypeError, ValueError, BackendError):
            return self.valid(promise_amount=None, promise_amount_pending=None)  # the backend checks it again
        loan = ActionRecordPromise.choose(loans, tracker) if loans else None
        if loan is None or Decimal(loan["total_outstanding"]) >= amount > 0:
            return self.valid(promise_amount=str(amount), promise_amount_pending=None)
        return {**self.invalid(dispatcher, tracker, "promise_amount",
                               text("promise.too_much", amount=yuan(amount), loan=loan_name(loan),
                                    outstanding=yuan(loan["total_outstanding"]))), "promise_amount_pending": "yes"}


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
        done = [SlotSet("promise_date", None), SlotSet("promise_amount", None), SlotSet("promise_amount_pending", None)]
        if not promised:
            return []  # the form was cancelled, expired or handed to a person: it said so already
        channel, _ = split_sender(tracker.sender_id)
        channel = channel if channel in contract.values("channel") else "web"
        parts = instalments_promised(tracker)
        if len(parts) >= 2:  # 「明天先还两千，剩下的下周五还」: each part is its own promise
            named = sum((Decimal(a) for _, a, _ in parts if a), Decimal(0))
            recorded = []
            for when, amount, rest in parts:
                if rest and amount is None:
                    left = Decimal(str(loan["amount_due"])) - named
                    amount = str(left) if left > 0 else None
                    if amount is None:
                        continue
                promise = await client.record_promise(loan["id"], when, amount, channel)
                recorded.append(text("promise.instalment", date=day(promise["promised_date"]),
                                     amount=yuan(promise["amount"])))
            dispatcher.utter_message(text=text("promise.recorded_several", loan=loan_name(loan),
                                               instalments=text("format.series").join(recorded)))
            return done
        amount = tracker.get_slot("promise_amount")
        promise = await client.record_promise(loan["id"], promised, amount, channel)
        dispatcher.utter_message(text=text("promise.recorded", loan=loan_name(loan), instalment=text(
            "promise.instalment", date=day(promise["promised_date"]), amount=yuan(promise["amount"]))))
        return done
