"""What every workflow form shares (repayment plan, early settlement, complaint).

* 「算了」 cancels: nothing is submitted.
* A form left untouched for ``conversation_forms.idle_minutes`` expires on the next message.
* An invalid answer is re-asked with a clear message at most ``max_reasks`` times; the next
  invalid one ends the form and offers a person.
* A form is only left on purpose: 「算了」 (also inside a longer sentence such as 「不弄了，我自己再想
  办法」), or a person asked for (a rule in data/workflows.yml). Every other message reaches the
  validation here, whatever the classifier thought: the form first reads it as an answer to what
  it asked (its own confirm / change words, the entity it wants); if it is not one, a question is
  answered and the form asks again, another request (a complaint, a promise, an unsubscribe) is
  noted in ``pending_request`` and offered when the form is done, never acted on unasked.
Words come from config/form_words.yml, limits from the business rules the backend serves (bot/rules.py).
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.rules import rules_for
from texts import raw, section

from .account import (
    ActionAnswerBalance, ActionAnswerLoanStatus, ActionAnswerPaymentHistory, ActionAnswerSchedule, ActionCheckPaymentMade,
)
from .complaint_status import ActionAnswerComplaintStatus
from .knowledge import kb
from .answer_context import OFFER_HUMAN, ask
from .reading import WORDS_PATH, entity, form_words, has_any, latest_intent, message_text, words  # noqa: F401
from .policy import ActionAnswerInterestFees, ActionAnswerOverdueConsequences, ActionAnswerRepaymentMethod

STOP = -1  # form_reasks value a validator returns to end the form (see WorkflowForm.run)
HUMAN_BUTTONS = [{"title": title, "payload": f"/{intent}"} for intent, title in section("workflow.human_buttons").items()]
_PUNCT = re.compile(r"[\s\W_]+")
# Questions a free-text slot (the reason for a plan request) may get instead of an answer.
ASIDE_ANSWERS = {
    "query_balance": ActionAnswerBalance, "query_repayment_schedule": ActionAnswerSchedule,
    "query_loan_status": ActionAnswerLoanStatus, "query_payment_history": ActionAnswerPaymentHistory,
    "ask_repayment_method": ActionAnswerRepaymentMethod, "ask_interest_fees": ActionAnswerInterestFees,
    "ask_overdue_consequences": ActionAnswerOverdueConsequences,
}
QUESTION = re.compile(raw("vocabulary.question"))
_ASKING = re.compile(raw("vocabulary.asking"))
# Requests that are processes of their own: noted inside another form, offered when it is done.
PROCESS_INTENTS = ("complaint", "request_repayment_plan", "request_early_repayment", "promise_to_pay",
                   "unsubscribe", "resubscribe")
# Small talk answered in a word; the form then asks again.
SMALL_TALK = ("greet", "thank", "goodbye", "busy_later", "bot_challenge")


def is_cancel(text: str) -> bool:
    """「算了」「那算了吧」「不申请了」, or a sentence that opens or closes with one (「不弄了，我自己再
    想办法」「我想了想还是算了」). A long message that merely contains one in the middle (a complaint
    quoting someone: 「他说算了不跟我计较，结果第二天又打」) is an answer, not a cancellation."""
    bare = _PUNCT.sub("", text)
    clauses = [c for c in re.split(raw("vocabulary.message_breaks"), text) if c]
    for word in words("cancel"):
        if word not in bare:
            continue
        if len(bare.replace(word, "")) <= 3 or bare.startswith(word) and len(bare) <= 10:
            return True
        # The first or last clause is (nearly) only the cancel word: 「不弄了，…」「…，还是算了吧」.
        for clause in (clauses[0], clauses[-1]) if clauses else ():
            rest = _PUNCT.sub("", clause).replace(word, "")
            if word in clause and len(re.sub(raw("vocabulary.cancel_filler"), "", rest)) <= 2:
                return True
    return False


def is_strong_confirm(text: str) -> bool:
    """「就这样吧」「可以，就按这个来」「帮我提交」: a confirmation in any message, whatever the classifier
    read (「就这样吧」 alone reads as goodbye)."""
    return has_any(text, "confirm_phrases")


def is_short_answer(text: str, key: str) -> bool:
    """A short message made of the form's own words (「好的」「可以」「不行」), not a sentence that
    merely contains one (「可以问下利息吗」)."""
    bare = _PUNCT.sub("", text)
    return has_any(bare, key) and len(bare) <= 8 and not QUESTION.search(text) and not _ASKING.search(text)


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


def aside_action(intent: str):
    """The action that answers a question asked in the middle of a form."""
    if intent in ASIDE_ANSWERS:
        return ASIDE_ANSWERS[intent]
    if intent == "report_payment_made":
        return ActionCheckPaymentMade
    return ActionAnswerComplaintStatus


# What a noted request is called when the form offers it afterwards.
PENDING_LABELS = section("workflow.pending_labels")


def offer_pending(dispatcher: CollectingDispatcher, tracker: Tracker) -> list:
    """After a form: offer the request noted in the middle of it (never act on it unasked)."""
    pending = tracker.get_slot("pending_request")
    if not pending:
        return []
    dispatcher.utter_message(text=kb("form_pending", request=PENDING_LABELS.get(pending, pending)))
    return [SlotSet("pending_request", None)]


def form_rules() -> dict:
    return rules_for("conversation_forms")


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
            if not await self.on_leave(dispatcher, tracker):
                dispatcher.utter_message(text=kb("form_expired", form=self.label, minutes=form_rules()["idle_minutes"]))
            return self.stop_events() + offer_pending(dispatcher, tracker)
        if was_active and is_cancel(message_text(tracker)):
            if not await self.on_leave(dispatcher, tracker):
                dispatcher.utter_message(text=kb("form_cancelled"))
            # 「算了，先问下我还剩几期」: the question in the same message is answered, and a request
            # noted during the form (a complaint) is offered, not lost with the form.
            await self.answer_after_leaving(dispatcher, tracker, domain)
            return self.stop_events() + offer_pending(dispatcher, tracker)
        requested = tracker.get_slot("requested_slot")
        if was_active and requested and not self.reads_as_answer(requested, tracker):
            handled = await self.interruption(dispatcher, tracker, domain, requested)
            if handled is not None:
                return handled
        # A start action's reset (SlotSet to None) is not an answer: validate only real values.
        candidates = tracker.slots_to_validate
        tracker.slots_to_validate = lambda: {k: v for k, v in candidates().items() if v is not None}
        events = await super().run(dispatcher, tracker, domain)
        if any(isinstance(e, dict) and e.get("name") == "form_reasks" and e.get("value") == STOP for e in events):
            await self.on_leave(dispatcher, tracker)
            return self.stop_events() + [ask(OFFER_HUMAN)]  # it offered a person: 「好的」 accepts
        return events

    async def answer_after_leaving(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: dict[str, Any]) -> None:
        """The cancelling message also asks about the account (「算了，先问下我还剩几期」): answer it."""
        action = ASIDE_ANSWERS.get(latest_intent(tracker))
        text = message_text(tracker)
        if action is not None and (QUESTION.search(text) or _ASKING.search(text)):
            await action().run(dispatcher, tracker, domain)

    async def on_leave(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
        """The form ends unfinished (cancel, expiry, too many invalid answers). A form that keeps
        what was said (the complaint draft) does it here and returns True when it told the borrower."""
        return False

    def reads_as_answer(self, slot: str, tracker: Tracker) -> bool:
        """Is the message an answer to ``slot`` in this form's own terms (its words, the entity it
        wants)? Then the validator takes it whatever the classifier said. Subclasses add theirs."""
        text = message_text(tracker)
        if not text:
            return True  # a button payload
        return latest_intent(tracker) not in ASIDE_ANSWERS and latest_intent(tracker) not in PROCESS_INTENTS \
            and latest_intent(tracker) not in SMALL_TALK + ("report_payment_made", "query_complaint_status")

    async def interruption(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any],
                           requested: str) -> list | None:
        """Something other than an answer: answer or note it and ask ``requested`` again (the form
        re-asks an empty requested slot). None lets the validator deal with it (a re-ask)."""
        intent = latest_intent(tracker)
        again = [SlotSet(requested, None)]
        if intent in ASIDE_ANSWERS or intent in ("report_payment_made", "query_complaint_status"):
            await aside_action(intent)().run(dispatcher, tracker, domain)
            dispatcher.utter_message(text=kb("form_resume", form=self.label))
            return again
        if intent == "bot_challenge":
            dispatcher.utter_message(response="utter_iamabot")
            return again
        if intent in ("goodbye", "busy_later"):
            dispatcher.utter_message(text=kb("form_paused", form=self.label, minutes=form_rules()["idle_minutes"]))
            return again
        if intent in ("greet", "thank"):
            return again
        if intent in PROCESS_INTENTS and intent != self.own_intent:
            dispatcher.utter_message(text=kb("form_noted", request=PENDING_LABELS[intent], form=self.label))
            return again + [SlotSet("pending_request", intent)]
        return None

    own_intent = ""

    async def answered_aside(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> bool:
        """A free-text slot got a question (「利息多少」): answer it; the form then asks again."""
        action = ASIDE_ANSWERS.get(latest_intent(tracker))
        if action is None or not QUESTION.search(message_text(tracker)):
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
