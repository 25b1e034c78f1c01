"""What the staff console shows: who may see a case, the transcript as staff read it, the customer
panel, staff replies and handing a conversation back to the assistant.

Every number a person could be identified by is masked on the way out (masking.py): the tracker
stores the borrower's words as typed, so the transcript is masked when it is rendered.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.config import BusinessRules
from backend.core.errors import AppError
from backend.models import CannedReply, HandoffCase, HandoffStatus, PromiseStatus, PromiseToPay, StaffSession

from . import accounts, audit, handoff
from .masking import last4, mask_numbers, mask_phone
from .rasa_api import RasaClient

SYSTEM_EVENTS = {"pause": "会话已转人工（智能助手暂停）", "resume": "会话已交回智能助手"}


def can_view(session: StaffSession, case: HandoffCase) -> bool:
    """Supervisors see every case; an agent sees waiting cases and their own."""
    if session.staff.role.value == "supervisor":
        return True
    return case.status == HandoffStatus.open or case.assigned_to == session.staff.username


def viewable_case(db: Session, session: StaffSession, case_id: int) -> HandoffCase:
    case = handoff.get_case(db, case_id)
    if not can_view(session, case):
        raise AppError(403, "not_your_case", f"该工单已由{case.assigned_to}接手，仅主管可查看",
                       "The case is claimed by another agent; only a supervisor may open it")
    return case


def own_case(db: Session, session: StaffSession, case_id: int) -> HandoffCase:
    """A live case claimed by the signed-in staff member (only they reply, note or hand it back)."""
    case = viewable_case(db, session, case_id)
    if case.status == HandoffStatus.closed:
        raise AppError(409, "case_closed", "该工单已结束", "The case is already closed")
    if case.assigned_to != session.staff.username:
        raise AppError(409, "not_claimed", "请先接手该工单", "Claim the case first")
    return case


# --------------------------------------------------------------------------- transcript

def transcript(events: list[dict], tz: ZoneInfo) -> list[dict]:
    """Borrower, bot and staff turns (plus pause / resume markers), masked, in order."""
    out = []
    for e in events:
        kind = e.get("event")
        at = datetime.fromtimestamp(e.get("timestamp", 0), tz).isoformat(timespec="seconds")
        if kind == "user" and e.get("text") and not str(e["text"]).startswith("/"):
            out.append({"who": "borrower", "text": mask_numbers(e["text"]), "at": at})
        elif kind == "user" and (e.get("parse_data") or {}).get("intent", {}).get("name", "").startswith("EXTERNAL_"):
            continue  # a trigger from the console or the scheduler, not something the borrower said
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
    """Masked identity, loans with what is due, segment, promises; plan requests and complaints
    join when those workflows exist (the keys are already here for the page)."""
    if customer_id is None:
        return None
    c = accounts.get_customer(db, customer_id)
    loans = []
    for loan in accounts.loans_of(db, customer_id):
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
        "plan_requests": [], "complaints": [],
    }


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
        raise AppError(403, "forbidden", "只有主管可以编辑快捷回复", "Only a supervisor can edit canned replies")
    last = max((r.position for r in canned_replies(db)), default=0)
    reply_ = CannedReply(title=title, text=text, position=last + 1)
    db.add(reply_)
    db.flush()
    audit.record(db, session.staff.username, "canned_reply.added", "canned_reply", reply_.id, title=title)
    return reply_


def delete_canned_reply(db: Session, session: StaffSession, reply_id: int) -> None:
    if session.staff.role.value != "supervisor":
        raise AppError(403, "forbidden", "只有主管可以编辑快捷回复", "Only a supervisor can edit canned replies")
    row = db.get(CannedReply, reply_id)
    if row is None:
        raise AppError(404, "not_found", "未找到该快捷回复", "Canned reply not found")
    db.delete(row)
    audit.record(db, session.staff.username, "canned_reply.deleted", "canned_reply", reply_id)
