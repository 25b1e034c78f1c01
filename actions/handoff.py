"""Handing a conversation to a person, and coming back from one.

One mechanism for every trigger (request_human, repeated fallback, distress, a VIP or high-risk
customer asking for a plan, and the workflows' complaint / plan-review triggers): open a case in
the backend, tell the borrower who answers and an honest wait from the live queue, then pause
the conversation. While paused Rasa stores the borrower's messages and predicts nothing; staff
answer from the console through Rasa's HTTP API. "Return to assistant" in the console resumes the
conversation and triggers EXTERNAL_handoff_closed, which asks for a 1-5 rating (csat_form).
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

import cn2an
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.backend import BackendClient, BackendError, backend
from bot.nlu.normalize import normalize
from bot.rules import rules_for
from texts import raw, section, text

from .complaint_draft import in_complaint, save_complaint_draft
from .formatting import day
from .identity import split_sender, verified_customer_id
from .knowledge import kb

log = logging.getLogger(__name__)

SUMMARY_MESSAGES = 6  # the borrower's last messages quoted in the case summary
REASON_LABELS = section("handoff.summary.reasons")


def _distress(tracker: Tracker) -> bool:
    return any(e.get("entity") == "distress" for e in tracker.latest_message.get("entities") or [])


def _summary(tracker: Tracker, reason: str) -> str:
    """What the bot collected, for the staff member who picks the case up (the backend masks
    personal numbers before storing it)."""
    users = [e for e in tracker.events if e.get("event") == "user" and e.get("text")]
    verified = text("handoff.summary.answer_yes" if tracker.get_slot("verified") else "handoff.summary.answer_no")
    lines = [text("handoff.summary.reason", reason=REASON_LABELS.get(reason, reason)),
             text("handoff.summary.verified", answer=verified)]
    intents = [(e.get("parse_data") or {}).get("intent", {}).get("name") for e in users[-SUMMARY_MESSAGES:]]
    lines.append(text("handoff.summary.intents", intents=text("format.enumeration").join(i for i in intents if i))
                 if any(intents) else text("handoff.summary.no_intents"))
    lines += [text("handoff.summary.message", text=e["text"][:200]) for e in users[-SUMMARY_MESSAGES:]]
    return "\n".join(lines)


def _wait_text(case: dict) -> str:
    if case.get("staffed"):
        ahead = max(0, int(case.get("position", 1)) - 1)
        queue = kb("handoff_queue_ahead", ahead=ahead) if ahead else ""
        return kb("handoff_staffed", reference=case["reference"], queue=queue, wait=case["wait_minutes"])
    hours = rules_for("handoff")["staffed_hours"]
    reopen_at = datetime.fromisoformat(case["next_staffed_at"])
    return kb("handoff_after_hours", start=hours["start"], end=hours["end"], reference=case["reference"],
              reopen=f"{day(reopen_at.date())}{reopen_at:%H:%M}", wait=case["wait_minutes"])


async def hand_over(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str) -> list:
    """Open (or find) the conversation's case, tell the borrower, pause. If the backend cannot
    take the case the conversation is not paused: the bot keeps serving rather than going silent."""
    distress = reason == "distress"
    if distress:
        dispatcher.utter_message(text=kb("handoff_distress"))
    client = backend()
    channel, _ = split_sender(tracker.sender_id)
    if in_complaint(tracker):  # the person takes over; what was said is kept for staff
        await save_complaint_draft(tracker, client)
    try:
        customer_id = await verified_customer_id(client, tracker)
        case = await client.open_handoff(tracker.sender_id, channel, customer_id, reason, _summary(tracker, reason))
    except BackendError as exc:
        log.warning("handoff not opened: backend %s", "refused" if exc.refused else "unavailable")
        dispatcher.utter_message(text=kb("handoff_failed"))
        return []
    dispatcher.utter_message(text=_wait_text(case))
    # A form in progress ends here: the person takes over from this point. The bot "listens" before
    # pausing so that what the borrower writes meanwhile, and the console's EXTERNAL_handoff_closed,
    # follow an action_listen as every user turn does (else no rule matches them).
    return [SlotSet("handoff_case", case["id"]), ActiveLoop(None), SlotSet("requested_slot", None),
            ActionExecuted("action_listen"), ConversationPaused()]


class ActionHandoff(Action):
    """request_human (and distress, which the NLU routes here with a ``distress`` entity)."""

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        return await hand_over(dispatcher, tracker, "distress" if _distress(tracker) else "request_human")


async def plan_needs_person(client: BackendClient, tracker: Tracker) -> bool:
    """A verified customer in a segment whose plan questions go to staff (handoff.plan_segments)."""
    customer_id = await verified_customer_id(client, tracker)
    if customer_id is None:
        return False
    customer = await client.customer(customer_id) or {}
    segments = rules_for("handoff")["plan_segments"]
    return any(customer.get(field) in tiers for field, tiers in segments.items())


# --------------------------------------------------------------------------- after the handoff

class ActionHandoffClosed(Action):
    """EXTERNAL_handoff_closed: staff returned the conversation; ask for a rating next."""

    def name(self) -> str:
        return "action_handoff_closed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        named = next((e.get("value") for e in tracker.latest_message.get("entities") or []
                      if e.get("entity") == "case_id"), None)
        own = tracker.get_slot("handoff_case")
        # The case opened in this conversation wins: a notice naming another case is not taken at
        # its word (a rating would go to someone else's case).
        case_id = own if own is not None else named
        dispatcher.utter_message(text=kb("handoff_closed"))
        return [SlotSet("handoff_case", case_id), SlotSet("csat_score", None), SlotSet("csat_comment", None)]


_SCORE = re.compile(raw("vocabulary.csat_score"))
_NO_COMMENT = re.compile(raw("vocabulary.csat_no_comment"), re.I)


def parse_score(text: str) -> int | None:
    """A 1-5 rating typed as 「5」「五分」「4星」 (cn2an reads the Chinese numeral)."""
    text = normalize(text or "").strip()  # full-width digits, traditional characters
    m = _SCORE.fullmatch(text) or _SCORE.fullmatch(re.sub(r"[^\w]", "", text))
    if not m:
        return None
    value = int(cn2an.cn2an(m.group(1), "smart"))
    return value if 1 <= value <= 5 else None


def _triggered(tracker: Tracker) -> bool:
    """The latest "message" is the console's EXTERNAL_handoff_closed, which the form would
    otherwise read as the borrower's answer when it starts."""
    return tracker.latest_message.get("intent", {}).get("name", "").startswith("EXTERNAL_")


class ValidateCsatForm(FormValidationAction):
    def name(self) -> str:
        return "validate_csat_form"

    async def validate_csat_score(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: dict[str, Any]) -> dict[str, Any]:
        if _triggered(tracker):
            return {"csat_score": None}  # the console's trigger, not the borrower's answer: ask
        score = parse_score(str(value or ""))
        if score is not None:
            return {"csat_score": str(score)}
        if tracker.latest_message.get("intent", {}).get("name") in ("provide_identity", "nlu_fallback"):
            dispatcher.utter_message(response="utter_csat_invalid")  # a number or word, but not 1-5
            return {"csat_score": None}
        # Anything else (「不用了」, a new question): no rating; never hold a borrower in the survey.
        return {"csat_score": "skipped", "csat_comment": "skipped"}

    async def validate_csat_comment(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: dict[str, Any]) -> dict[str, Any]:
        if _triggered(tracker):
            return {"csat_comment": None}
        text = str(value or "").strip()
        return {"csat_comment": "none" if not text or _NO_COMMENT.match(text) else text[:500]}


class ActionSubmitCsat(Action):
    def name(self) -> str:
        return "action_submit_csat"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        score, comment = tracker.get_slot("csat_score"), tracker.get_slot("csat_comment")
        case_id = tracker.get_slot("handoff_case")
        reset = [SlotSet("csat_score", None), SlotSet("csat_comment", None), SlotSet("handoff_case", None)]
        if score in (None, "skipped") or case_id is None:
            dispatcher.utter_message(text=kb("csat_skipped"))
            return reset
        try:
            await backend().rate_handoff(int(case_id), int(score), None if comment == "none" else comment)
        except BackendError as exc:
            if not exc.refused:  # refused: already rated (e.g. a repeated message), the thanks still stands
                dispatcher.utter_message(text=kb("handoff_failed_rating"))
                return reset
        dispatcher.utter_message(text=kb("csat_thanks"))
        return reset
