"""Complaints in chat: the form and the ticket (its status and staff updates: actions/complaint_status.py).

complaint -> action_complaint_start -> complaint_form: category, what happened (kept verbatim),
what the borrower wants, how to reach them. No verification is needed to complain (a wrongly
contacted third party may complain too); a verified borrower's ticket is linked to them. The
backend sets the reference, the 15-day deadline, the priority, links repeats within 7 days and
pauses reminders for collection complaints; the bot tells the borrower all of it.
"""
from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

import texts
from bot.backend import BackendError, backend
from bot.nlu.normalize import normalize
from bot.rules import rules_for
from texts import raw, section

from .account import BUSY
from .answer_context import OFFER_HUMAN, ask
from .complaint_draft import save_complaint_draft
from .formatting import day
from .identity import split_sender, verified_customer_id
from .knowledge import kb
from .workflows import (
    ASIDE_ANSWERS, HUMAN_BUTTONS, QUESTION, WorkflowForm, entity, has_any, latest_intent, message_text, offer_pending,
    words,
)

COMPLAINT_SLOTS = ("complaint_category", "complaint_description", "complaint_outcome", "complaint_contact")
CATEGORIES = {label: code for code, label in section("labels.complaint_category").items()}  # 「催收方式」: collection
_GENERIC = re.compile(raw("vocabulary.complaint_generic"))
_NOTHING = re.compile(raw("vocabulary.complaint_no_outcome"))
_DIGITS = re.compile(r"\d{7,}")


def category_of(text: str, tracker: Tracker) -> str | None:
    """The category the borrower chose or named (button, 「隱私」, 「催收方式」), else the first one their
    words describe (「你们天天打电话给我家人」 -> collection)."""
    value = entity(tracker, "complaint_category") or next((c for c in CATEGORIES if c in text), None)
    chosen = CATEGORIES.get(value, value if value in CATEGORIES.values() else None)
    return chosen or next(iter(categories_in(text)), None)


def categories_in(text: str) -> list[str]:
    """Every category the words describe, in config order (form_words.yml complaint_categories)."""
    found = [code for code, keys in words("complaint_categories").items() if any(k in text for k in keys)]
    if "privacy" not in found and has_any(text, "third_parties") and has_any(text, "contact_verbs"):
        found.append("privacy")
    return found


def demand_in(text: str) -> str | None:
    """The clauses of a story that say what the borrower wants (「别再打给我家人了」)."""
    clauses = [c for c in re.split(raw("vocabulary.clause_breaks"), text) if c.strip()]
    wanted = [c.strip() for c in clauses if has_any(c, "complaint_demands")]
    return raw("vocabulary.clause_joiner").join(wanted)[:1000] if wanted else None


def asks_third_party_stop(text: str) -> bool:
    """「别再打给我家人」: stop contacting someone other than the borrower."""
    return bool(demand_in(text)) and has_any(text, "third_parties")


def telling(text: str) -> bool:
    """Does the message say what happened (「你们催收天天打电话骚扰我」), not just 「我要投诉」?"""
    return len(_GENERIC.sub("", text)) >= 6


def raw_text(tracker: Tracker) -> str:
    """The borrower's words as typed: a complaint is kept verbatim."""
    return (tracker.latest_message.get("text") or "").strip()


class ActionComplaintStart(Action):
    def name(self) -> str:
        return "action_complaint_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        text = message_text(tracker)
        dispatcher.utter_message(text=kb("complaint_start"))
        told = telling(text)
        # A story told first fills what it says; the form asks only for the rest.
        prefill = {"complaint_category": category_of(text, tracker),
                   "complaint_description": raw_text(tracker)[:4000] if told else None,
                   "complaint_outcome": demand_in(text) if told else None}
        return [SlotSet(s, None) for s in COMPLAINT_SLOTS] + [SlotSet("form_reasks", 0),
                                                               SlotSet("complaint_other_categories", None)] + [
            SlotSet(k, v) for k, v in prefill.items() if v] + [SlotSet("workflow_next", "complaint_form")]


class ValidateComplaintForm(WorkflowForm):
    form = "complaint_form"
    label = texts.text("complaint.form.label")
    slots = COMPLAINT_SLOTS

    own_intent = "complaint"

    def name(self) -> str:
        return "validate_complaint_form"

    def reads_as_answer(self, slot: str, tracker: Tracker) -> bool:
        """A complaint is told in the borrower's words: everything is an answer except a short
        question about the account (「我还欠多少？」), which is answered, then the form asks again.
        「别再打给我家人」 is what they want, never an unsubscribe."""
        text = message_text(tracker)
        if slot == "complaint_category" and (category_of(text, tracker) or telling(text)):
            return True
        if slot == "complaint_contact" and (entity(tracker, "phone") or has_any(text, "contact_here")
                                            or has_any(text, "contact_registered")):
            return True
        if slot in ("complaint_description", "complaint_outcome"):
            intent = latest_intent(tracker)
            question = intent in ASIDE_ANSWERS or intent in ("query_complaint_status", "report_payment_made")
            return not (question and QUESTION.search(text) and len(text) <= 15) and intent not in ("greet", "thank")
        return super().reads_as_answer(slot, tracker)

    async def on_leave(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
        ticket = await save_complaint_draft(tracker)
        if ticket is None:
            return False
        dispatcher.utter_message(text=kb("complaint_draft_kept", reference=ticket["reference"]))
        return True

    async def validate_complaint_category(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = message_text(tracker) or str(value or "")
        category = value if value in CATEGORIES.values() else category_of(text, tracker)
        if category:
            others = [c for c in categories_in(text) if c != category]
            return self.valid(complaint_category=category, **({"complaint_other_categories": others} if others else {}))
        if telling(text) and not tracker.get_slot("complaint_description"):
            # They told the story instead of picking a category: keep it, file it under 其他.
            return self.valid(complaint_category="other", complaint_description=raw_text(tracker)[:4000],
                              **self.demand(tracker, text))
        return self.invalid(dispatcher, tracker, "complaint_category", texts.text("complaint.form.ask_category_again"))

    async def validate_complaint_description(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = str(value or "").strip()
        if len(re.sub(r"[\s\W_]", "", text)) < 2:
            return self.invalid(dispatcher, tracker, "complaint_description",
                                texts.text("complaint.form.ask_description_again"))
        return self.valid(complaint_description=text[:4000], **self.demand(tracker, message_text(tracker) or text))

    @staticmethod
    def demand(tracker: Tracker, text: str) -> dict[str, Any]:
        """The outcome a story already states (「…别再打了」), unless it is known."""
        wanted = None if tracker.get_slot("complaint_outcome") else demand_in(text)
        return {"complaint_outcome": wanted} if wanted else {}

    async def validate_complaint_outcome(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = str(value or "").strip()
        return self.valid(complaint_outcome="-" if not text or _NOTHING.match(text) else text[:1000])

    async def validate_complaint_contact(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = message_text(tracker) or str(value or "")
        phone = entity(tracker, "phone")
        if phone:
            return self.valid(complaint_contact=texts.text("complaint.contact.phone", phone=phone))
        if _DIGITS.search(text):
            return self.invalid(dispatcher, tracker, "complaint_contact", texts.text("complaint.form.phone_incomplete"))
        if has_any(text, "contact_registered"):
            if tracker.get_slot("verified"):
                return self.valid(complaint_contact=texts.text("complaint.contact.registered_phone"))
            return self.invalid(dispatcher, tracker, "complaint_contact", texts.text("complaint.form.not_verified_phone"))
        if has_any(text, "contact_here"):
            return self.valid(complaint_contact=texts.text("complaint.contact.this_channel"))
        return self.invalid(dispatcher, tracker, "complaint_contact", texts.text("complaint.form.ask_contact_again"))


class ActionSubmitComplaint(Action):
    def name(self) -> str:
        return "action_submit_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        reset = [SlotSet(s, None) for s in COMPLAINT_SLOTS] + [SlotSet("form_reasks", 0),
                                                               SlotSet("complaint_other_categories", None)]
        if not tracker.get_slot("complaint_description") or not tracker.get_slot("complaint_contact"):
            return reset  # cancelled, expired or handed over (kept as a draft then)
        client = backend()
        channel, _ = split_sender(tracker.sender_id)
        outcome = tracker.get_slot("complaint_outcome")
        category = tracker.get_slot("complaint_category") or "other"
        told = " ".join(normalize(str(tracker.get_slot(s) or "")) for s in ("complaint_description", "complaint_outcome"))
        named = list(tracker.get_slot("complaint_other_categories") or []) + categories_in(told)
        others = list(dict.fromkeys(c for c in named if c not in (category, "other")))
        try:
            ticket = await client.open_complaint({
                "conversation": tracker.sender_id, "channel": channel,
                "customer_id": await verified_customer_id(client, tracker),
                "category": category, "other_categories": others,
                "description": tracker.get_slot("complaint_description"),
                "desired_outcome": None if outcome in (None, "-") else outcome,
                "contact": tracker.get_slot("complaint_contact")})
        except BackendError as exc:
            dispatcher.utter_message(text=exc.message_zh or BUSY + texts.text("complaint.form.not_filed"))
            return reset
        due = day(ticket["due_date"])
        if ticket["outcome"] == "appended":  # a draft completed in place reads as filed
            text = kb("complaint_appended", reference=ticket["reference"], due=due,
                      days=rules_for("complaints")["link_window_days"])
        else:
            text = kb("complaint_filed", reference=ticket["reference"], category=ticket["category_label"], due=due)
        if ticket["pauses_reminders"]:
            text += kb("complaint_reminders_paused")
        if asks_third_party_stop(told):
            text += kb("complaint_third_party_stop")
        dispatcher.utter_message(text=text)
        if ticket["offer_human"]:
            dispatcher.utter_message(text=kb("complaint_offer_human"), buttons=HUMAN_BUTTONS)
            return reset + [ask(OFFER_HUMAN)]
        return reset + offer_pending(dispatcher, tracker)
