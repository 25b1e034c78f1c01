"""The staff console: server-rendered pages (Chinese UI) and the JSON endpoints their script calls.

Pages need a signed-in session (else a redirect to the sign-in page); JSON endpoints answer 401.
Every state-changing request carries the session's CSRF token in the X-CSRF-Token header.
"""
from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

import texts
from backend.api.console_deps import COOKIE, Staff, StaffWrite
from backend.api.deps import DB, PathId, Rasa, Rules, Today
from backend.console_schemas import (
    CannedReplyOut, CaseDetailOut, ComplaintListOut, ConsoleComplaintOut, DashboardOut, PlanDetailOut, PlanListOut,
    QueueOut, StaffMemberOut, TranscriptOut,
)
from backend.core.errors import AppError
from backend.models import ComplaintStatus, PlanStatus, PlanType
from backend.models.enums import label_table
from backend.plan_schemas import PlanRequestOut, PlanStatusName, PlanTypeName
from backend.schemas import ComplaintDetailOut, ComplaintStatusName, HandoffNoteOut, HandoffOut
from backend.services import audit, complaints, console, handoff, notices, plans, staff
from backend.services.dashboard import dashboard
from backend.services.rasa_api import RasaUnavailable

router = APIRouter(tags=["console"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates" / "console")
# Every page embeds the Chinese labels of the enums (texts/zh/labels.yml); the scripts show those, never raw values.
templates.env.globals["labels"] = label_table()
LOGIN_CSRF = "console_login_csrf"


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _cookie(request: Request, response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, httponly=True, samesite="strict", max_age=max_age, path="/console",
                        secure=request.app.state.settings.console_cookie_secure)


# --------------------------------------------------------------------------- sign in / out

def _login_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(request, "login.html", {"csrf": token, "error": error},
                                          status_code=status)
    _cookie(request, response, LOGIN_CSRF, token)
    return response


@router.get("/console/login", response_class=HTMLResponse)
def login_page(request: Request):
    return _login_page(request)


@router.post("/console/login")
def login(request: Request, db: DB, rules: Rules, clock: Today, username: str = Form(""),
          password: str = Form(""), csrf: str = Form("")):
    expected = request.cookies.get(LOGIN_CSRF)
    if not expected or not secrets.compare_digest(expected, csrf):
        return _login_page(request, texts.text("errors.console.login_expired"), 403)
    try:
        user, token = staff.sign_in(db, rules, username, password, _client(request), clock.now())
    except AppError as exc:
        db.commit()  # the failed attempt counts towards the rate limit
        return _login_page(request, exc.message_zh, exc.status)
    response = RedirectResponse("/console", status_code=303)
    _cookie(request, response, COOKIE, token, max_age=rules.console.session_max_hours * 3600)
    response.delete_cookie(LOGIN_CSRF, path="/console")
    return response


@router.post("/console/logout")
def logout(request: Request, db: DB, session: Staff, clock: Today, csrf: str = Form("")):
    staff.check_csrf(session, csrf)
    staff.sign_out(db, session, clock.now())
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


# --------------------------------------------------------------------------- pages

def _page(request: Request, db: DB, rules: Rules, clock: Today, template: str, **context):
    session = staff.session_for(db, rules, request.cookies.get(COOKIE), clock.now())
    if session is None:
        db.commit()
        return RedirectResponse("/console/login", status_code=303)
    me = session.staff
    return templates.TemplateResponse(request, template, {
        "me": {"username": me.username, "name": me.display_name, "role": me.role.value},
        "csrf": session.csrf_token, **context})


@router.get("/console", response_class=HTMLResponse)
def queue_page(request: Request, db: DB, rules: Rules, clock: Today):
    return _page(request, db, rules, clock, "queue.html", page="queue",
                 target_minutes=rules.handoff.first_response_target_minutes)


@router.get("/console/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: PathId, request: Request, db: DB, rules: Rules, clock: Today):
    return _page(request, db, rules, clock, "case.html", page="case", case_id=case_id)


@router.get("/console/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, db: DB, rules: Rules, clock: Today):
    return _page(request, db, rules, clock, "dashboard.html", page="dashboard")


@router.get("/console/plans", response_class=HTMLResponse)
def plans_page(request: Request, db: DB, rules: Rules, clock: Today):
    return _page(request, db, rules, clock, "plans.html", page="plans")


@router.get("/console/plans/{reference}", response_class=HTMLResponse)
def plan_page(reference: str, request: Request, db: DB, rules: Rules, clock: Today):
    return _page(request, db, rules, clock, "plan.html", page="plan", reference=reference,
                 supervisor_limit=rules.repayment_plans.supervisor_approval_above)


@router.get("/console/complaints", response_class=HTMLResponse)
def complaints_page(request: Request, db: DB, rules: Rules, clock: Today):
    return _page(request, db, rules, clock, "complaints.html", page="complaints",
                 decision_days=rules.complaints.decision_days)


@router.get("/console/complaints/{reference}", response_class=HTMLResponse)
def complaint_page(reference: str, request: Request, db: DB, rules: Rules, clock: Today):
    return _page(request, db, rules, clock, "complaint.html", page="complaint", reference=reference,
                 max_total_days=rules.complaints.max_total_days)


# --------------------------------------------------------------------------- JSON for the pages

class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=1000)


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff: str = Field(min_length=1, max_length=50)


class CannedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=30)
    text: str = Field(min_length=1, max_length=1000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


class ReasonIn(BaseModel):
    """A reason the service requires (reject, extend): a blank one gets the service's own 422."""
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


class ExtendIn(ReasonIn):
    reason: str = Field(default="", max_length=1000)
    due_date: date | None = None  # by default the latest allowed (received + max_total_days)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: str = Field(default="", max_length=2000)


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise AppError(422, "empty", texts.text("errors.empty_text"), "Text must not be blank")
    return value


@router.get("/console/api/queue", response_model=QueueOut)
def api_queue(db: DB, rules: Rules, clock: Today, session: Staff):
    return {"cases": [item.model_dump(mode="json") for item in handoff.queue(db, rules, clock.now())],
            "target_minutes": rules.handoff.first_response_target_minutes}


@router.get("/console/api/cases/{case_id}", response_model=CaseDetailOut, response_model_exclude_unset=True)
def api_case(case_id: PathId, db: DB, rules: Rules, clock: Today, session: Staff, rasa: Rasa):
    case = console.viewable_case(db, session, case_id)
    audit.record(db, session.staff.username, "handoff.viewed", "handoff_case", case.id, customer_id=case.customer_id)
    try:  # the case and the customer are still shown when the conversation store cannot answer
        transcript, transcript_error = console.transcript(rasa.events(case.conversation), handoff._tz(rules)), None
    except RasaUnavailable as exc:
        transcript, transcript_error = None, exc.message_zh
    return {
        "case": handoff.case_out(case, rules).model_dump(mode="json"),
        "notes": [handoff.note_out(n, rules).model_dump(mode="json") for n in case.notes],
        "customer": console.customer_panel(db, rules, case.customer_id, clock.today()),
        "transcript": transcript, "transcript_error": transcript_error,
        "mine": case.assigned_to == session.staff.username,
    }


@router.get("/console/api/cases/{case_id}/transcript", response_model=TranscriptOut,
            response_model_exclude_unset=True)
def api_transcript(case_id: PathId, db: DB, rules: Rules, session: Staff, rasa: Rasa):
    case = console.viewable_case(db, session, case_id)
    return {"status": case.status.value, "assigned_to": case.assigned_to,
            "transcript": console.transcript(rasa.events(case.conversation), handoff._tz(rules))}


@router.post("/console/api/cases/{case_id}/claim", response_model=HandoffOut)
def api_claim(case_id: PathId, db: DB, rules: Rules, clock: Today, session: StaffWrite):
    case = handoff.claim(db, rules, case_id, session.staff.username, clock.now(), "console")
    return handoff.case_out(case, rules).model_dump(mode="json")


@router.post("/console/api/cases/{case_id}/reassign", response_model=HandoffOut)
def api_reassign(case_id: PathId, data: StaffIn, db: DB, rules: Rules, clock: Today, session: StaffWrite):
    if data.staff not in {u for u, _, _ in staff.staff_names(db)}:
        raise AppError(422, "unknown_staff", texts.text("errors.console.unknown_staff"), "No such staff member")
    case = handoff.reassign(db, rules, case_id, data.staff, session.staff.username, session.staff.role.value,
                            clock.now(), "console")
    return handoff.case_out(case, rules).model_dump(mode="json")


@router.post("/console/api/cases/{case_id}/reply", response_model=HandoffOut)
def api_reply(case_id: PathId, data: TextIn, db: DB, rules: Rules, clock: Today, session: StaffWrite, rasa: Rasa):
    case = console.reply(db, rules, rasa, session, case_id, _text(data.text), clock.now())
    return handoff.case_out(case, rules).model_dump(mode="json")


@router.post("/console/api/cases/{case_id}/notes", response_model=HandoffNoteOut, status_code=201)
def api_note(case_id: PathId, data: TextIn, db: DB, rules: Rules, clock: Today, session: StaffWrite):
    console.viewable_case(db, session, case_id)
    note = handoff.add_note(db, rules, case_id, session.staff.username, _text(data.text), clock.now(), "console")
    return handoff.note_out(note, rules).model_dump(mode="json")


@router.post("/console/api/cases/{case_id}/hand-back", response_model=HandoffOut)
def api_hand_back(case_id: PathId, db: DB, rules: Rules, clock: Today, session: StaffWrite, rasa: Rasa):
    case = console.hand_back(db, rules, rasa, session, case_id, clock.now())
    return handoff.case_out(case, rules).model_dump(mode="json")


@router.get("/console/api/staff", response_model=list[StaffMemberOut])
def api_staff(db: DB, session: Staff):
    return [{"username": u, "name": d, "role": r} for u, d, r in staff.staff_names(db)]


@router.get("/console/api/canned", response_model=list[CannedReplyOut])
def api_canned(db: DB, session: Staff):
    return [{"id": r.id, "title": r.title, "text": r.text} for r in console.canned_replies(db)]


@router.post("/console/api/canned", response_model=CannedReplyOut, status_code=201)
def api_canned_add(data: CannedIn, db: DB, session: StaffWrite):
    r = console.add_canned_reply(db, session, _text(data.title), _text(data.text))
    return {"id": r.id, "title": r.title, "text": r.text}


@router.delete("/console/api/canned/{reply_id}", status_code=204, response_model=None)
def api_canned_delete(reply_id: PathId, db: DB, session: StaffWrite):
    console.delete_canned_reply(db, session, reply_id)


@router.get("/console/api/dashboard", response_model=DashboardOut)
def api_dashboard(db: DB, rules: Rules, clock: Today, session: Staff):
    return dashboard(db, rules, clock.now())


# --------------------------------------------------------------------------- repayment-plan requests
# The signed-in staff member is the actor and their role comes from the session; the service checks
# the supervisor limit, the states and the reasons, and writes the audit log. Decisions are then
# told to the borrower (backend.services.notices), as through the service API.

@router.get("/console/api/plans", response_model=PlanListOut)
def api_plans(db: DB, rules: Rules, session: Staff,
              status: Annotated[list[PlanStatusName] | None, Query()] = None,
              plan_type: PlanTypeName | None = None, needs_staff_review: bool | None = None):
    return {"requests": console.plan_list(db, rules, [PlanStatus(s) for s in status] if status else None,
                                          PlanType(plan_type) if plan_type else None, needs_staff_review),
            "supervisor_approval_above": str(rules.repayment_plans.supervisor_approval_above)}


@router.get("/console/api/plans/{reference}", response_model=PlanDetailOut)
def api_plan(reference: str, db: DB, rules: Rules, session: Staff):
    return console.plan_detail(db, rules, session, reference)


@router.post("/console/api/plans/{reference}/review", response_model=PlanRequestOut)
def api_plan_review(reference: str, db: DB, rules: Rules, clock: Today, session: StaffWrite):
    req = plans.start_review(db, rules, reference, session.staff.username, clock.now(), "console")
    return plans.request_out(db, rules, req).model_dump(mode="json")


def _plan_told(db, rules, rasa, req, session) -> dict:
    out = plans.request_out(db, rules, req).model_dump(mode="json")
    notices.plan_decided(db, rasa, req, session.staff.username, "console")
    return out


@router.post("/console/api/plans/{reference}/approve", response_model=PlanRequestOut)
def api_plan_approve(reference: str, data: NoteIn | None = None, *, db: DB, rules: Rules, clock: Today,
                     session: StaffWrite, rasa: Rasa):
    data = data or NoteIn()
    req = plans.approve(db, rules, reference, session.staff.username, session.staff.role.value, data.note,
                        clock.today(), clock.now(), "console")
    return _plan_told(db, rules, rasa, req, session)


@router.post("/console/api/plans/{reference}/reject", response_model=PlanRequestOut)
def api_plan_reject(reference: str, data: ReasonIn | None = None, *, db: DB, rules: Rules, clock: Today,
                    session: StaffWrite, rasa: Rasa):
    data = data or ReasonIn()
    req = plans.reject(db, rules, reference, session.staff.username, session.staff.role.value, data.reason,
                       clock.today(), clock.now(), "console")
    return _plan_told(db, rules, rasa, req, session)


# --------------------------------------------------------------------------- complaint tickets

@router.get("/console/api/complaints", response_model=ComplaintListOut)
def api_complaints(db: DB, rules: Rules, clock: Today, session: Staff,
                   status: Annotated[list[ComplaintStatusName] | None, Query()] = None):
    return {"tickets": console.complaint_list(db, rules, clock.now(),
                                              [ComplaintStatus(s) for s in status] if status else None),
            "decision_days": rules.complaints.decision_days}


@router.get("/console/api/complaints/{reference}", response_model=ConsoleComplaintOut)
def api_complaint(reference: str, db: DB, rules: Rules, clock: Today, session: Staff):
    return console.complaint_detail(db, rules, session, reference, clock.now())


def _ticket(db, rules, ticket) -> dict:
    return complaints.detail_out(db, rules, ticket).model_dump(mode="json")


def _ticket_told(db, rules, rasa, ticket, session) -> dict:
    """A status change or an extension: the ticket, after telling the borrower."""
    out = _ticket(db, rules, ticket)
    notices.complaint_updated(db, rasa, ticket, session.staff.username, "console")
    return out


@router.post("/console/api/complaints/{reference}/start", response_model=ComplaintDetailOut)
def api_complaint_start(reference: str, db: DB, rules: Rules, clock: Today, session: StaffWrite, rasa: Rasa):
    ticket = complaints.start(db, rules, reference, session.staff.username, clock.now(), "console")
    return _ticket_told(db, rules, rasa, ticket, session)


@router.post("/console/api/complaints/{reference}/resolve", response_model=ComplaintDetailOut)
def api_complaint_resolve(reference: str, data: ResolveIn | None = None, *, db: DB, rules: Rules, clock: Today,
                          session: StaffWrite, rasa: Rasa):
    data = data or ResolveIn()
    ticket = complaints.resolve(db, rules, reference, session.staff.username, data.resolution, clock.now(), "console")
    return _ticket_told(db, rules, rasa, ticket, session)


@router.post("/console/api/complaints/{reference}/close", response_model=ComplaintDetailOut)
def api_complaint_close(reference: str, data: NoteIn | None = None, *, db: DB, rules: Rules, clock: Today,
                        session: StaffWrite, rasa: Rasa):
    data = data or NoteIn()
    note = data.note.strip() if data.note and data.note.strip() else None
    ticket = complaints.close(db, rules, reference, session.staff.username, note, clock.now(), "console")
    return _ticket_told(db, rules, rasa, ticket, session)


@router.post("/console/api/complaints/{reference}/extend", response_model=ComplaintDetailOut)
def api_complaint_extend(reference: str, data: ExtendIn | None = None, *, db: DB, rules: Rules, clock: Today,
                         session: StaffWrite, rasa: Rasa):
    data = data or ExtendIn()
    ticket = complaints.extend(db, rules, reference, session.staff.username, data.reason, data.due_date, clock.now(),
                               "console")
    return _ticket_told(db, rules, rasa, ticket, session)


@router.post("/console/api/complaints/{reference}/clear-reminder-pause", response_model=ComplaintDetailOut)
def api_complaint_clear_pause(reference: str, db: DB, rules: Rules, clock: Today, session: StaffWrite):
    return _ticket(db, rules, complaints.clear_reminder_pause(db, rules, reference, session.staff.username,
                                                              clock.now(), "console"))
