"""Complaints in chat: the form, the ticket, its status and the updates staff make.

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

from bot.nlu.normalize import normalize

from .account import BUSY
from .answer_context import OFFER_HUMAN, ask
from .backend_client import BackendClient, BackendRefused, BackendUnavailable
from .complaint_draft import save_complaint_draft
from .formatting import day
from .identity import owns, split_sender, verified_customer_id
from .knowledge import business_rules, kb
from .plan_request import answer_plan_status, plan_reference
from .workflows import (
    ASIDE_ANSWERS, HUMAN_BUTTONS, QUESTION, WorkflowForm, entity, has_any, latest_intent, message_text, offer_pending,
    words,
)

COMPLAINT_SLOTS = ("complaint_category", "complaint_description", "complaint_outcome", "complaint_contact")
CATEGORIES = {"催收方式": "collection", "费用争议": "fees", "服务态度": "service", "信息错误": "wrong_info",
              "隐私": "privacy", "其他": "other"}
RE_COMPLAINT_REF = re.compile(r"(?i)CP\d{8}-\d{4}")
_GENERIC = re.compile(r"我要|我想|我得|要|想|投诉|举报|你们|一下|客服|[\s\W_]")
_NOTHING = re.compile(r"^(没有|没|无|没啥|没什么|都行|随便|不用|没要求|没有要求)\W*$")
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
    clauses = [c for c in re.split(r"[，,。.!！?？;；\n]+", text) if c.strip()]
    wanted = [c.strip() for c in clauses if has_any(c, "complaint_demands")]
    return "，".join(wanted)[:1000] if wanted else None


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
    label = "投诉登记"
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
        return self.invalid(dispatcher, tracker, "complaint_category", "请从下面的类别中选一个，拿不准就选「其他」。")

    async def validate_complaint_description(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = str(value or "").strip()
        if len(re.sub(r"[\s\W_]", "", text)) < 2:
            return self.invalid(dispatcher, tracker, "complaint_description", "请具体说说发生了什么，我们会原文记录。")
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
            return self.valid(complaint_contact=f"电话 {phone}")
        if _DIGITS.search(text):
            return self.invalid(dispatcher, tracker, "complaint_contact", "这个手机号好像不完整，请输入11位手机号，或选择「在这里回复我」。")
        if has_any(text, "contact_registered"):
            if tracker.get_slot("verified"):
                return self.valid(complaint_contact="登记手机号")
            return self.invalid(dispatcher, tracker, "complaint_contact",
                                "我们还没有核实您的身份，请留一个能联系到您的11位手机号，或选择「在这里回复我」。")
        if has_any(text, "contact_here"):
            return self.valid(complaint_contact="本渠道回复")
        return self.invalid(dispatcher, tracker, "complaint_contact", "请选择「在这里回复我」，或留一个11位手机号。")


class ActionSubmitComplaint(Action):
    def name(self) -> str:
        return "action_submit_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        reset = [SlotSet(s, None) for s in COMPLAINT_SLOTS] + [SlotSet("form_reasks", 0),
                                                               SlotSet("complaint_other_categories", None)]
        if not tracker.get_slot("complaint_description") or not tracker.get_slot("complaint_contact"):
            return reset  # cancelled, expired or handed over (kept as a draft then)
        client = BackendClient()
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
        except BackendRefused as exc:
            dispatcher.utter_message(text=exc.message_zh)
            return reset
        except BackendUnavailable:
            dispatcher.utter_message(text=BUSY + "投诉没有登记成功，请稍后再试或回复「转人工」。")
            return reset
        due = day(ticket["due_date"])
        if ticket["outcome"] == "appended":  # a draft completed in place reads as filed
            text = kb("complaint_appended", reference=ticket["reference"], due=due,
                      days=business_rules()["complaints"]["link_window_days"])
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


# --------------------------------------------------------------------------- status and updates

def ticket_detail(ticket: dict) -> str:
    if ticket["status"] in ("resolved", "closed") and ticket.get("resolution"):
        return kb("complaint_status_resolved", resolution=ticket["resolution"])
    if ticket["status"] in ("draft", "received", "in_progress"):
        text = kb("complaint_status_open", due=day(ticket["due_date"]))
        if ticket["extended"]:
            text += f"（已延期，原因：{ticket['extension_reason']}）"
        return text
    return ""


def complaint_reference(tracker: Tracker) -> str | None:
    ref = entity(tracker, "reference") or next(iter(RE_COMPLAINT_REF.findall(message_text(tracker))), None)
    return ref.upper() if ref and ref.upper().startswith("CP") else None


class ActionAnswerComplaintStatus(Action):
    """By reference (a ticket filed under a verified account only to that borrower), else the
    verified borrower's latest ticket. An RP reference is a plan request: its status instead."""

    def name(self) -> str:
        return "action_answer_complaint_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = BackendClient()
        try:
            customer_id = await verified_customer_id(client, tracker)
            plan_ref = plan_reference(tracker)
            if plan_ref or (customer_id and has_any(message_text(tracker), "application")
                            and "投诉" not in message_text(tracker)):
                if customer_id is None:
                    dispatcher.utter_message(text="查询还款计划申请需要先核实您的身份，请告诉我您登记的手机号。")
                else:
                    await answer_plan_status(dispatcher, client, customer_id, plan_ref)
                return []
            reference = complaint_reference(tracker)
            if reference:
                ticket = await client.complaint(reference)
                if ticket is None or (ticket["customer_id"] is not None and ticket["customer_id"] != customer_id):
                    dispatcher.utter_message(text=f"没有查到您名下编号为 {reference} 的投诉。如投诉登记在您的账户下，"
                                                  "请先完成身份验证（告诉我您登记的手机号）再查询。")
                    return []
            elif customer_id is None:
                dispatcher.utter_message(text=kb("complaint_need_reference"))
                return []
            else:
                tickets = await client.customer_complaints(customer_id)
                if not tickets:
                    dispatcher.utter_message(text=kb("complaint_none"))
                    return []
                ticket = tickets[0]
        except BackendUnavailable:
            dispatcher.utter_message(text=BUSY)
            return []
        dispatcher.utter_message(text=kb("complaint_status", reference=ticket["reference"],
                                         category=ticket["category_label"], status=ticket["status_label"],
                                         update=ticket["last_update"], detail=ticket_detail(ticket)))
        return []


class ActionComplaintUpdateNotice(Action):
    """EXTERNAL_complaint_update from the backend: a status change or an extension, told as it is now."""

    def name(self) -> str:
        return "action_complaint_update_notice"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        reference = entity(tracker, "reference")
        client = BackendClient()
        try:
            ticket = await client.complaint(reference) if reference else None
            if ticket is not None and not await owns(client, tracker, ticket):
                return []  # not this conversation's complaint: nothing is said
        except BackendUnavailable:
            return []
        if ticket is not None:
            dispatcher.utter_message(text=kb("complaint_update", reference=ticket["reference"],
                                             update=ticket["last_update"], detail=ticket_detail(ticket)))
        return []
