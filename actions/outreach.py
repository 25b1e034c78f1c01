"""Scheduled notices (reminders, overdue notices, offers, follow-ups) written for the borrower.

The scheduler triggers an EXTERNAL_* intent with the notice's id; this action re-reads the notice
and the loan from the backend at that moment, so the borrower sees today's figures (penalty
interest included), and fills the notice kind's template (config/outreach_templates/<kind>.txt,
editable). Something already paid is never reminded about: then nothing is said.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .answer_context import IDENTITY_CHECK, SLOT, ask
from .backend_client import BackendClient, BackendUnavailable
from .formatting import day, loan_name, masked_name, yuan
from .identity import owns, split_sender
from .knowledge import business_rules, kb
from .workflows import entity

TEMPLATES = Path(__file__).resolve().parents[1] / "config" / "outreach_templates"
DUE_KINDS = ("due_in_3_days", "due_in_1_day", "due_today")
ANONYMOUS_KINDS = ("csat_followup", "hardship_offer")  # may reach a conversation with no customer


@lru_cache(maxsize=None)
def template(kind: str) -> str:
    return (TEMPLATES / f"{kind}.txt").read_text(encoding="utf-8").strip()


def render(kind: str, **values: Any) -> str:
    return template(kind).format(how_to_pay=template("how_to_pay"), **values)


async def notice_text(client: BackendClient, notice: dict) -> tuple[str | None, list]:
    """The message for a notice as things stand now, or None when there is nothing to say."""
    kind, payload = notice["kind"], notice.get("payload") or {}
    if kind == "hardship_offer":
        return render(kind), []
    if kind == "csat_followup":
        case_id = payload.get("case_id")
        return render(kind, reference=payload.get("reference", "")), [SlotSet("handoff_case", case_id)]
    loan = await client.loan(notice["loan_id"]) if notice.get("loan_id") else None
    if not loan:
        return None, []
    if kind in DUE_KINDS:
        rows = await client.schedule(loan["id"])
        row = next((r for r in rows if r["seq"] == notice.get("instalment_seq")), None)
        if row is None or row["amount_outstanding"] == "0.00":
            return None, []  # paid (or restructured) since the notice was planned
        return render(kind, loan=loan_name(loan), amount=yuan(row["amount_outstanding"]),
                      due_date=day(row["due_date"])), []
    if kind.startswith("overdue_"):
        if loan["days_past_due"] <= 0:
            return None, []
        return render(kind, loan=loan_name(loan), days=loan["days_past_due"], amount=yuan(loan["overdue_amount"]),
                      penalty=yuan(loan["penalty_interest"])), []
    if kind == "promise_reminder":
        if loan["status"] == "settled":
            return None, []
        return render(kind, loan=loan_name(loan), promised_date=day(payload["promised_date"]),
                      amount=yuan(payload["amount"])), []
    return None, []


class ActionOutreachNotice(Action):
    def name(self) -> str:
        return "action_outreach_notice"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        notice_id = entity(tracker, "notice_id")
        client = BackendClient()
        try:
            notice = await client.outreach_notice(notice_id) if notice_id else None
            if not notice or not await notice_is_ours(client, tracker, notice):
                return []
            text, events = await notice_text(client, notice)
        except BackendUnavailable:
            return []  # no figures, no message: the scheduler sees no reply and retries
        if text and needs_identity_check(tracker, notice):
            return await ask_identity(dispatcher, client, notice)
        if text:
            dispatcher.utter_message(text=text)
        return events


async def notice_is_ours(client: BackendClient, tracker: Tracker, notice: dict) -> bool:
    """A notice about a customer is said only in a conversation of that customer (the channel
    identity it was routed to, or this conversation's verification); one about no one (a rating
    request for an anonymous chat) carries nothing personal."""
    if notice.get("customer_id") is None:
        return notice["kind"] in ANONYMOUS_KINDS
    return await owns(client, tracker, {"customer_id": notice["customer_id"]})


def needs_identity_check(tracker: Tracker, notice: dict) -> bool:
    """outreach.identity_check: this channel and this kind of notice, not yet confirmed this session."""
    rules = business_rules()["outreach"].get("identity_check") or {}
    channel, _ = split_sender(tracker.sender_id)
    return (channel in rules.get("channels", []) and notice["kind"] in rules.get("kinds", [])
            and not tracker.get_slot("contact_confirmed"))


async def ask_identity(dispatcher: CollectingDispatcher, client: BackendClient, notice: dict) -> list:
    """「请问您是王**本人吗？」 and nothing about the debt; the notice waits for the answer
    (actions/answer_context.py)."""
    try:
        customer = await client.customer(notice["customer_id"]) or {}
    except BackendUnavailable:
        customer = {}
    dispatcher.utter_message(text=kb("identity_check", name=masked_name(customer.get("name", ""))))
    return [ask(IDENTITY_CHECK), SlotSet("pending_notice", notice["notice_id"])]


class ActionIdentityConfirmed(Action):
    """「是」「是我」「对」 to 「请问您是王**本人吗？」: the notice that was held back is given now."""

    def name(self) -> str:
        return "action_identity_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        events: list = [SlotSet(SLOT, None), SlotSet("contact_confirmed", True), SlotSet("pending_notice", None)]
        notice_id = tracker.get_slot("pending_notice")
        text, extra = None, []
        try:
            client = BackendClient()
            notice = await client.outreach_notice(notice_id) if notice_id else None
            if notice and await notice_is_ours(client, tracker, notice):
                text, extra = await notice_text(client, notice)
        except BackendUnavailable:
            text = None
        dispatcher.utter_message(text=text or kb("identity_check_thanks"))
        return events + extra
