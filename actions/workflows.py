"""What every workflow form shares (repayment plan, early settlement, complaint).

* 「算了」 cancels: nothing is submitted.
* A form left untouched for ``conversation_forms.idle_minutes`` expires on the next message.
* An invalid answer is re-asked with a clear message at most ``max_reasks`` times; the next
  invalid one ends the form and offers a person.
* Questions in the middle of a form are answered by rules (data/workflows.yml), then the form asks
  again: the slot mappings exclude those intents, so the form rejects them instead of taking the
  question as an answer.
Words come from config/form_words.yml, limits from config/business.yml.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.nlu.normalize import normalize

from .account import ActionAnswerBalance, ActionAnswerLoanStatus, ActionAnswerPaymentHistory, ActionAnswerSchedule
from .knowledge import business_rules, kb
from .answer_context import OFFER_HUMAN, ask
from .policy import ActionAnswerInterestFees, ActionAnswerOverdueConsequences, ActionAnswerRepaymentMethod

WORDS_PATH = Path(__file__).resolve().parents[1] / "config" / "form_words.yml"
STOP = -1  # form_reasks value a validator returns to end the form (see WorkflowForm.run)
HUMAN_BUTTONS = [{"title": "转人工", "payload": "/request_human"}, {"title": "不用了", "payload": "/deny"}]
_PUNCT = re.compile(r"[\s\W_]+")
# Questions a free-text slot (the reason for a plan request) may get instead of an answer.
ASIDE_ANSWERS = {
    "query_balance": ActionAnswerBalance, "query_repayment_schedule": ActionAnswerSchedule,
    "query_loan_status": ActionAnswerLoanStatus, "query_payment_history": ActionAnswerPaymentHistory,
    "ask_repayment_method": ActionAnswerRepaymentMethod, "ask_interest_fees": ActionAnswerInterestFees,
    "ask_overdue_consequences": ActionAnswerOverdueConsequences,
}
_QUESTION = re.compile(r"[?？吗呢]|多少|怎么|什么|几号|哪|如何|是否|会不会")


@lru_cache(maxsize=1)
def form_words() -> dict:
    return yaml.safe_load(WORDS_PATH.read_text(encoding="utf-8"))


def words(key: str) -> list[str]:
    return form_words()[key]


def message_text(tracker: Tracker) -> str:
    """The borrower's latest message, normalised; empty for a button payload (「/intent{...}」)."""
    text = tracker.latest_message.get("text") or ""
    return "" if text.startswith("/") else normalize(text).strip()


def has_any(text: str, key: str) -> bool:
    return any(w in text for w in words(key))


def latest_intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def entity(tracker: Tracker, name: str) -> str | None:
    for ent in tracker.latest_message.get("entities") or []:
        if ent.get("entity") == name:
            return ent.get("value")
    return None


def is_cancel(text: str) -> bool:
    """「算了」「那算了吧」「不申请了」: a short message that is mostly a cancel word. A long message that
    merely contains one (a complaint quoting someone) is an answer, not a cancellation."""
    bare = _PUNCT.sub("", text)
    for word in words("cancel"):
        if word in bare and (len(bare.replace(word, "")) <= 3 or bare.startswith(word) and len(bare) <= 10):
            return True
    return False


def _ts(event: dict) -> float | None:
    return event.get("timestamp")


def idle_minutes(tracker: Tracker) -> float:
    """Minutes between the latest user message and what the bot did before it."""
    events = tracker.events
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=None)
    if last_user is None or _ts(events[last_user]) is None:
        return 0.0
    before = next((e for e in reversed(events[:last_user]) if e.get("event") in ("bot", "action", "slot")
                   and _ts(e) is not None), None)
    if before is None:
        return 0.0
    return (events[last_user]["timestamp"] - before["timestamp"]) / 60


def form_rules() -> dict:
    return business_rules()["conversation_forms"]


class WorkflowForm(FormValidationAction, ABC):
    """Validation shared by the workflow forms. Subclasses set ``form``, ``label`` (Chinese name of
    the process, for the expiry message) and ``slots`` (every slot the form fills), and name()."""

    form = ""
    label = ""
    slots: tuple[str, ...] = ()

    @abstractmethod
    def name(self) -> str:
        """validate_<form> (abstract so that the action server does not register this base)."""

    def stop_events(self) -> list:
        return [SlotSet(s, None) for s in self.slots] + [SlotSet("form_reasks", 0), SlotSet("requested_slot", None)]

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        was_active = (tracker.active_loop or {}).get("name") == self.form
        if was_active and idle_minutes(tracker) >= form_rules()["idle_minutes"]:
            dispatcher.utter_message(text=kb("form_expired", form=self.label, minutes=form_rules()["idle_minutes"]))
            return self.stop_events()
        if was_active and is_cancel(message_text(tracker)):
            dispatcher.utter_message(text=kb("form_cancelled"))
            return self.stop_events()
        # A start action's reset (SlotSet to None) is not an answer: validate only real values.
        candidates = tracker.slots_to_validate
        tracker.slots_to_validate = lambda: {k: v for k, v in candidates().items() if v is not None}
        events = await super().run(dispatcher, tracker, domain)
        if any(isinstance(e, dict) and e.get("name") == "form_reasks" and e.get("value") == STOP for e in events):
            return self.stop_events() + [ask(OFFER_HUMAN)]  # it offered a person: 「好的」 accepts
        return events

    async def answered_aside(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> bool:
        """A free-text slot got a question (「利息多少」): answer it; the form then asks again."""
        action = ASIDE_ANSWERS.get(latest_intent(tracker))
        if action is None or not _QUESTION.search(message_text(tracker)):
            return False
        await action().run(dispatcher, tracker, domain)
        return True

    def valid(self, **values: Any) -> dict[str, Any]:
        """A valid answer: store it and reset the re-ask count."""
        return {**values, "form_reasks": 0}

    def invalid(self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, message: str) -> dict[str, Any]:
        """Re-ask with ``message``, or after ``max_reasks`` re-asks end the form and offer a person."""
        count = int(tracker.get_slot("form_reasks") or 0) + 1
        if count > form_rules()["max_reasks"]:
            dispatcher.utter_message(text=kb("form_offer_human"), buttons=HUMAN_BUTTONS)
            return {slot: None, "form_reasks": STOP}
        dispatcher.utter_message(text=message)
        return {slot: None, "form_reasks": count}

    def end(self, dispatcher: CollectingDispatcher, message: str, slot: str) -> dict[str, Any]:
        """A refusal the borrower cannot fix by answering again (settled loan, a request pending)."""
        dispatcher.utter_message(text=message)
        return {slot: None, "form_reasks": STOP}
