"""Human handoff: the bot opens a case and the customer rates it. Staff claim, reassign, answer, note and
close cases in the console only (backend.api.routes.console), as the signed-in staff member; no API key
can. Closing is the console's hand-back, which resumes the conversation first (services.console.hand_back).
"""
from __future__ import annotations

from fastapi import APIRouter, Response

import texts
from backend.api.deps import DB, ApiRoute, PathId, Rules, Scoped, Today
from backend.core.errors import not_found
from backend.schemas import HandoffCreatedOut, HandoffCsatIn, HandoffIn, HandoffOut, HandoffQueueItem
from backend.services import handoff

router = APIRouter(prefix="/api/v1", tags=["handoffs"], route_class=ApiRoute)
Caller = Scoped("handoffs:bot")


@router.post("/handoffs", response_model=HandoffCreatedOut, status_code=201,
             responses={200: {"model": HandoffCreatedOut, "description": "The conversation's existing case"}})
def open_handoff(data: HandoffIn, response: Response, db: DB, rules: Rules, clock: Today, caller: Caller):
    """Hand a conversation to staff: queue position, an estimated wait, and whether staff are in now."""
    case, created = handoff.open_case(db, rules, data, clock.now(), caller)
    if not created:
        response.status_code = 200
    return handoff.created_out(db, rules, case, clock.now())


@router.get("/handoffs/queue", response_model=list[HandoffQueueItem])
def handoff_queue(db: DB, rules: Rules, clock: Today, _: Scoped("staff:read")):
    """Open and claimed cases, by priority then waiting time, with overdue flags."""
    return handoff.queue(db, rules, clock.now())


@router.get("/handoffs/by-conversation/{conversation}", response_model=HandoffOut)
def handoff_by_conversation(conversation: str, db: DB, rules: Rules, _: Caller):
    case = handoff.current_case(db, conversation)
    if case is None:
        raise not_found(texts.text("errors.things.open_handoff_case"), "Open handoff case")
    return handoff.case_out(case, rules)


@router.post("/handoffs/{case_id}/csat", response_model=HandoffOut)
def csat(case_id: PathId, data: HandoffCsatIn, db: DB, rules: Rules, caller: Caller):
    """The customer's rating, 1-5, once per closed case."""
    return handoff.case_out(handoff.rate(db, case_id, data.score, data.comment, caller), rules)
