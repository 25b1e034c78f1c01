"""The identity form: registered phone, ID last four, then the SMS code checked by the backend."""
from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import contract
from bot.backend import BackendError, backend
from bot.rules import rules_for
from texts import text

from .knowledge import kb
from .registry import ACCOUNT_ACTIONS, action_by_name

IDENTITY_SLOTS = ("identity_phone", "identity_id_last4", "identity_otp", "identity_outcome")
SORRY_BUSY = text("verification.busy")
OTP_MASK = "******"  # what the channels pass on instead of a one-time code (channels/guard.py)


class ActionRememberQuestion(Action):
    """Before verification: remember which answer to give afterwards, start the form afresh."""

    def name(self) -> str:
        return "action_remember_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        intent = tracker.latest_message.get("intent", {}).get("name")
        pending = ACCOUNT_ACTIONS.get(intent)
        if intent == "request_repayment_plan":
            dispatcher.utter_message(text=kb("repayment_plan_info"))  # general terms need no verification
        return [SlotSet("pending_action", pending)] + [SlotSet(s, None) for s in IDENTITY_SLOTS[2:]]


class ValidateIdentityForm(FormValidationAction):
    def name(self) -> str:
        return "validate_identity_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> list[str]:
        if tracker.get_slot("identity_outcome") in ("verified", "locked"):
            return []
        return domain_slots

    def validate_identity_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> dict[str, Any]:
        if value is None:  # cleared by the form itself, nothing to check
            return {"identity_phone": None}
        digits = re.sub(r"\D", "", str(value))[-11:]
        if not contract.is_mobile(digits):
            dispatcher.utter_message(text=text("verification.bad_phone"))
            return {"identity_phone": None}
        return {"identity_phone": digits}

    def validate_identity_id_last4(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> dict[str, Any]:
        if value is None:
            return {"identity_id_last4": None}
        v = str(value).strip().upper()
        if not re.fullmatch(r"\d{3}[\dX]", v):
            dispatcher.utter_message(text=text("verification.bad_id_last4"))
            return {"identity_id_last4": None}
        return {"identity_id_last4": v}

    def validate_identity_otp(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> dict[str, Any]:
        if value is None:
            return {"identity_otp": None}
        v = re.sub(r"\D", "", str(value))
        if len(v) != 6:
            dispatcher.utter_message(text=text("verification.bad_code"))
            return {"identity_otp": None}
        return {"identity_otp": v}

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list:
        events = await super().run(dispatcher, tracker, domain)
        slots = dict(tracker.current_slot_values())
        slots.update({e["name"]: e["value"] for e in events if e.get("event") == "slot"})
        try:
            if slots.get("identity_outcome") == "sent" and OTP_MASK in (tracker.latest_message.get("text") or ""):
                # The channel checked the code with the backend and passed on only 「******」
                # (channels/guard.py): the outcome is the backend's record, never the message.
                return events + await self._checked(dispatcher, tracker.sender_id, slots)
            events += await self._advance(dispatcher, tracker.sender_id, slots)
        except BackendError as exc:
            if exc.refused:
                dispatcher.utter_message(text=exc.message_zh)
                events += [SlotSet(s, None) for s in IDENTITY_SLOTS]
            else:
                dispatcher.utter_message(text=SORRY_BUSY)
                events += [SlotSet("identity_outcome", "locked")]
        return events

    async def _checked(self, dispatcher: CollectingDispatcher, conversation: str, slots: dict) -> list:
        client = backend()
        record = await client.verification_status(conversation)
        status = record.get("status")
        if status == "verified" and record.get("customer_id") is not None:
            # requested_slot None: the form is done (the code slot stays empty, there is nothing to keep).
            return [SlotSet("verified", True), SlotSet("customer_id", record["customer_id"]),
                    SlotSet("identity_outcome", "verified"), SlotSet("identity_otp", None),
                    SlotSet("requested_slot", None)]
        if status == "pending":
            dispatcher.utter_message(text=text("verification.wrong_code", attempts_left=record.get("attempts_left", 0)))
            return [SlotSet("identity_otp", None)]
        if status == "expired":
            dispatcher.utter_message(text=text("verification.code_expired"))
            return [SlotSet("identity_otp", None)] + await self._send(
                dispatcher, client, conversation, slots.get("identity_phone"), slots.get("identity_id_last4"))
        if status == "locked":
            return [SlotSet("identity_outcome", "locked"), SlotSet("identity_otp", None), SlotSet("requested_slot", None)]
        return [SlotSet("identity_otp", None), SlotSet("identity_outcome", None)]

    async def _advance(self, dispatcher: CollectingDispatcher, conversation: str, slots: dict) -> list:
        client = backend()
        phone, id4, otp, outcome = (slots.get(s) for s in IDENTITY_SLOTS)
        if otp and outcome == "sent":
            result = await client.check_code(conversation, otp)
            status = result["status"]
            if status == "verified":
                return [SlotSet("verified", True), SlotSet("customer_id", result["customer_id"]),
                        SlotSet("identity_outcome", "verified"), SlotSet("identity_otp", None)]
            if status == "wrong_code":
                dispatcher.utter_message(text=text("verification.wrong_code", attempts_left=result["attempts_left"]))
                return [SlotSet("identity_otp", None)]
            if status == "expired":
                dispatcher.utter_message(text=text("verification.code_expired"))
                return [SlotSet("identity_otp", None)] + await self._send(dispatcher, client, conversation, phone, id4)
            if status == "locked":
                return [SlotSet("identity_outcome", "locked")]
            return [SlotSet("identity_otp", None), SlotSet("identity_outcome", None)]
        if phone and id4 and outcome != "sent":
            return await self._send(dispatcher, client, conversation, phone, id4)
        return []

    async def _send(self, dispatcher, client, conversation, phone, id4) -> list:
        result = await client.start_verification(conversation, phone, id4)
        if result["status"] == "sent":
            minutes = rules_for("verification")["code_ttl_seconds"] // 60  # as the code's SMS says
            dispatcher.utter_message(text=text("verification.code_sent", phone=result["phone_masked"], minutes=minutes))
            return [SlotSet("identity_outcome", "sent"), SlotSet("identity_otp", None)]
        if result["status"] == "locked":
            return [SlotSet("identity_outcome", "locked")]
        dispatcher.utter_message(text=text("verification.no_match"))
        return [SlotSet("identity_phone", None), SlotSet("identity_id_last4", None), SlotSet("identity_outcome", None)]


class ActionAfterVerification(Action):
    """Form finished: answer the question that started it, or explain the lock."""

    def name(self) -> str:
        return "action_after_verification"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        # workflow_next says whether a form follows (a plan request, a settlement) or not.
        reset = [SlotSet(s, None) for s in IDENTITY_SLOTS] + [SlotSet("pending_action", None),
                                                               SlotSet("workflow_next", "done")]
        if not tracker.get_slot("verified"):
            dispatcher.utter_message(text=text("verification.locked", minutes=rules_for("verification")["lock_minutes"]))
            return reset
        dispatcher.utter_message(text=text("verification.verified"))
        if tracker.sender_id.startswith("wechat:"):
            await _bind_wechat(dispatcher, tracker)
        pending = tracker.get_slot("pending_action")
        events: list = []
        if pending:
            events = await action_by_name(pending).run(dispatcher, tracker, domain)
        else:
            dispatcher.utter_message(text=text("verification.what_next"))
        return reset + events


async def _bind_wechat(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """A WeChat conversation that passed the SMS-code check binds its openid to the customer."""
    try:
        await backend().bind("wechat", tracker.sender_id.removeprefix("wechat:"), int(tracker.get_slot("customer_id")))
    except (BackendError, TypeError, ValueError):
        return
    dispatcher.utter_message(text=text("verification.wechat_bound"))
