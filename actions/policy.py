"""Answers from the knowledge base (texts/zh/knowledge.yml), personalised when verified."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.backend import BackendClient, BackendError, backend
from texts import text

from .account import OPEN_STATUSES
from .formatting import percent, yuan
from .identity import verified_customer_id
from .knowledge import kb


class KnowledgeAnswer(Action, ABC):
    """Say one knowledge-base text; subclasses may add a personal part for verified borrowers."""

    key = ""

    @abstractmethod
    def name(self) -> str:
        """The action's name in domain.yml."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        dispatcher.utter_message(text=kb(self.key))
        try:
            extra = await self.personal(backend(), tracker)
        except BackendError:
            extra = None
        if extra:
            dispatcher.utter_message(text=extra)
        return []

    async def personal(self, client: BackendClient, tracker: Tracker) -> str | None:
        return None


class ActionAnswerOverdueConsequences(KnowledgeAnswer):
    key = "overdue_consequences"

    def name(self) -> str:
        return "action_answer_overdue_consequences"


class ActionAnswerRepaymentMethod(KnowledgeAnswer):
    key = "repayment_methods"

    def name(self) -> str:
        return "action_answer_repayment_method"

    async def personal(self, client, tracker) -> str | None:
        customer_id = await verified_customer_id(client, tracker)
        if customer_id is None:
            return None
        customer = await client.customer(customer_id)
        if customer and customer.get("card_last4"):
            return kb("repayment_card", card_bank=customer["card_bank"], card_last4=customer["card_last4"])
        return None


class ActionAnswerInterestFees(KnowledgeAnswer):
    key = "interest_fees"

    def name(self) -> str:
        return "action_answer_interest_fees"

    async def personal(self, client, tracker) -> str | None:
        customer_id = await verified_customer_id(client, tracker)
        if customer_id is None:
            return None
        loans = [loan for loan in await client.loans(customer_id) if loan["status"] in OPEN_STATUSES]
        return "\n".join(
            kb("interest_fees_loan", product_name=loan["product_name"], loan_no_last4=loan["loan_no_last4"],
               annual_rate=percent(loan["annual_rate"]), penalty_interest=yuan(loan["penalty_interest"]))
            for loan in loans) or None


class ActionOutOfScope(KnowledgeAnswer):
    key = "capabilities"

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(self, dispatcher, tracker, domain) -> list:
        dispatcher.utter_message(text=text("service.out_of_scope"))
        return await super().run(dispatcher, tracker, domain)


class ActionBusyLater(KnowledgeAnswer):
    key = "busy_later"

    def name(self) -> str:
        return "action_busy_later"
