"""Repayment-plan (hardship) requests in chat: the form, the quote, the request, its status.

request_repayment_plan (verified) -> action_plan_start, which answers a status query or a
withdrawal itself, hands VIP / high-risk customers to a person, or opens plan_form with what the
first message already said (「能不能分12期」 fills the plan type and the months). The backend
computes every figure (GET /loans/{id}/plan-quote) and decides eligibility; the bot only shows it.
"""
from __future__ import annotations

import re
from typing import Any

import cn2an
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

import texts
from bot.backend import BackendClient, BackendError, backend
from bot.nlu.normalize import normalize
from bot.rules import rules_for
from texts import groups, raw, section

from .account import BUSY, verified_or_told
from .formatting import day, loan_name, yuan
from .handoff import hand_over, plan_needs_person
from .identity import require_customer, split_sender
from .knowledge import kb
from .loan_choice import loan_by_last4, open_loans, pick
from .plan_status import (  # noqa: F401 - status helpers, also used from here
    RE_PLAN_REF, answer_plan_status, approved_text, find_request, plan_reference, status_text,
)
from .workflows import (
    WorkflowForm, entity, has_any, is_short_answer, is_strong_confirm, latest_intent, message_text, offer_pending, words,
)

PLAN_SLOTS = ("form_loan", "plan_reason", "plan_reason_text", "plan_type", "plan_months", "plan_confirm")
TYPE_LABELS = section("labels.plan_type")  # instalment: 分期 (also the words that name a type)
PLAN_TYPES = {v: k for k, v in TYPE_LABELS.items()}
REASON_LABELS = set(section("labels.plan_reason").values())
# Refusals the borrower can fix by choosing other months; any other one ends the request.
FIXABLE = {"months_out_of_range", "term_too_long", "not_enough_instalments", "months_required"}
_NUMBER = re.compile(raw("vocabulary.number"))


# 「分12期」「分成24期」「分一年」 say 分期.
_SPLIT_INTO = re.compile(raw("vocabulary.plan_split_into"))
_NEGATED = re.compile(raw("vocabulary.plan_negated"))
# 「分一年」「两年」「一年半」「半年」: months in years (cn2an reads the numbers; this only finds them).
_YEARS = re.compile(raw("vocabulary.plan_years"))


def months_in_years(text: str) -> int | None:
    m = _YEARS.search(text)
    if not m:
        return None
    if m.group(3):
        return 6
    try:
        years = int(cn2an.cn2an(m.group(1), "smart"))
    except ValueError:
        return None
    return years * 12 + (6 if m.group(2) else 0)


def plan_type_of(text: str, tracker: Tracker) -> str | None:
    """The plan type the message asks for: the last one named and not refused (「不要分期了，换成延期
    3期吧」 is a deferral), from the entity (「停息挂账」 = 分期) or the type's own word."""
    named = [(e.get("start") or 0, normalize(str(e.get("value")))) for e in tracker.latest_message.get("entities") or []
             if e.get("entity") == "plan_type"]
    named += [(m.start(), word) for word in PLAN_TYPES for m in re.finditer(word, text)]
    named += [(m.start(), TYPE_LABELS["instalment"]) for m in _SPLIT_INTO.finditer(text)]
    wanted = [value for start, value in sorted(named) if not _NEGATED.search(text[max(0, start - 3):start])]
    value = wanted[-1] if wanted else None
    return PLAN_TYPES.get(value, value if value in TYPE_LABELS else None)


_SPLIT_COUNT = re.compile(raw("vocabulary.plan_split_count"))


def months_said(text: str, tracker: Tracker) -> int | None:
    """Months the message states as such (「24期」「分一年」), not any number in it; the number after
    分 first (「三个月工资没发，能不能分两年」 is 24, not 3)."""
    split = _SPLIT_COUNT.search(text)
    if split:
        try:
            n = int(cn2an.cn2an(split.group(1), "smart"))
            return n * 12 if split.group(2) == raw("vocabulary.year_unit") else n
        except ValueError:
            pass
    value = entity(tracker, "months") or months_in_years(text)
    try:
        return int(float(value)) if value else None
    except (TypeError, ValueError):
        return None


def months_of(text: str, tracker: Tracker) -> int | None:
    value = entity(tracker, "months") or months_in_years(text)
    if value is None:
        found = _NUMBER.findall(text)
        if len(found) != 1:
            return None
        try:
            value = cn2an.cn2an(found[0], "smart")
        except ValueError:
            return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def reason_of(text: str) -> str:
    for category, keys in words("plan_reasons").items():
        if any(k in text for k in keys):
            return category
    return "other"


# --------------------------------------------------------------------------- showing a plan

def plan_text(quote: dict) -> str:
    """The indicative plan in words (instalment, deferral or waiver)."""
    q = quote["quote"]
    if q["plan_type"] == "instalment":
        plan = texts.text("plan.quote.instalment", instalments=q["instalments"], monthly=yuan(q["monthly_amount"]),
                    first_due=day(q["first_due_date"]), last_due=day(q["last_due_date"], True),
                    interest=yuan(q["total_interest"]), total=yuan(q["total_repayable"]))
        if q["carried_total"] != "0.00":
            plan += texts.text("plan.quote.carried", amount=yuan(q["carried_total"]))
        return plan
    if q["plan_type"] == "deferral":
        moved = texts.text("format.enumeration").join(day(d["due_date"]) for d in q["deferred"])
        new = texts.text("format.enumeration").join(day(d["new_due_date"], True) for d in q["deferred"])
        return texts.text("plan.quote.deferral", count=len(q["deferred"]), moved=moved, amount=yuan(q["amount"]), new=new,
                    total=yuan(q["total_repayable"]))
    return texts.text("plan.quote.waiver", penalty=yuan(q["waived_penalty_interest"]), fees=yuan(q["waived_fees"]),
                amount=yuan(q["waived_amount"]), total=yuan(q["total_repayable"]))


async def withdraw(dispatcher: CollectingDispatcher, client: BackendClient, customer_id: int,
                   reference: str | None) -> None:
    req = await find_request(client, customer_id, reference, live_only=True)
    if req is None:
        dispatcher.utter_message(text=texts.text("plan.nothing_to_withdraw"))
        return
    await client.withdraw_plan(req["reference"], customer_id)  # a refusal is told by the caller
    dispatcher.utter_message(text=kb("plan_withdrawn", reference=req["reference"]))


# --------------------------------------------------------------------------- start

def done() -> list:
    return [SlotSet("workflow_next", "done")]


class ActionPlanStart(Action):
    def name(self) -> str:
        return "action_plan_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = backend()
        try:
            customer_id = await verified_or_told(dispatcher, client, tracker)
            if customer_id is None:
                return done()
            text, reference = message_text(tracker), plan_reference(tracker)
            if has_any(text, "plan_withdraw"):
                await withdraw(dispatcher, client, customer_id, reference)
                return done()
            if reference or (has_any(text, "plan_status") and not plan_type_of(text, tracker)):
                await answer_plan_status(dispatcher, client, customer_id, reference)
                return done()
            if await plan_needs_person(client, tracker):
                return await hand_over(dispatcher, tracker, "vip_plan")
            loans = await open_loans(client, customer_id)
        except BackendError as exc:
            dispatcher.utter_message(text=exc.message_zh or BUSY)
            return done()
        if not loans:
            dispatcher.utter_message(text=texts.text("plan.no_open_loans"))
            return done()
        dispatcher.utter_message(text=kb("plan_start"))
        chosen = pick(loans, tracker, tracker.get_slot("loan_ref"))
        prefill = {
            "form_loan": chosen["loan_no_last4"] if chosen else None,
            "plan_type": plan_type_of(text, tracker),
            "plan_months": str(months) if (months := months_said(text, tracker)) else None,
        }
        reason = reason_of(text)
        if reason != "other":  # 「我失业了，能不能分期」 already says why
            prefill.update(plan_reason=reason, plan_reason_text=text[:1000])
        events = [SlotSet(s, None) for s in PLAN_SLOTS] + [SlotSet("form_reasks", 0)]
        return events + [SlotSet(k, v) for k, v in prefill.items() if v] + [SlotSet("workflow_next", "plan_form")]


# --------------------------------------------------------------------------- the form

class ValidatePlanForm(WorkflowForm):
    form = "plan_form"
    label = texts.text("plan.form_label")
    slots = PLAN_SLOTS

    own_intent = "request_repayment_plan"

    def name(self) -> str:
        return "validate_plan_form"

    def reads_as_answer(self, slot: str, tracker: Tracker) -> bool:
        """The plan's own words first: a type, months, 「就这样吧」 or 「改成24期」 answer whatever the
        classifier said; a reason in the borrower's words is an answer unless it is a question."""
        text = message_text(tracker)
        if slot == "form_loan" and entity(tracker, "loan_ref"):
            return True
        if slot == "plan_reason" and (reason_of(text) != "other" or latest_intent(tracker) in ("deny", "affirm",
                                                                                             "out_of_scope", "nlu_fallback")):
            return True
        if slot in ("plan_type", "plan_months", "plan_confirm") and (plan_type_of(text, tracker) or months_said(text, tracker)):
            return True
        if slot == "plan_months" and len(text) <= 8 and months_of(text, tracker):
            return True  # 「12」「十二」 answer the question just asked
        if slot == "plan_confirm" and (has_any(text, "decline") or is_strong_confirm(text) or is_short_answer(text, "confirm")
                                       or is_short_answer(text, "change") or latest_intent(tracker) in ("affirm", "deny")):
            return True
        return super().reads_as_answer(slot, tracker)

    async def required_slots(self, domain_slots, dispatcher, tracker, domain) -> list[str]:
        if tracker.get_slot("plan_type") == "waiver":
            return [s for s in domain_slots if s != "plan_months"]
        return domain_slots

    async def _loans(self, tracker: Tracker) -> list[dict]:
        client = backend()
        return await open_loans(client, await require_customer(client, tracker))

    async def _check(self, dispatcher, tracker, slot: str, values: dict[str, Any]) -> dict[str, Any]:
        """Ask the backend whether loan + type + months (those known so far) can be applied for."""
        merged = {s: tracker.get_slot(s) for s in ("form_loan", "plan_type", "plan_months")} | values
        if not merged["form_loan"] or not merged["plan_type"]:
            return self.valid(**values)
        if merged["plan_type"] != "waiver" and not merged["plan_months"]:
            return self.valid(**values)
        try:
            loan = loan_by_last4(await self._loans(tracker), merged["form_loan"])
            if loan is None:
                return self.valid(**values)
            quote = await backend().plan_quote(loan["id"], merged["plan_type"],
                                               int(merged["plan_months"]) if merged["plan_months"] else None)
        except BackendError:
            return self.end(dispatcher, BUSY, slot)
        if quote["eligible"]:
            return self.valid(**values)
        refusal = quote["refusals"][0]
        if refusal["code"] in FIXABLE and merged["plan_type"] != "waiver":
            return self.invalid(dispatcher, tracker, "plan_months",
                                texts.text("plan.refusal.fixable", refusal=refusal["message_zh"])) | {
                k: v for k, v in values.items() if k != "plan_months"}
        return self.end(dispatcher, texts.text("plan.refusal.final", refusal=refusal["message_zh"]), slot)

    async def validate_form_loan(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        try:
            loan = pick(await self._loans(tracker), tracker, value)
        except BackendError:
            return self.end(dispatcher, BUSY, "form_loan")
        if loan is None:
            return self.invalid(dispatcher, tracker, "form_loan", texts.text("plan.loan_not_found"))
        return await self._check(dispatcher, tracker, "form_loan", {"form_loan": loan["loan_no_last4"]})

    async def validate_plan_reason(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = str(value or "").strip()
        if tracker.get_slot("plan_reason_text") and text in words("plan_reasons"):
            return self.valid(plan_reason=text)  # pre-filled by action_plan_start
        # Free text is accepted: the category is read from it, the words kept for staff.
        category = reason_of(text)
        if category == "other" and await self.answered_aside(dispatcher, tracker, domain):
            return {"plan_reason": None}
        plan_type = plan_type_of(text, tracker)
        if category == "other" and plan_type:
            # 「延2期」 answers what comes next, not why: keep it, ask the reason again.
            months = months_said(text, tracker)
            return {"plan_reason": None, "plan_type": plan_type,
                    **({"plan_months": str(months)} if months and plan_type != "waiver" else {})}
        return self.valid(plan_reason=category, plan_reason_text=None if text in REASON_LABELS else text[:1000])

    async def validate_plan_type(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = message_text(tracker) or str(value or "")
        plan_type = value if value in TYPE_LABELS else plan_type_of(text, tracker)
        if plan_type is None:
            return self.invalid(dispatcher, tracker, "plan_type", texts.text("plan.ask_type_again"))
        values: dict[str, Any] = {"plan_type": plan_type}
        months = months_said(text, tracker) if value not in TYPE_LABELS else None
        if plan_type == "waiver":
            values["plan_months"] = None
        elif months:
            values["plan_months"] = str(months)  # 「分12期」 answers both
        return await self._check(dispatcher, tracker, "plan_type", values)

    async def validate_plan_months(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = message_text(tracker) or str(value or "")
        months = int(float(value)) if str(value).isdigit() else months_of(text, tracker)
        if months is None or months <= 0:
            unclear = ("plan.months_unclear.instalment" if tracker.get_slot("plan_type") == "instalment"
                       else "plan.months_unclear.deferral")
            return self.invalid(dispatcher, tracker, "plan_months", texts.text(unclear))
        return await self._check(dispatcher, tracker, "plan_months", {"plan_months": str(months)})

    async def validate_plan_confirm(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        text = message_text(tracker) or str(value or "")
        if has_any(text, "decline"):  # 「先不提交，我再想想」: nothing filed, said so
            return self.valid(plan_confirm="no")
        if is_strong_confirm(text):  # 「就这样吧」「可以，就按这个来」「帮我提交」
            return self.valid(plan_confirm="yes")
        new_months, new_type = months_said(text, tracker), plan_type_of(text, tracker)
        if new_months or (new_type and new_type != tracker.get_slot("plan_type")):
            # 「改成24期」「换成延期吧」: the new terms, then the quote again.
            values: dict[str, Any] = {"plan_confirm": None}
            if new_type:
                values["plan_type"] = new_type
                values["plan_months"] = None if new_type == "waiver" else (str(new_months) if new_months else None)
            elif new_months:
                values["plan_months"] = str(new_months)
            return await self._check(dispatcher, tracker, "plan_confirm", values)
        if is_short_answer(text, "change") or latest_intent(tracker) == "deny":
            dispatcher.utter_message(text=texts.text("plan.restart"))
            return self.valid(plan_confirm=None, plan_type=None, plan_months=None)
        if not text or is_short_answer(text, "confirm") or latest_intent(tracker) == "affirm":
            return self.valid(plan_confirm="yes")
        return self.invalid(dispatcher, tracker, "plan_confirm", texts.text("plan.ask_confirm_again"))


class ActionAskPlanMonths(Action):
    def name(self) -> str:
        return "action_ask_plan_months"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        rules = rules_for("repayment_plans")
        if tracker.get_slot("plan_type") == "deferral":
            dispatcher.utter_message(text=texts.text("plan.ask_months.deferral", max=rules["defer_max_instalments"]))
        else:
            dispatcher.utter_message(text=texts.text("plan.ask_months.instalment", min=rules["instalment_min_months"],
                                               max=rules["instalment_max_months"]))
        return []


class ActionAskPlanConfirm(Action):
    """Shows the backend's indicative plan for what the borrower chose and asks to confirm it."""

    def name(self) -> str:
        return "action_ask_plan_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = backend()
        months = tracker.get_slot("plan_months")
        try:
            loans = await open_loans(client, await require_customer(client, tracker))
            loan = loan_by_last4(loans, tracker.get_slot("form_loan"))
            quote = await client.plan_quote(loan["id"], tracker.get_slot("plan_type"), int(months) if months else None)
        except (BackendError, TypeError):
            dispatcher.utter_message(text=BUSY + texts.text("plan.quote.busy"))
            return []
        if not quote["eligible"]:
            dispatcher.utter_message(text=texts.text("plan.refusal.quote", refusal=quote["refusals"][0]["message_zh"]))
            return []
        answer = texts.text("plan.quote.for_loan", loan=loan_name(loan), plan=plan_text(quote))
        if quote["needs_staff_review"]:
            answer += kb("plan_staff_review")
        dispatcher.utter_message(text=answer + texts.text("plan.ask_confirm"), buttons=list(groups("plan.buttons").values()))
        return []


class ActionSubmitPlan(Action):
    def name(self) -> str:
        return "action_submit_plan"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        reset = [SlotSet(s, None) for s in PLAN_SLOTS] + [SlotSet("form_reasks", 0)]
        if tracker.get_slot("plan_confirm") == "no":
            dispatcher.utter_message(text=kb("plan_not_submitted"))
            return reset + offer_pending(dispatcher, tracker)
        if tracker.get_slot("plan_confirm") != "yes":
            return reset  # cancelled, expired or handed over: the form said so already
        client = backend()
        channel, _ = split_sender(tracker.sender_id)
        months = tracker.get_slot("plan_months")
        try:
            customer_id = await require_customer(client, tracker)
            loan = loan_by_last4(await open_loans(client, customer_id), tracker.get_slot("form_loan"))
            req = await client.submit_plan({
                "conversation": tracker.sender_id, "channel": channel, "customer_id": customer_id,
                "loan_id": loan["id"], "reason_category": tracker.get_slot("plan_reason") or "other",
                "reason_text": tracker.get_slot("plan_reason_text"), "plan_type": tracker.get_slot("plan_type"),
                "months": int(months) if months and tracker.get_slot("plan_type") != "waiver" else None})
        except (BackendError, TypeError) as exc:
            refused = isinstance(exc, BackendError) and exc.refused
            dispatcher.utter_message(text=texts.text("plan.refusal.submit", refusal=exc.message_zh) if refused
                                     else BUSY + texts.text("plan.not_submitted"))
            return reset
        plan = req["plan_type_label"] + (texts.text("plan.status.months", months=req["months"]) if req["months"] else "")
        answer = texts.text("plan.submitted", reference=req["reference"], plan=plan)
        if req["needs_staff_review"]:
            answer += kb("plan_staff_review")
        dispatcher.utter_message(text=answer + kb("plan_terms", decision_due=day(req["decision_due_on"])))
        return reset + offer_pending(dispatcher, tracker)
