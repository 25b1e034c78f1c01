"""Human handoff: the bot opens a case, staff claim, answer and close it, the customer rates it.

The staff console will call backend.services.handoff directly; until staff sign in, the service
caller names the staff member (and the reassigning supervisor's role) in the request.
"""
from __future__ import annotations

from fastapi import APIRouter, Response

from backend.api.deps import DB, Caller, Rules, Today
from backend.core.errors import not_found
from backend.schemas import (
    HandoffClaimIn, HandoffCloseIn, HandoffCreatedOut, HandoffCsatIn, HandoffIn, HandoffNoteIn, HandoffNoteOut,
    HandoffOut, HandoffQueueItem, HandoffReassignIn, OpenHandoffOut,
)
from backend.services import handoff

router = APIRouter(prefix="/api/v1", tags=["handoffs"])


@router.post("/handoffs", response_model=HandoffCreatedOut, status_code=201,
             responses={200: {"model": HandoffCreatedOut, "description": "The conversation's existing case"}})
def open_handoff(data: HandoffIn, response: Response, db: DB, rules: Rules, clock: Today, caller: Caller):
    """Hand a conversation to staff: queue position, an estimated wait, and whether staff are in now."""
    case, created = handoff.open_case(db, rules, data, clock.now(), caller)
    if not created:
        response.status_code = 200
    return handoff.created_out(db, rules, case, clock.now())


@router.get("/handoffs/queue", response_model=list[HandoffQueueItem])
def handoff_queue(db: DB, rules: Rules, clock: Today, _: Caller):
    """Open and claimed cases, by priority then waiting time, with overdue flags."""
    return handoff.queue(db, rules, clock.now())


@router.get("/handoffs/by-conversation/{conversation}", response_model=HandoffOut)
def handoff_by_conversation(conversation: str, db: DB, rules: Rules, _: Caller):
    case = handoff.current_case(db, conversation)
    if case is None:
        raise not_found("进行中的转人工工单", "Open handoff case")
    return handoff.case_out(case, rules)


@router.post("/handoffs/{case_id}/claim", response_model=HandoffOut)
def claim(case_id: int, data: HandoffClaimIn, db: DB, rules: Rules, clock: Today, caller: Caller):
    return handoff.case_out(handoff.claim(db, rules, case_id, data.staff, clock.now(), caller), rules)


@router.post("/handoffs/{case_id}/reassign", response_model=HandoffOut)
def reassign(case_id: int, data: HandoffReassignIn, db: DB, rules: Rules, clock: Today, caller: Caller):
    case = handoff.reassign(db, rules, case_id, data.staff, data.by, data.role, clock.now(), caller)
    return handoff.case_out(case, rules)


@router.post("/handoffs/{case_id}/first-response", response_model=HandoffOut)
def first_response(case_id: int, db: DB, rules: Rules, clock: Today, caller: Caller):
    """The assigned staff member's first reply was sent; only the first call counts."""
    return handoff.case_out(handoff.first_response(db, rules, case_id, clock.now(), caller), rules)


@router.post("/handoffs/{case_id}/notes", response_model=HandoffNoteOut, status_code=201)
def add_note(case_id: int, data: HandoffNoteIn, db: DB, rules: Rules, clock: Today, caller: Caller):
    """A private staff note (never shown to the customer)."""
    return handoff.note_out(handoff.add_note(db, rules, case_id, data.author, data.text, clock.now(), caller), rules)


@router.post("/handoffs/{case_id}/close", response_model=HandoffOut)
def close(case_id: int, data: HandoffCloseIn, db: DB, rules: Rules, clock: Today, caller: Caller):
    return handoff.case_out(handoff.close(db, rules, case_id, data.by, clock.now(), caller), rules)


@router.post("/handoffs/{case_id}/csat", response_model=HandoffOut)
def csat(case_id: int, data: HandoffCsatIn, db: DB, rules: Rules, caller: Caller):
    """The customer's rating, 1-5, once per closed case."""
    return handoff.case_out(handoff.rate(db, case_id, data.score, data.comment, caller), rules)


@router.get("/customers/{customer_id}/open-handoff", response_model=OpenHandoffOut)
def open_handoff_flag(customer_id: int, db: DB, _: Caller) -> OpenHandoffOut:
    """Whether the customer has an open or claimed case (reminders are held back meanwhile)."""
    return OpenHandoffOut(open=handoff.customer_has_open_case(db, customer_id))
