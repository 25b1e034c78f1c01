"""Human handoff (转人工): the queue of conversations the bot passes to staff.

Rules (config/business.yml, ``handoff``): a priority per reason, staffed hours, the first-response
target and how the wait quoted to the customer is estimated. Times come from the injected clock
and are kept in the business timezone. The bot's summary, staff notes and CSAT comments are masked
(mask_numbers) before they are stored, so no full phone, ID or card number reaches the database.

State changes are conditional UPDATEs (``_transition``): two staff claiming one case at the same
moment cannot both win, on SQLite or PostgreSQL.
"""
from __future__ import annotations

import math
import statistics
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import texts
from backend.core.clock import DailyWindow, local
from backend.core.config import BusinessRules
from backend.core.errors import AppError, not_found
from backend.models import Channel, Customer, HandoffCase, HandoffNote, HandoffReason, HandoffStatus
from backend.schemas import (
    HandoffCreatedOut, HandoffCustomerOut, HandoffIn, HandoffNoteOut, HandoffOut, HandoffQueueItem,
)

from . import accounts, audit, records
from .masking import mask_name, mask_numbers, mask_phone

LIVE = (HandoffStatus.open, HandoffStatus.claimed)
REFERENCE_TRIES = 5

# --------------------------------------------------------------------------- business time

def _tz(rules: BusinessRules) -> ZoneInfo:
    return ZoneInfo(rules.timezone)


def _local(dt: datetime | None, rules: BusinessRules) -> datetime | None:
    """In the business timezone. SQLite returns naive datetimes: the wall time they were stored in."""
    return local(dt, _tz(rules))


def is_staffed(rules: BusinessRules, now: datetime) -> bool:
    return DailyWindow.staffed(rules).contains(now)


def next_staffed_at(rules: BusinessRules, now: datetime) -> datetime:
    """The next time staff come in, after now."""
    return DailyWindow.staffed(rules).next_start(now)


def staffed_seconds(rules: BusinessRules, start: datetime, end: datetime) -> float:
    """Seconds between start and end that fall inside staffed hours."""
    return DailyWindow.staffed(rules).seconds_inside(start, end)


# --------------------------------------------------------------------------- reading cases

def get_case(db: Session, case_id: int) -> HandoffCase:
    case = db.get(HandoffCase, case_id)
    if case is None:
        raise not_found(texts.text("errors.things.handoff_case"), "Handoff case")
    return case


def current_case(db: Session, conversation: str) -> HandoffCase | None:
    """The conversation's open or claimed case, if any (there is at most one)."""
    return db.scalar(select(HandoffCase).where(HandoffCase.active_conversation == conversation))


def customer_has_open_case(db: Session, customer_id: int) -> bool:
    """True while the customer has an open or claimed case (the scheduler holds reminders back)."""
    accounts.get_customer(db, customer_id)
    return bool(db.scalar(select(exists().where(
        HandoffCase.customer_id == customer_id, HandoffCase.status.in_(LIVE)))))


def position(db: Session, case: HandoffCase) -> int:
    """1 + the open cases served before this one (higher priority, or same priority and older);
    0 once a staff member has the case."""
    if case.status != HandoffStatus.open:
        return 0
    ahead = db.scalar(select(func.count()).select_from(HandoffCase).where(
        HandoffCase.status == HandoffStatus.open,
        or_(HandoffCase.priority < case.priority,
            and_(HandoffCase.priority == case.priority,
                 or_(HandoffCase.created_at < case.created_at,
                     and_(HandoffCase.created_at == case.created_at, HandoffCase.id < case.id)))),
    ))
    return ahead + 1


def median_first_response_seconds(db: Session, rules: BusinessRules) -> float | None:
    """Median first-response time, in staffed seconds, of the last N answered cases (None: no history)."""
    rows = db.execute(
        select(HandoffCase.created_at, HandoffCase.first_response_at)
        .where(HandoffCase.first_response_at.is_not(None))
        .order_by(HandoffCase.first_response_at.desc(), HandoffCase.id.desc())
        .limit(rules.handoff.wait_estimate.history_cases)
    ).all()
    if not rows:
        return None
    return statistics.median(staffed_seconds(rules, created, answered) for created, answered in rows)


def wait_minutes(db: Session, rules: BusinessRules, case: HandoffCase, now: datetime) -> int:
    """Median first response x queue position, plus the time until staff come in when outside
    hours; rounded up to whole minutes, never below one while the case waits."""
    pos = position(db, case)
    if pos == 0:
        return 0
    median = median_first_response_seconds(db, rules)
    per_case = median if median is not None else rules.handoff.wait_estimate.default_minutes * 60
    seconds = per_case * pos
    if not is_staffed(rules, now):
        seconds += (next_staffed_at(rules, now) - _local(now, rules)).total_seconds()
    return max(1, math.ceil(round(seconds / 60, 6)))


# --------------------------------------------------------------------------- API shapes

def _conversation_masked(conversation: str) -> str:
    channel, _, external_id = conversation.partition(":")
    return f"{channel}:{accounts._mask_external(Channel(channel), external_id)}"


def _fields(case: HandoffCase, rules: BusinessRules) -> dict:
    return dict(
        id=case.id, reference=case.reference, conversation_masked=_conversation_masked(case.conversation),
        channel=case.channel.value, customer_id=case.customer_id, reason=case.reason.value,
        priority=case.priority, summary=case.summary, status=case.status.value, assigned_to=case.assigned_to,
        created_at=_local(case.created_at, rules), claimed_at=_local(case.claimed_at, rules),
        first_response_at=_local(case.first_response_at, rules), closed_at=_local(case.closed_at, rules),
        csat=case.csat, csat_comment=case.csat_comment,
    )


def case_out(case: HandoffCase, rules: BusinessRules) -> HandoffOut:
    return HandoffOut(**_fields(case, rules))


def created_out(db: Session, rules: BusinessRules, case: HandoffCase, now: datetime) -> HandoffCreatedOut:
    staffed = is_staffed(rules, now)
    return HandoffCreatedOut(
        **_fields(case, rules), position=position(db, case), wait_minutes=wait_minutes(db, rules, case, now),
        staffed=staffed, next_staffed_at=None if staffed else next_staffed_at(rules, now),
    )


def note_out(note: HandoffNote, rules: BusinessRules) -> HandoffNoteOut:
    return HandoffNoteOut(id=note.id, case_id=note.case_id, author=note.author, text=note.text,
                          created_at=_local(note.created_at, rules))


def queue(db: Session, rules: BusinessRules, now: datetime) -> list[HandoffQueueItem]:
    """Open and claimed cases, most urgent first, then longest waiting."""
    now = _local(now, rules)
    target = rules.handoff.first_response_target_minutes * 60
    rows = db.execute(
        select(HandoffCase, Customer).outerjoin(Customer, HandoffCase.customer_id == Customer.id)
        .where(HandoffCase.status.in_(LIVE))
        .order_by(HandoffCase.priority, HandoffCase.created_at, HandoffCase.id)
    ).all()
    out = []
    for case, customer in rows:
        created, answered = _local(case.created_at, rules), _local(case.first_response_at, rules)
        out.append(HandoffQueueItem(
            **_fields(case, rules),
            customer=HandoffCustomerOut(id=customer.id, name_masked=mask_name(customer.name),
                                        phone_masked=mask_phone(customer.phone)) if customer else None,
            waiting_seconds=max(0, int(((answered or now) - created).total_seconds())),
            overdue=answered is None and staffed_seconds(rules, created, now) > target,
        ))
    return out


# --------------------------------------------------------------------------- writes

def _closed() -> AppError:
    return AppError(409, "case_closed", texts.text("errors.handoff.case_closed"), "The case is already closed")


_transition = records.transition


def _next_reference(db: Session, now: datetime) -> str:
    return records.next_reference(db, HandoffCase.reference, "HO", now)


def open_case(db: Session, rules: BusinessRules, data: HandoffIn, now: datetime,
              actor: str) -> tuple[HandoffCase, bool]:
    """Open a case for a conversation; (case, True). If the conversation already has an open or
    claimed case, that case is returned instead: (case, False)."""
    now = _local(now, rules)
    if (existing := current_case(db, data.conversation)) is not None:
        return existing, False
    if data.customer_id is not None:
        accounts.get_customer(db, data.customer_id)
    reason = HandoffReason(data.reason)
    summary = mask_numbers(data.summary)
    for _ in range(REFERENCE_TRIES):
        case = HandoffCase(
            reference=_next_reference(db, now), conversation=data.conversation,
            active_conversation=data.conversation, channel=Channel(data.channel), customer_id=data.customer_id,
            reason=reason, priority=rules.handoff.priorities[reason.value], summary=summary,
            status=HandoffStatus.open, created_at=now,
        )
        try:
            with db.begin_nested():
                db.add(case)
        except IntegrityError:
            # The same conversation handed off concurrently, or the reference number was just taken.
            if (existing := current_case(db, data.conversation)) is not None:
                return existing, False
            continue
        audit.record(db, actor, "handoff.opened", "handoff_case", case.id, reference=case.reference,
                     reason=reason.value, priority=case.priority, channel=data.channel, customer_id=data.customer_id)
        return case, True
    raise AppError(409, "busy", texts.text("errors.busy"), "Could not number the case; try again")


def claim(db: Session, rules: BusinessRules, case_id: int, staff: str, now: datetime, via: str) -> HandoffCase:
    case, now = get_case(db, case_id), _local(now, rules)
    if not _transition(db, case, HandoffCase.status == HandoffStatus.open,
                       status=HandoffStatus.claimed, assigned_to=staff, claimed_at=now):
        if case.status == HandoffStatus.closed:
            raise _closed()
        if case.assigned_to == staff:
            return case  # already theirs
        raise AppError(409, "already_claimed", texts.text("errors.handoff.already_claimed", staff=case.assigned_to),
                       f"The case is already claimed by {case.assigned_to}")
    audit.record(db, staff, "handoff.claimed", "handoff_case", case.id, via=via)
    return case


def reassign(db: Session, rules: BusinessRules, case_id: int, staff: str, by: str, role: str, now: datetime,
             via: str) -> HandoffCase:
    if role != "supervisor":
        raise AppError(403, "forbidden", texts.text("errors.handoff.reassign_supervisor_only"),
                       "Only a supervisor can reassign a case")
    case, now = get_case(db, case_id), _local(now, rules)
    previous = case.assigned_to
    if case.status == HandoffStatus.claimed and previous == staff:
        return case  # nothing to change
    if not _transition(db, case, HandoffCase.status.in_(LIVE),
                       status=HandoffStatus.claimed, assigned_to=staff, claimed_at=case.claimed_at or now):
        raise _closed()
    audit.record(db, by, "handoff.reassigned", "handoff_case", case.id,
                 **{"from": previous, "to": staff, "role": role, "via": via})
    return case


def first_response(db: Session, rules: BusinessRules, case_id: int, now: datetime, via: str) -> HandoffCase:
    """The assigned staff member's first reply reached the customer; recorded once."""
    case, now = get_case(db, case_id), _local(now, rules)
    if case.first_response_at is not None:
        return case
    if case.status == HandoffStatus.closed:
        raise _closed()
    if case.status == HandoffStatus.open:
        raise AppError(409, "not_claimed", texts.text("errors.handoff.not_claimed_reply"),
                       "Claim the case before replying")
    if _transition(db, case, HandoffCase.first_response_at.is_(None), HandoffCase.status == HandoffStatus.claimed,
                   first_response_at=now):
        audit.record(db, case.assigned_to, "handoff.first_response", "handoff_case", case.id, via=via)
    return case


def add_note(db: Session, rules: BusinessRules, case_id: int, author: str, text: str, now: datetime,
             via: str) -> HandoffNote:
    case, now = get_case(db, case_id), _local(now, rules)
    note = HandoffNote(case_id=case.id, author=author, text=mask_numbers(text), created_at=now)
    db.add(note)
    db.flush()
    audit.record(db, author, "handoff.note_added", "handoff_case", case.id, note_id=note.id, via=via)
    return note


def close(db: Session, rules: BusinessRules, case_id: int, by: str, now: datetime, via: str) -> HandoffCase:
    """Close a live case. Call it only once Rasa has resumed the conversation (RasaClient.hand_back, as
    services.console.hand_back does): a case closed otherwise leaves the borrower's conversation paused
    for good. No service (API-key) route closes a case; tests/backend/test_handoff_resume.py holds every
    caller to this."""
    case, now = get_case(db, case_id), _local(now, rules)
    if not _transition(db, case, HandoffCase.status.in_(LIVE),
                       status=HandoffStatus.closed, closed_at=now, active_conversation=None):
        raise _closed()
    audit.record(db, by, "handoff.closed", "handoff_case", case.id, via=via)
    return case


def rate(db: Session, case_id: int, score: int, comment: str | None, actor: str) -> HandoffCase:
    """The customer's satisfaction score (1-5), once, after the case is closed."""
    case = get_case(db, case_id)
    if case.status != HandoffStatus.closed:
        raise AppError(409, "not_closed", texts.text("errors.handoff.not_closed"),
                       "A case can be rated once it is closed")
    if not _transition(db, case, HandoffCase.status == HandoffStatus.closed, HandoffCase.csat.is_(None),
                       csat=score, csat_comment=mask_numbers(comment) if comment else None):
        raise AppError(409, "already_rated", texts.text("errors.handoff.already_rated"),
                       "The case has already been rated")
    audit.record(db, actor, "handoff.rated", "handoff_case", case.id, score=score)
    return case
