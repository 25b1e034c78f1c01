"""What the staff console shows: who may see a case, the transcript as staff read it, the customer
panel, staff replies and handing a conversation back to the assistant; and the console's views of
repayment-plan requests and complaint tickets (the decisions themselves are backend.services.plans
and backend.services.complaints, which write the audit log with the signed-in staff member as actor).

Every number a person could be identified by is masked on the way out (masking.py): the tracker
stores the borrower's words as typed, so the transcript is masked when it is rendered.
"""
from __future__ import annotations

import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules
from backend.core.errors import AppError
from backend.models import (
    CannedReply, ComplaintCategory, ComplaintStatus, ComplaintTicket, Customer, HandoffCase, HandoffStatus, PlanRequest,
    PlanStatus, PlanType, PromiseStatus, PromiseToPay, StaffSession,
)
from backend.models.complaint import CATEGORY_LABELS, STATUS_LABELS
from backend.models.plan import PLAN_STATUS_LABELS, PLAN_TYPE_LABELS

from . import accounts, audit, complaints, handoff, plans, settlements
from .masking import last4, mask_name, mask_numbers, mask_phone
from .rasa_api import RasaClient

SYSTEM_EVENTS = texts.section("backend.transcript")  # pause / resume markers (texts/zh/backend.yml)


def can_view(session: StaffSession, case: HandoffCase) -> bool:
    """Supervisors see every case; an agent sees waiting cases and their own."""
    if session.staff.role.value == "supervisor":
        return True
    return case.status == HandoffStatus.open or case.assigned_to == session.staff.username


def viewable_case(db: Session, session: StaffSession, case_id: int) -> HandoffCase:
    case = handoff.get_case(db, case_id)
    if not can_view(session, case):
        raise AppError(403, "not_your_case", texts.text("errors.console.not_your_case", staff=case.assigned_to),
                       "The case is claimed by another agent; only a supervisor may open it")
    return case


def own_case(db: Session, session: StaffSession, case_id: int) -> HandoffCase:
    """A live case claimed by the signed-in staff member (only they reply, note or hand it back)."""
    case = viewable_case(db, session, case_id)
    if case.status == HandoffStatus.closed:
        raise AppError(409, "case_closed", texts.text("errors.handoff.case_closed"), "The case is already closed")
    if case.assigned_to != session.staff.username:
        raise AppError(409, "not_claimed", texts.text("errors.console.not_claimed"), "Claim the case first")
    return case


# --------------------------------------------------------------------------- transcript

def transcript(events: list[dict], tz: ZoneInfo) -> list[dict]:
    """Borrower, bot and staff turns (plus pause / resume markers), masked, in order."""
    out = []
    for e in events:
        kind = e.get("event")
        at = datetime.fromtimestamp(e.get("timestamp", 0), tz).isoformat(timespec="seconds")
        if kind == "user" and ((e.get("parse_data") or {}).get("intent") or {}).get("name", "").startswith("EXTERNAL_"):
            continue  # a trigger from the console or the scheduler (text "EXTERNAL: ..."), not the borrower
        if kind == "user" and e.get("text") and not str(e["text"]).startswith("/"):
            # ts: Rasa's own timestamp of the event, which 「标记理解有误」 sends back to name the message
            out.append({"who": "borrower", "text": mask_numbers(e["text"]), "at": at, "ts": e.get("timestamp")})
        elif kind == "bot" and (e.get("text") or (e.get("data") or {}).get("buttons")):
            staff = (e.get("metadata") or {}).get("staff")
            text = e.get("text") or ""
            buttons = [b.get("title", "") for b in (e.get("data") or {}).get("buttons") or []]
            if buttons:
                text += "\n［" + "］［".join(buttons) + "］"
            out.append({"who": "staff" if staff else "bot", "text": mask_numbers(text), "at": at,
                        **({"staff": staff} if staff else {})})
        elif kind in SYSTEM_EVENTS:
            out.append({"who": "system", "text": SYSTEM_EVENTS[kind], "at": at})
    return out


# --------------------------------------------------------------------------- customer panel

def customer_panel(db: Session, rules: BusinessRules, customer_id: int | None, today: date) -> dict | None:
    """Masked identity, loans with what is due, segment, promises, early-settlement intents (date and
    the payoff quoted), and the customer's repayment-plan requests and complaint tickets (newest first,
    short: reference, type or category, status)."""
    if customer_id is None:
        return None
    c = accounts.get_customer(db, customer_id)
    loans, loan_no = [], {}
    for loan in accounts.loans_of(db, customer_id):
        loan_no[loan.id] = loan.loan_no
        s = accounts.loan_summary(loan, rules, today)
        loans.append({
            "loan_no_last4": s.loan_no_last4, "product_name": s.product_name, "status": s.status,
            "total_outstanding": str(s.total_outstanding), "amount_due": str(s.amount_due),
            "next_due_date": s.next_due_date.isoformat() if s.next_due_date else None,
            "days_past_due": s.days_past_due, "penalty_interest": str(s.penalty_interest),
        })
    promises = db.scalars(select(PromiseToPay).where(PromiseToPay.customer_id == customer_id,
                                                     PromiseToPay.status == PromiseStatus.open)
                          .order_by(PromiseToPay.promised_date)).all()
    return {
        "name": c.name[:1] + "*" * (len(c.name) - 1), "phone_masked": mask_phone(c.phone),
        "id_last4": last4(c.id_number), "card": f"{c.card_bank or ''} ****{c.card_last4}" if c.card_last4 else None,
        "risk_tier": c.risk_tier, "value_tier": c.value_tier, "preferred_channel": c.preferred_channel.value,
        "loans": loans,
        "promises": [{"promised_date": p.promised_date.isoformat(), "amount": str(p.amount)} for p in promises],
        "settlement_intents": [
            {"loan_no_last4": loan_no[i.loan_id][-4:], "settle_on": i.settle_on.isoformat(),
             "total": str(i.quoted_total), "recorded_on": plans._local(i.created_at, rules).date().isoformat()}
            for i in settlements.of_customer(db, customer_id, recorded_only=True)],
        "plan_requests": [
            {"reference": r.reference, "plan_type": r.plan_type.value, "plan_type_label": PLAN_TYPE_LABELS[r.plan_type],
             "months": r.months, "status": r.status.value, "status_label": PLAN_STATUS_LABELS[r.status],
             "submitted_on": r.submitted_on.isoformat()}
            for r in db.scalars(select(PlanRequest).where(PlanRequest.customer_id == customer_id)
                                .order_by(PlanRequest.id.desc()))],
        "complaints": [
            {"reference": t.reference, "category": t.category.value, "category_label": CATEGORY_LABELS[t.category],
             "other_categories": list(t.other_categories or []),
             "other_category_labels": [CATEGORY_LABELS[ComplaintCategory(c)] for c in t.other_categories or []],
             "status": t.status.value, "status_label": STATUS_LABELS[t.status], "priority": t.priority.value,
             "due_date": complaints._local(t.due_at, rules).date().isoformat()}
            for t in db.scalars(select(ComplaintTicket).where(ComplaintTicket.customer_id == customer_id)
                                .order_by(ComplaintTicket.received_at.desc(), ComplaintTicket.id.desc()))],
    }


def _customer_short(customer: Customer | None) -> dict | None:
    """A customer as lists show them: the name's first character and a masked phone."""
    if customer is None:
        return None
    return {"id": customer.id, "name_masked": mask_name(customer.name), "phone_masked": mask_phone(customer.phone)}


# --------------------------------------------------------------------------- repayment-plan requests

def plan_list(db: Session, rules: BusinessRules, statuses: list[PlanStatus] | None, plan_type: PlanType | None,
              needs_staff_review: bool | None) -> list[dict]:
    """The console's list rows (oldest first; the open requests unless statuses are given), masked."""
    rows = plans.staff_list(db, rules, statuses, plan_type, needs_staff_review)
    people = {c.id: c for c in db.scalars(select(Customer).where(Customer.id.in_({r.customer_id for r in rows})))}
    return [{
        "reference": r.reference, "customer": _customer_short(people.get(r.customer_id)),
        "loan_no_last4": r.loan_no_last4, "plan_type": r.plan_type, "plan_type_label": r.plan_type_label,
        "months": r.months, "monthly_amount": None if r.quote.monthly_amount is None else str(r.quote.monthly_amount),
        "amount": str(r.amount), "submitted_on": r.submitted_on.isoformat(),
        "decision_due_on": r.decision_due_on.isoformat(), "status": r.status, "status_label": r.status_label,
        "needs_staff_review": r.needs_staff_review, "requires_supervisor": r.requires_supervisor,
    } for r in rows]


def plan_detail(db: Session, rules: BusinessRules, session: StaffSession, reference: str) -> dict:
    """A request as staff decide it: the stored quote (and the applied one), the borrower masked."""
    req = plans.get_request(db, reference)
    out = plans.request_out(db, rules, req).model_dump(mode="json")
    out["customer"] = _customer_short(db.get(Customer, req.customer_id))
    out["supervisor_approval_above"] = str(rules.repayment_plans.supervisor_approval_above)
    out["can_approve"] = session.staff.role.value == "supervisor" or not out["requires_supervisor"]
    audit.record(db, session.staff.username, "plan_request.viewed", "plan_request", req.id,
                 reference=req.reference, customer_id=req.customer_id)
    return out


# --------------------------------------------------------------------------- complaint tickets

LIST_FIELDS = ("reference", "customer", "channel", "category", "category_label", "other_categories",
               "other_category_labels", "status", "status_label",
               "priority", "distress", "received_at", "due_at", "due_date", "extended", "linked_to",
               "pauses_reminders", "seconds_remaining", "overdue", "last_update", "last_update_at")


def complaint_list(db: Session, rules: BusinessRules, now: datetime,
                   statuses: list[ComplaintStatus] | None) -> list[dict]:
    """Tickets nearest deadline first with the seconds left (the page counts down from there); by
    default the live ones, drafts included (status_label 「草稿（客户未提交完）」)."""
    return [item.model_dump(mode="json", include=set(LIST_FIELDS))
            for item in complaints.staff_list(db, rules, now, statuses)]


def complaint_detail(db: Session, rules: BusinessRules, session: StaffSession, reference: str,
                     now: datetime) -> dict:
    """A ticket with the borrower's words (masked, as the service returns them), its history and group."""
    ticket = complaints.get_ticket(db, reference)
    out = complaints.detail_out(db, rules, ticket).model_dump(mode="json")
    live = ticket.status in complaints.LIVE
    remaining = (math.floor((complaints._local(ticket.due_at, rules) - complaints._local(now, rules)).total_seconds())
                 if live else None)
    out.update(customer=_customer_short(db.get(Customer, ticket.customer_id)) if ticket.customer_id else None,
               seconds_remaining=remaining, overdue=remaining is not None and remaining < 0,
               max_total_days=rules.complaints.max_total_days)
    audit.record(db, session.staff.username, "complaint.viewed", "complaint_ticket", ticket.id,
                 reference=ticket.reference, customer_id=ticket.customer_id)
    return out


# --------------------------------------------------------------------------- actions

def reply(db: Session, rules: BusinessRules, rasa: RasaClient, session: StaffSession, case_id: int, text: str,
          now: datetime) -> HandoffCase:
    case = own_case(db, session, case_id)  # read only until Rasa has delivered (see hand_back)
    # The rule for every reply holds for people too: no full phone, ID or card number goes out.
    rasa.send_staff_message(case.conversation, case.channel.value, mask_numbers(text), session.staff.display_name)
    handoff.first_response(db, rules, case.id, now, "console")
    audit.record(db, session.staff.username, "handoff.replied", "handoff_case", case.id, chars=len(text))
    return case


def hand_back(db: Session, rules: BusinessRules, rasa: RasaClient, session: StaffSession, case_id: int,
              now: datetime) -> HandoffCase:
    """Give the conversation back to the assistant (which asks for a rating), then close the case.

    Rasa goes first and nothing is written before it answers: if it cannot be reached nothing
    changes, and no database write of this request is held open while the bot's actions (an SMS
    reply goes through the backend) write their own."""
    case = own_case(db, session, case_id)
    rasa.hand_back(case.conversation, case.channel.value, case.id)
    handoff.close(db, rules, case.id, session.staff.username, now, "console")
    return case


def canned_replies(db: Session) -> list[CannedReply]:
    return list(db.scalars(select(CannedReply).order_by(CannedReply.position, CannedReply.id)))


def add_canned_reply(db: Session, session: StaffSession, title: str, text: str) -> CannedReply:
    if session.staff.role.value != "supervisor":
        raise AppError(403, "forbidden", texts.text("errors.console.canned_supervisor_only"),
                       "Only a supervisor can edit canned replies")
    last = max((r.position for r in canned_replies(db)), default=0)
    reply_ = CannedReply(title=title, text=text, position=last + 1)
    db.add(reply_)
    db.flush()
    audit.record(db, session.staff.username, "canned_reply.added", "canned_reply", reply_.id, title=title)
    return reply_


def delete_canned_reply(db: Session, session: StaffSession, reply_id: int) -> None:
    if session.staff.role.value != "supervisor":
        raise AppError(403, "forbidden", texts.text("errors.console.canned_supervisor_only"),
                       "Only a supervisor can edit canned replies")
    row = db.get(CannedReply, reply_id)
    if row is None:
        raise AppError(404, "not_found", texts.text("errors.console.canned_not_found"), "Canned reply not found")
    db.delete(row)
    audit.record(db, session.staff.username, "canned_reply.deleted", "canned_reply", reply_id)
