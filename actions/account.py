"""Account answers from the backend's real figures, for verified borrowers only."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import date, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.backend import BackendClient, BackendError, backend
from bot.nlu.normalize import normalize
from bot.rules import rules_for
from texts import text, words

from .formatting import day, loan_name, yuan
from .identity import require_customer, verified_customer_id
from .knowledge import kb
from .plan_status import answer_plan_status, find_request, plan_reference
from .reading import has_any, message_text

OPEN_STATUSES = {"active", "overdue", "restructured"}
NOT_VERIFIED = text("account.not_verified")
BUSY = text("account.busy")


def latest_entity(tracker: Tracker, name: str) -> str | None:
    for ent in tracker.latest_message.get("entities", []) or []:
        if ent.get("entity") == name:
            return ent.get("value")
    return None


async def verified_or_told(dispatcher: CollectingDispatcher, client: BackendClient, tracker: Tracker) -> int | None:
    """The verified customer, or None after telling the borrower that verification comes first."""
    customer_id = await verified_customer_id(client, tracker)
    if customer_id is None:
        dispatcher.utter_message(text=NOT_VERIFIED)
    return customer_id


class AccountAnswer(Action, ABC):
    """Shared path of every account answer: verification, loan choice, backend errors.

    Subclasses set ``intent`` (for the loan-choice buttons) and implement ``answer``.
    """

    intent = ""
    include_settled = False

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = backend()
        try:
            customer_id = await verified_or_told(dispatcher, client, tracker)
            if customer_id is None:
                return []
            loans = all_loans = await client.loans(customer_id)
            if not self.include_settled:
                loans = [loan for loan in loans if loan["status"] in OPEN_STATUSES]
            if not loans:
                settled = [loan for loan in all_loans if loan["status"] == "settled"]
                dispatcher.utter_message(text="".join(settled_text(loan) for loan in settled)
                                         + text("account.no_open_loans"))
                return []
            return await self.respond(dispatcher, tracker, client, loans)
        except BackendError as exc:
            dispatcher.utter_message(text=exc.message_zh or BUSY)
        return []

    async def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, client: BackendClient,
                      loans: list[dict]) -> list:
        """Answer about one loan: the only one, the one chosen, or ask which."""
        chosen = self.choose(loans, tracker)
        if chosen is None:
            self.ask_which(dispatcher, loans)
            return []
        return await self.answer(dispatcher, tracker, client, chosen) + [SlotSet("loan_ref", chosen["loan_no_last4"])]

    @staticmethod
    def choose(loans: list[dict], tracker: Tracker) -> dict | None:
        if len(loans) == 1:
            return loans[0]
        ref = latest_entity(tracker, "loan_ref") or tracker.get_slot("loan_ref")
        return next((loan for loan in loans if loan["loan_no_last4"] == ref), None)

    def ask_which(self, dispatcher: CollectingDispatcher, loans: list[dict]) -> None:
        buttons = [{"title": loan_name(loan),
                    "payload": f"/{self.intent}{json.dumps({'loan_ref': loan['loan_no_last4']})}"} for loan in loans]
        dispatcher.utter_message(text=text("account.which_loan"), buttons=buttons)

    @abstractmethod
    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, client: BackendClient,
                     loan: dict) -> list:
        """Write the answer for one loan; return extra events."""


def settled_text(loan: dict) -> str:
    """「您的个人消费贷（尾号1234）已于2026年11月3日（周二）结清，无需再还款。」"""
    when = (text("account.settled.dated", date=day(loan["settled_on"], with_year=True)) if loan.get("settled_on")
            else text("account.settled.undated"))
    return text("account.settled.loan", loan=loan_name(loan), when=when)


def balance_text(loan: dict) -> str:
    parts = [text("account.balance.principal", amount=yuan(loan["outstanding_principal"])),
             text("account.balance.interest", amount=yuan(loan["outstanding_interest"]))]
    if loan["outstanding_fees"] != "0.00":
        parts.append(text("account.balance.fees", amount=yuan(loan["outstanding_fees"])))
    if loan["penalty_interest"] != "0.00":
        parts.append(text("account.balance.penalty", amount=yuan(loan["penalty_interest"])))
    lines = [text("account.balance.total", loan=loan_name(loan), total=yuan(loan["total_outstanding"]),
                  parts=text("format.enumeration").join(parts))]
    if loan["days_past_due"] > 0:
        lines.append(text("account.balance.overdue", days=loan["days_past_due"], amount=yuan(loan["overdue_amount"]),
                          penalty=yuan(loan["penalty_interest"])))
    if loan["next_due_date"]:
        lines.append(text("account.balance.next_due", date=day(loan["next_due_date"]),
                          amount=yuan(loan["next_instalment_amount"])))
    return "".join(lines)


class ActionAnswerBalance(AccountAnswer):
    intent = "query_balance"

    def name(self) -> str:
        return "action_answer_balance"

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        dispatcher.utter_message(text=balance_text(loan))
        return []


class ActionAnswerSchedule(AccountAnswer):
    intent = "query_repayment_schedule"

    def name(self) -> str:
        return "action_answer_schedule"

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        rows = [r for r in await client.schedule(loan["id"]) if r["amount_outstanding"] != "0.00"]
        if not rows:
            dispatcher.utter_message(text=text("account.schedule.nothing_due", loan=loan_name(loan)))
            return []
        upcoming = text("format.series").join(f"{day(r['due_date'])} {yuan(r['amount_outstanding'])}" for r in rows[:3])
        last = rows[-1]
        answer = text("account.schedule.summary", loan=loan_name(loan), count=len(rows), upcoming=upcoming,
                      last_date=day(last["due_date"], with_year=True))
        if loan["days_past_due"] > 0:
            answer += text("account.schedule.overdue", days=loan["days_past_due"])
        dispatcher.utter_message(text=answer)
        return []


class ActionAnswerLoanStatus(AccountAnswer):
    intent = "query_loan_status"
    include_settled = True

    def name(self) -> str:
        return "action_answer_loan_status"

    async def respond(self, dispatcher, tracker, client, loans) -> list:
        # 「我的申请怎么样了」 is about the repayment-plan request, when there is one.
        reference = plan_reference(tracker)
        if reference or has_any(message_text(tracker), "application"):
            customer_id = await require_customer(client, tracker)
            if reference or await find_request(client, customer_id, None):
                await answer_plan_status(dispatcher, client, customer_id, reference)
                return []
        # Status covers every loan at once, settled ones included: no need to pick one.
        lines = []
        for loan in loans:
            if loan["status"] == "settled":
                lines.append(settled_text(loan))
            elif loan["days_past_due"] > 0:
                lines.append(text("account.status.overdue", loan=loan_name(loan), days=loan["days_past_due"],
                                  amount=yuan(loan["overdue_amount"])))
            elif loan["status"] == "restructured":
                lines.append(text("account.status.restructured", loan=loan_name(loan)))
            else:
                lines.append(text("account.status.current", loan=loan_name(loan)))
        dispatcher.utter_message(text="\n".join(lines))
        return []

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        return await self.respond(dispatcher, tracker, client, [loan])


class ActionAnswerPaymentHistory(AccountAnswer):
    intent = "query_payment_history"
    include_settled = True

    def name(self) -> str:
        return "action_answer_payment_history"

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        payments = await client.payments(loan["id"])
        if not payments:
            dispatcher.utter_message(text=text("account.history.none", loan=loan_name(loan)))
            return []
        recent = text("format.series").join(f"{day(p['paid_on'], with_year=True)} {yuan(p['amount'])}"
                                            for p in payments[:3])
        dispatcher.utter_message(text=text("account.history.recent", loan=loan_name(loan), recent=recent,
                                           count=len(payments)))
        return []


class ActionCheckPaymentMade(AccountAnswer):
    intent = "report_payment_made"
    include_settled = True

    def name(self) -> str:
        return "action_check_payment_made"

    @staticmethod
    def window_start(as_of: date, named: date | None) -> date:
        """Where to start looking: the last few days, or back to the day the borrower named."""
        rules = rules_for("payment_check")
        start = as_of - timedelta(days=rules["default_days_back"])
        if named and named < start:
            start = max(named, as_of - timedelta(days=rules["max_days_back"]))
        return start

    @staticmethod
    def period_start(message: str, today: date) -> str | None:
        """「上个月」「上周」 name no day, only a period: the check looks back to its first day.
        (The entity extractor's dates are days; these periods only mean something here.)"""
        if any(w in message for w in words("vocabulary.period.last_month")):
            return (today.replace(day=1) - timedelta(days=1)).replace(day=1).isoformat()
        if any(w in message for w in words("vocabulary.period.last_week")):
            return (today - timedelta(days=today.weekday() + 7)).isoformat()
        if any(w in message for w in words("vocabulary.period.this_month")):
            return today.replace(day=1).isoformat()
        return None

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        if loan["status"] == "settled":
            dispatcher.utter_message(text=settled_text(loan) + kb("settled_still_contacted"))
            return []
        payments = await client.payments(loan["id"])
        as_of = date.fromisoformat(loan["as_of"])
        named = latest_entity(tracker, "date")
        if named is None or named > as_of.isoformat():
            named = self.period_start(normalize(tracker.latest_message.get("text") or ""), as_of) or (named if named and named <= as_of.isoformat() else None)
        start = self.window_start(as_of, date.fromisoformat(named) if named else None)
        recent = [p for p in payments if p["paid_on"] >= start.isoformat()]
        if named and named <= as_of.isoformat():
            # The payment nearest the day they named, not a later one (payments come newest first).
            recent = sorted((p for p in recent if p["paid_on"] >= named), key=lambda p: p["paid_on"]) or recent
        if recent:
            p = recent[0]
            answer = text("account.payment_check.received", date=day(p["paid_on"]), amount=yuan(p["amount"]),
                          loan=loan_name(loan))
            if loan["status"] != "settled" and loan["days_past_due"] > 0:
                answer += text("account.payment_check.still_overdue", amount=yuan(loan["overdue_amount"]))
            dispatcher.utter_message(text=answer)
        else:
            dispatcher.utter_message(text=text("account.payment_check.not_found", loan=loan_name(loan),
                                               since=day(start)))
        return []
