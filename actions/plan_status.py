"""A repayment-plan request's status in words: found by reference or the customer's newest.

Used by the plan workflow (actions/plan_request.py), the loan-status answer (actions/account.py)
and the complaint-status answer (an RP reference is a plan request); imports no workflow module.
"""
from __future__ import annotations

import re

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import contract
from bot.backend import BackendClient
from texts import text
from texts.wording import plan_schedule

from .formatting import day, yuan
from .knowledge import kb
from .reading import entity, message_text

RE_PLAN_REF = re.compile(r"(?i)RP\d{8}-\d{4}")


def plan_reference(tracker: Tracker) -> str | None:
    ref = entity(tracker, "reference") or next(iter(RE_PLAN_REF.findall(message_text(tracker))), None)
    return ref.upper() if ref and ref.upper().startswith("RP") else None


def approved_text(req: dict) -> str:
    return plan_schedule(req)  # the same sentence as the backend's decision notice (texts/wording.py)


def status_text(req: dict) -> str:
    detail = ""
    if req["status"] in contract.live("plan_status"):
        detail = kb("plan_status_pending", decision_due=day(req["decision_due_on"]))
    elif req["status"] == "approved":
        detail = approved_text(req)
    elif req["status"] == "rejected":
        detail = text("plan.status.rejected_reason", reason=req["decision_reason"])
    plan = req["plan_type_label"] + (text("plan.status.months", months=req["months"]) if req["months"] else "")
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
        reqs = [r for r in reqs if r["status"] in contract.live("plan_status")]
    return reqs[0] if reqs else None


async def answer_plan_status(dispatcher: CollectingDispatcher, client: BackendClient, customer_id: int,
                             reference: str | None) -> None:
    req = await find_request(client, customer_id, reference)
    dispatcher.utter_message(text=status_text(req) if req else kb("plan_none"))
