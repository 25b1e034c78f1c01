"""Complaint tickets: the bot files them and looks them up. Staff work them in the console only
(start, resolve, close, extend, clear the reminder pause: backend.api.routes.console), as the signed-in
staff member; no API key can. Rules and the linking behaviour: backend.services.complaints.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend.api.deps import DB, ApiRoute, PathId, Rules, Scoped, Today
from backend.models import ComplaintStatus
from backend.schemas import (
    ComplaintDetailOut, ComplaintIn, ComplaintListItem, ComplaintOpenedOut, ComplaintOut, ComplaintStatusName,
    ReminderPauseOut,
)
from backend.services import complaints

router = APIRouter(prefix="/api/v1", tags=["complaints"], route_class=ApiRoute)
Caller = Scoped("complaints:bot")


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
def staff_list(db: DB, rules: Rules, clock: Today, _: Scoped("staff:read"),
               status: Annotated[list[ComplaintStatusName] | None, Query()] = None):
    """Tickets for staff, nearest deadline first, with a countdown; the live ones unless ?status= is given."""
    statuses = [ComplaintStatus(s) for s in status] if status else None
    return complaints.staff_list(db, rules, clock.now(), statuses)


@router.get("/complaints/{reference}", response_model=ComplaintDetailOut)
def get_complaint(reference: str, db: DB, rules: Rules, _: Caller):
    """A ticket with its history and linked tickets (the borrower's status query)."""
    return complaints.detail_out(db, rules, complaints.get_ticket(db, reference))


@router.get("/customers/{customer_id}/complaints", response_model=list[ComplaintOut])
def customer_complaints(customer_id: PathId, db: DB, rules: Rules, _: Caller):
    """The customer's tickets, newest first."""
    return complaints.customer_tickets(db, rules, customer_id)


@router.get("/customers/{customer_id}/reminder-pause", response_model=ReminderPauseOut)
def reminder_pause(customer_id: PathId, db: DB, _: Caller) -> ReminderPauseOut:
    """Whether a complaint pauses automated reminders for the customer, and which tickets hold the pause."""
    refs = complaints.reminder_pause_references(db, customer_id)
    return ReminderPauseOut(paused=bool(refs), references=refs)
