"""The understanding inbox (理解收件箱): the bot reports messages it did not understand well
(``POST /api/v1/nlu-review/items``, X-API-Key); the staff console lists them (``/console/nlu-inbox``),
supervisors confirm, correct or dismiss them, and any staff member may flag a borrower message of a
case they can see. The rules and the export: backend.services.nlu_review.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from backend.api.console_deps import Staff, StaffWrite
from backend.api.deps import DB, PathId, Rasa, Rules, Scoped, Today
from backend.api.routes.console import _page
from backend.models import ReviewSource, ReviewStatus
from backend.nlu_review_schemas import (
    FlaggedOut, FlagIn, NluDecisionIn, NluInboxOut, NluReviewIn, NluReviewItemOut, NluReviewRecordedOut,
)
from backend.services import nlu_review

router = APIRouter()

def _secret(request: Request) -> str:
    return request.app.state.settings.nlu_review_hash_secret


# --------------------------------------------------------------------------- the bot

@router.post("/api/v1/nlu-review/items", response_model=NluReviewRecordedOut, status_code=201, tags=["nlu-review"],
             responses={200: {"model": NluReviewRecordedOut, "description": "A known text counted again, or "
                                                                             "this message already recorded"}})
def record_item(data: NluReviewIn, request: Request, response: Response, db: DB, rules: Rules, clock: Today,
                caller: Scoped("nlu-review:write")):
    """A borrower message that fell back or scored under ``nlu_review.review_below``: stored masked
    for review in the console (the same masked text again counts one more occurrence)."""
    item, outcome = nlu_review.record(
        db, rules, _secret(request), conversation=data.conversation, channel=data.channel, text=data.text,
        timestamp=data.timestamp, source=ReviewSource(data.source), predicted_intent=data.predicted_intent,
        confidence=data.confidence, ranking=[r.model_dump() for r in data.ranking], now=clock.now(), actor=caller)
    if outcome != "created":
        response.status_code = 200
    return NluReviewRecordedOut(id=item.id, outcome=outcome, occurrences=item.occurrences, status=item.status.value)


# --------------------------------------------------------------------------- the console

@router.get("/console/nlu-inbox", response_class=HTMLResponse, include_in_schema=False)
def inbox_page(request: Request, db: DB, rules: Rules, clock: Today):
    return _page(request, db, rules, clock, "nlu_inbox.html", page="nlu-inbox",
                 review_below=rules.nlu_review.review_below)


@router.get("/console/api/nlu-inbox", response_model=NluInboxOut, include_in_schema=False)
def api_inbox(db: DB, rules: Rules, session: Staff,
              status: Annotated[list[ReviewStatus] | None, Query()] = None,
              source: Annotated[list[ReviewSource] | None, Query()] = None):
    items = nlu_review.inbox(db, status, source)
    return NluInboxOut(items=[nlu_review.item_out(i, rules) for i in items], intents=nlu_review.intents_out(),
                       can_review=nlu_review.can_review(session), review_below=rules.nlu_review.review_below)


@router.post("/console/api/nlu-inbox/{item_id}/intent", response_model=NluReviewItemOut, include_in_schema=False)
def api_decide_intent(item_id: PathId, data: NluDecisionIn, db: DB, rules: Rules, clock: Today, session: StaffWrite):
    """Confirm the predicted intent or correct it (supervisors)."""
    return nlu_review.item_out(nlu_review.decide(db, session, item_id, data.intent, clock.now()), rules)


@router.post("/console/api/nlu-inbox/{item_id}/dismiss", response_model=NluReviewItemOut, include_in_schema=False)
def api_dismiss(item_id: PathId, db: DB, rules: Rules, clock: Today, session: StaffWrite):
    """Not a borrower intent (noise): never exported (supervisors)."""
    return nlu_review.item_out(nlu_review.decide(db, session, item_id, None, clock.now()), rules)


@router.post("/console/api/cases/{case_id}/flag-message", response_model=FlaggedOut, include_in_schema=False)
def api_flag(case_id: PathId, data: FlagIn, request: Request, response: Response, db: DB, rules: Rules, clock: Today,
             session: StaffWrite, rasa: Rasa):
    """「标记理解有误」 on a borrower message of the case's transcript (any staff member who can see the case)."""
    item, outcome = nlu_review.flag(db, rules, rasa, _secret(request), session, case_id, data.timestamp, clock.now())
    response.status_code = 201 if outcome == "created" else 200
    return FlaggedOut(outcome=outcome, item=nlu_review.item_out(item, rules))
