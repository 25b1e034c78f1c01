"""What decision notices and status answers say, from a record as the backend's API shows it.

Shared by both environments: the backend words the notice it sends when staff decide on a plan
request or update a complaint (backend.services.outreach.render, from PlanRequestOut / ComplaintOut
dumped as JSON), and the action server words the same records when the borrower asks for their status
(actions/plan_status.py, actions/complaint_status.py). One implementation, so a decision reads the
same whether it is told or asked for.
"""
from __future__ import annotations

from typing import Iterable

from texts import raw, text
from texts.formatting import day, yuan


def plan_schedule(req: dict) -> str:
    """The approved plan in one sentence: the waiver, or the new schedule's first instalment."""
    q = req.get("approved_quote") or req["quote"]
    if q["plan_type"] == "waiver":
        return text("notices.plan_waived", amount=yuan(q["waived_amount"]), penalty=yuan(q["waived_penalty_interest"]),
                    fees=yuan(q["waived_fees"]))
    return text("notices.plan_schedule", instalments=q["instalments"], first_due=day(q["first_due_date"]),
                monthly=yuan(q["monthly_amount"]))


def plan_decision(req: dict) -> str | None:
    """The decision notice of a plan request; None unless it was approved or rejected."""
    if req["status"] == "approved":
        return text("knowledge.plan_approved", reference=req["reference"], schedule=plan_schedule(req))
    if req["status"] == "rejected":
        return text("knowledge.plan_rejected", reference=req["reference"], reason=req["decision_reason"])
    return None


def complaint_detail(ticket: dict, live: Iterable[str]) -> str:
    """The outcome of a finished complaint, or the deadline of a live one (``live``: its statuses)."""
    if ticket["status"] in ("resolved", "closed") and ticket.get("resolution"):
        return text("knowledge.complaint_status_resolved", resolution=ticket["resolution"])
    if ticket["status"] in tuple(live):
        out = text("knowledge.complaint_status_open", due=day(ticket["due_date"]))
        if ticket["extended"]:
            out += text("notices.complaint_extended", reason=ticket["extension_reason"])
        return out
    return ""


def complaint_update(ticket: dict, live: Iterable[str]) -> str:
    """The notice of a complaint's change (started, extended, resolved, closed)."""
    return text("knowledge.complaint_update", reference=ticket["reference"], update=ticket["last_update"],
                detail=complaint_detail(ticket, live))


def outreach(kind: str, **values) -> str:
    """A scheduled notice's message (``outreach.<kind>``), with the how-to-pay sentence."""
    return text(f"outreach.{kind}", how_to_pay=raw("outreach.how_to_pay"), **values)
