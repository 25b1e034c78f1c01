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

from bot.nlu.normalize import normalize

from .account import BUSY, verified_or_told
from .backend_client import BackendClient, BackendRefused, BackendUnavailable
from .formatting import day, loan_name, yuan
from .handoff import hand_over, plan_needs_person
from .identity import owns, require_customer, split_sender
from .knowledge import business_rules, kb
from .loan_choice import loan_by_last4, open_loans, pick
from .workflows import (
    WorkflowForm, entity, has_any, is_short_answer, is_strong_confirm, latest_intent, message_text, offer_pending, words,
)

PLAN_SLOTS = ("form_loan", "plan_reason", "plan_reason_text", "plan_type", "plan_months", "plan_confirm")
PLAN_TYPES = {"分期": "instalment", "延期": "deferral", "减免": "waiver"}
TYPE_LABELS = {v: k for k, v in PLAN_TYPES.items()}
REASON_LABELS = {"失业", "收入下降", "疾病或意外", "家庭变故", "其他"}
# Refusals the borrower can fix by choosing other months; any other one ends the request.
FIXABLE = {"months_out_of_range", "term_too_long", "not_enough_instalments", "months_required"}
RE_PLAN_REF = re.compile(r"(?i)RP\d{8}-\d{4}")
_NUMBER = re.compile(r"[0-9]+|[零一二两三四五六七八九十百]+")


def plan_reference(tracker: Tracker) -> str | None:
    ref = entity(tracker, "reference") or next(iter(RE_PLAN_REF.findall(message_text(tracker))), None)
    return ref.upper() if ref and ref.upper().startswith("RP") else None


# 「分12期」「分成24期」「分一年」 say 分期.
_SPLIT_INTO = re.compile(r"分\s*(?:成|为|个)?\s*(?:[0-9]+|[一二两三四五六七八九十半]+)\s*(?:期|个月|年)")
_NEGATED = re.compile(r"(不要|不想|不用|不做|别|不)\s*$")
# 「分一年」「两年」「一年半」「半年」: months in years (cn2an reads the numbers; this only finds them).
_YEARS = re.compile(r"([0-9]+|[一二两三四五六七八九十]+)\s*年(半)?|(半)\s*年")


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
    named += [(m.start(), "分期") for m in _SPLIT_INTO.finditer(text)]
    wanted = [value for start, value in sorted(named) if not _NEGATED.search(text[max(0, start - 3):start])]
    value = wanted[-1] if wanted else None
    return PLAN_TYPES.get(value, value if value in TYPE_LABELS else None)


_SPLIT_COUNT = re.compile(r"分\s*(?:成|为|个)?\s*([0-9]+|[一二两三四五六七八九十]+)\s*(期|个月|年)")


def months_said(text: str, tracker: Tracker) -> int | None:
    """Months the message states as such (「24期」「分一年」), not any number in it; the number after
    分 first (「三个月工资没发，能不能分两年」 is 24, not 3)."""
    split = _SPLIT_COUNT.search(text)
    if split:
        try:
            n = int(cn2an.cn2an(split.group(1), "smart"))
            return n * 12 if split.group(2) == "年" else n
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
        text = (f"预估方案（分期{q['instalments']}期，仅供参考）：每月应还约 {yuan(q['monthly_amount'])}，"
                f"共 {q['instalments']} 期，首期 {day(q['first_due_date'])}，最后一期 {day(q['last_due_date'], True)}；"
                f"总利息 {yuan(q['total_interest'])}，合计应还 {yuan(q['total_repayable'])}。")
        if q["carried_total"] != "0.00":
            text += f"已逾期的利息、费用和罚息共 {yuan(q['carried_total'])} 不再计息，平摊到各期。"
        return text
    if q["plan_type"] == "deferral":
        moved = "、".join(day(d["due_date"]) for d in q["deferred"])
        new = "、".join(day(d["new_due_date"], True) for d in q["deferred"])
        return (f"预估方案（延期{len(q['deferred'])}期，仅供参考）：原定{moved}的 {len(q['deferred'])} 期"
                f"（共 {yuan(q['amount'])}）顺延到{new}，不另加利息；其余各期仍按原计划还款，"
                f"合计应还 {yuan(q['total_repayable'])}。")
    return (f"预估方案（减免，仅供参考）：可申请减免罚息 {yuan(q['waived_penalty_interest'])}、"
            f"费用 {yuan(q['waived_fees'])}，共 {yuan(q['waived_amount'])}；减免后仍需还 {yuan(q['total_repayable'])}，"
            "本金和利息按原计划还款。")


def approved_text(req: dict) -> str:
    q = req.get("approved_quote") or req["quote"]
    if q["plan_type"] == "waiver":
        return f"已减免 {yuan(q['waived_amount'])}（罚息 {yuan(q['waived_penalty_interest'])}、费用 {yuan(q['waived_fees'])}）。"
    return (f"新的还款计划已生效：共 {q['instalments']} 期，首期 {day(q['first_due_date'])} 应还 "
            f"{yuan(q['monthly_amount'])}。")


def status_text(req: dict) -> str:
    detail = ""
    if req["status"] in ("submitted", "under_review"):
        detail = kb("plan_status_pending", decision_due=day(req["decision_due_on"]))
    elif req["status"] == "approved":
        detail = approved_text(req)
    elif req["status"] == "rejected":
        detail = f"原因：{req['decision_reason']}。"
    plan = req["plan_type_label"] + (f"{req['months']}期" if req["months"] else "")
    return kb("plan_status", reference=req["reference"], plan=plan, amount=yuan(req["amount"]),
              status=req["status_label"], detail=detail)


async def find_request(client: BackendClient, customer_id: int, reference: str | None,
                       live_only: bool = False) -> dict | None:
    """The customer's request by reference (only their own), else their newest one."""
    if reference:
        req = await client.plan_request(reference)
        return req if req and req["customer_id"] == customer_id else None
    reqs = await client.customer_plan_requests(customer_id)
    if live_only:
        reqs = [r for r in reqs if r["status"] in ("submitted", "under_review")]
    return reqs[0] if reqs else None


async def answer_plan_status(dispatcher: CollectingDispatcher, client: BackendClient, customer_id: int,
                             reference: str | None) -> None:
    req = await find_request(client, customer_id, reference)
    dispatcher.utter_message(text=status_text(req) if req else kb("plan_none"))


async def withdraw(dispatcher: CollectingDispatcher, client: BackendClient, customer_id: int,
                   reference: str | None) -> None:
    req = await find_request(client, customer_id, reference, live_only=True)
    if req is None:
        dispatcher.utter_message(text="您目前没有可以撤回的还款计划申请。")
        return
    try:
        await client.withdraw_plan(req["reference"], customer_id)
    except BackendRefused as exc:
        dispatcher.utter_message(text=exc.message_zh)
        return
    dispatcher.utter_message(text=kb("plan_withdrawn", reference=req["reference"]))


# --------------------------------------------------------------------------- start

def done() -> list:
    return [SlotSet("workflow_next", "done")]


class ActionPlanStart(Action):
    def name(self) -> str:
        return "action_plan_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = BackendClient()
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
        except BackendRefused as exc:
            dispatcher.utter_message(text=exc.message_zh)
            return done()
        except BackendUnavailable:
            dispatcher.utter_message(text=BUSY)
            return done()
        if not loans:
            dispatcher.utter_message(text="您目前没有未结清的借款，不需要申请还款计划。")
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
    label = "还款计划申请"
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
        client = BackendClient()
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
            quote = await BackendClient().plan_quote(loan["id"], merged["plan_type"],
                                                     int(merged["plan_months"]) if merged["plan_months"] else None)
        except (BackendUnavailable, BackendRefused):
            return self.end(dispatcher, BUSY, slot)
        if quote["eligible"]:
            return self.valid(**values)
        refusal = quote["refusals"][0]
        if refusal["code"] in FIXABLE and merged["plan_type"] != "waiver":
            return self.invalid(dispatcher, tracker, "plan_months", refusal["message_zh"] + "，请换一个期数。") | {
                k: v for k, v in values.items() if k != "plan_months"}
        return self.end(dispatcher, refusal["message_zh"] + "。如有疑问可以回复「转人工」。", slot)

    async def validate_form_loan(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        try:
            loan = pick(await self._loans(tracker), tracker, value)
        except BackendUnavailable:
            return self.end(dispatcher, BUSY, "form_loan")
        if loan is None:
            return self.invalid(dispatcher, tracker, "form_loan", "没有找到这笔借款，请点选下面的借款或告诉我借款编号后四位。")
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
            return self.invalid(dispatcher, tracker, "plan_type", "请选择一种方式：分期、延期或减免。")
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
            hint = "想分多少期？请回复数字，例如「12」。" if tracker.get_slot("plan_type") == "instalment" \
                else "想延期几期？请回复数字，例如「3」。"
            return self.invalid(dispatcher, tracker, "plan_months", "没听清期数。" + hint)
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
            dispatcher.utter_message(text="好的，我们重新选择方案。")
            return self.valid(plan_confirm=None, plan_type=None, plan_months=None)
        if not text or is_short_answer(text, "confirm") or latest_intent(tracker) == "affirm":
            return self.valid(plan_confirm="yes")
        return self.invalid(dispatcher, tracker, "plan_confirm", "请回复「确认」提交申请，或「修改」调整方案，或「算了」取消。")


class ActionAskPlanMonths(Action):
    def name(self) -> str:
        return "action_ask_plan_months"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        rules = business_rules()["repayment_plans"]
        if tracker.get_slot("plan_type") == "deferral":
            dispatcher.utter_message(text=f"想把接下来的几期往后延？可以延期1到{rules['defer_max_instalments']}期。")
        else:
            dispatcher.utter_message(text=f"想把剩余欠款分成多少期？可以分{rules['instalment_min_months']}到"
                                          f"{rules['instalment_max_months']}期，例如「12期」。")
        return []


class ActionAskPlanConfirm(Action):
    """Shows the backend's indicative plan for what the borrower chose and asks to confirm it."""

    def name(self) -> str:
        return "action_ask_plan_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = BackendClient()
        months = tracker.get_slot("plan_months")
        try:
            loans = await open_loans(client, await require_customer(client, tracker))
            loan = loan_by_last4(loans, tracker.get_slot("form_loan"))
            quote = await client.plan_quote(loan["id"], tracker.get_slot("plan_type"), int(months) if months else None)
        except (BackendUnavailable, BackendRefused, TypeError):
            dispatcher.utter_message(text=BUSY + "回复「确认」可稍后再试提交。")
            return []
        if not quote["eligible"]:
            dispatcher.utter_message(text=quote["refusals"][0]["message_zh"] + "。回复「修改」调整方案，或「算了」取消。")
            return []
        text = f"{loan_name(loan)}：" + plan_text(quote)
        if quote["needs_staff_review"]:
            text += kb("plan_staff_review")
        dispatcher.utter_message(text=text + "确认提交这份申请吗？", buttons=[
            {"title": "确认提交", "payload": "确认"}, {"title": "修改方案", "payload": "修改"},
            {"title": "算了", "payload": "算了"}])
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
        client = BackendClient()
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
        except BackendRefused as exc:
            dispatcher.utter_message(text=exc.message_zh + "。")
            return reset
        except (BackendUnavailable, TypeError):
            dispatcher.utter_message(text=BUSY + "您的申请没有提交成功，请稍后再试。")
            return reset
        text = f"已提交您的还款计划申请，编号 {req['reference']}（{req['plan_type_label']}"
        text += f"{req['months']}期）。" if req["months"] else "）。"
        if req["needs_staff_review"]:
            text += kb("plan_staff_review")
        dispatcher.utter_message(text=text + kb("plan_terms", decision_due=day(req["decision_due_on"])))
        return reset + offer_pending(dispatcher, tracker)


class ActionPlanDecisionNotice(Action):
    """EXTERNAL_plan_decision from the backend: tell the borrower the staff decision."""

    def name(self) -> str:
        return "action_plan_decision_notice"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        reference = entity(tracker, "reference")
        client = BackendClient()
        try:
            req = await client.plan_request(reference) if reference else None
            if req is not None and not await owns(client, tracker, req):
                return []  # not this conversation's request: nothing is said
        except BackendUnavailable:
            return []  # the backend logs the notice as sent; the borrower can still ask for the status
        if req is None:
            return []
        if req["status"] == "approved":
            dispatcher.utter_message(text=kb("plan_approved", reference=req["reference"], schedule=approved_text(req)))
        elif req["status"] == "rejected":
            dispatcher.utter_message(text=kb("plan_rejected", reference=req["reference"], reason=req["decision_reason"]))
        return []
