"""Complaint tickets: the bot files them and looks them up; staff work them.

Until staff sign in, the service caller names the staff member in the request body (``by``), as
the handoff routes do. Rules and the linking behaviour: backend.services.complaints. Every status
change and an extension is told to the borrower on their channel (backend.services.notices).
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend.api.deps import DB, Caller, Rasa, Rules, Today
from backend.models import ComplaintStatus
from backend.schemas import (
    ComplaintByIn, ComplaintCloseIn, ComplaintDetailOut, ComplaintExtendIn, ComplaintIn, ComplaintListItem,
    ComplaintOpenedOut, ComplaintOut, ComplaintResolveIn, ComplaintStatusName, ReminderPauseOut,
)
from backend.services import complaints, notices

router = APIRouter(prefix="/api/v1", tags=["complaints"])


@router.post("/complaints", response_model=ComplaintOpenedOut, status_code=201,
             responses={200: {"model": ComplaintOpenedOut,
                              "description": "Added to the borrower's open ticket on the same topic, or completing "
                                             "their draft (no new ticket)"}})
def open_complaint(data: ComplaintIn, response: Response, db: DB, rules: Rules, clock: Today, caller: Caller):
    """File a complaint, or keep an unfinished one as a draft (``draft: true``): a reference, the
    decision deadline, whether to offer a human now, and whether it was linked to an earlier
    complaint or completed the borrower's draft (``outcome``)."""
    ticket, outcome = complaints.open_ticket(db, rules, data, clock.now(), caller)
    if outcome in ("appended", "completed_draft"):
        response.status_code = 200
    return complaints.opened_out(db, rules, ticket, outcome)


@router.get("/complaints", response_model=list[ComplaintListItem])
def staff_list(db: DB, rules: Rules, clock: Today, _: Caller,
               status: Annotated[list[ComplaintStatusName] | None, Query()] = None):
    """Tickets for staff, nearest deadline first, with a countdown; the live ones unless ?status= is given."""
    statuses = [ComplaintStatus(s) for s in status] if status else None
    return complaints.staff_list(db, rules, clock.now(), statuses)


@router.get("/complaints/{reference}", response_model=ComplaintDetailOut)
def get_complaint(reference: str, db: DB, rules: Rules, _: Caller):
    """A ticket with its history and linked tickets (the borrower's status query)."""
    return complaints.detail_out(db, rules, complaints.get_ticket(db, reference))


@router.get("/customers/{customer_id}/complaints", response_model=list[ComplaintOut])
def customer_complaints(customer_id: int, db: DB, rules: Rules, _: Caller):
    """The customer's tickets, newest first."""
    return complaints.customer_tickets(db, rules, customer_id)


@router.get("/customers/{customer_id}/reminder-pause", response_model=ReminderPauseOut)
def reminder_pause(customer_id: int, db: DB, _: Caller) -> ReminderPauseOut:
    """Whether a complaint pauses automated reminders for the customer, and which tickets hold the pause."""
    refs = complaints.reminder_pause_references(db, customer_id)
    return ReminderPauseOut(paused=bool(refs), references=refs)


def _told(db, rules, rasa, ticket, by: str, caller: str) -> ComplaintDetailOut:
    """The ticket as decided, after telling the borrower (a failed notice is audited; the change stands)."""
    out = complaints.detail_out(db, rules, ticket)
    notices.complaint_updated(db, rasa, ticket, by, caller)
    return out


@router.post("/complaints/{reference}/start", response_model=ComplaintDetailOut)
def start(reference: str, data: ComplaintByIn, db: DB, rules: Rules, clock: Today, caller: Caller,
          rasa: Rasa):
    ticket = complaints.start(db, rules, reference, data.by, clock.now(), caller)
    return _told(db, rules, rasa, ticket, data.by, caller)


@router.post("/complaints/{reference}/resolve", response_model=ComplaintDetailOut)
def resolve(reference: str, data: ComplaintResolveIn, db: DB, rules: Rules, clock: Today, caller: Caller,
            rasa: Rasa):
    ticket = complaints.resolve(db, rules, reference, data.by, data.resolution, clock.now(), caller)
    return _told(db, rules, rasa, ticket, data.by, caller)


@router.post("/complaints/{reference}/close", response_model=ComplaintDetailOut)
def close(reference: str, data: ComplaintCloseIn, db: DB, rules: Rules, clock: Today, caller: Caller,
          rasa: Rasa):
    ticket = complaints.close(db, rules, reference, data.by, data.note, clock.now(), caller)
    return _told(db, rules, rasa, ticket, data.by, caller)


@router.post("/complaints/{reference}/extend", response_model=ComplaintDetailOut)
def extend(reference: str, data: ComplaintExtendIn, db: DB, rules: Rules, clock: Today, caller: Caller,
           rasa: Rasa):
    """Extend the deadline once, with a required reason, to at most 60 days after receipt."""
    ticket = complaints.extend(db, rules, reference, data.by, data.reason, data.due_date, clock.now(), caller)
    return _told(db, rules, rasa, ticket, data.by, caller)


@router.post("/complaints/{reference}/clear-reminder-pause", response_model=ComplaintDetailOut)
def clear_reminder_pause(reference: str, data: ComplaintByIn, db: DB, rules: Rules, clock: Today, caller: Caller):
    ticket = complaints.clear_reminder_pause(db, rules, reference, data.by, clock.now(), caller)
    return complaints.detail_out(db, rules, ticket)
