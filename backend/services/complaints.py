"""Complaint tickets (投诉工单): opening, linking, the regulatory deadline, staff transitions.

Rules (config/business.yml, ``complaints``):

* Deadline: a decision is due ``decision_days`` (15) after receipt (``due_at = received_at + 15
  days``, to the second). Staff may extend a live ticket once, with a reason, to a business date
  no later than ``max_total_days`` (60) after receipt; the time of day stays that of receipt.
* Priority: high for ``high_priority_categories`` (collection, privacy) or when the bot saw
  distress; the bot then offers a human at once (``offer_human``).
* Reminder pause: a ticket in ``pause_reminders_categories`` (collection) pauses automated
  reminders for its borrower until staff clear it on that ticket; resolving or closing the ticket
  does not lift the pause by itself. ``customer_has_reminder_pause`` is what the scheduler asks.
* Linking ("linked, not duplicated"): a complaint from the same borrower (same customer on any
  channel; without a customer, the same conversation) in the same category as a ticket received
  within ``link_window_days`` (7, inclusive, counted to the second) is
    - appended to that ticket while it is still live (received / in progress): no new ticket, its
      reference is returned, the borrower's words become a ``follow_up`` event on it (raising the
      priority on distress and pausing reminders again where the category says so); outcome
      ``appended``, HTTP 200;
    - otherwise (the earlier ticket already resolved or closed) a new ticket with its own reference
      and its own 15-day deadline, ``linked_to_id`` = the group's first ticket; outcome ``linked``.
  A live ticket keeps one deadline and one reference however many times the borrower repeats the
  complaint; a complaint after a decision is a new matter for the deadline, but staff see the group.

Drafts (status ``draft``, 「草稿（客户未提交完）」): a complaint the borrower started in chat and left
(cancelled, the form expired, asked for a person) is posted by the bot with ``draft: true`` and
whatever it had: at least a category or some words; no contact needed. The rule chosen: a
complaint is a complaint once voiced, so the lender treats a draft as received:

* it gets a reference, ``received_at`` = now and the same 15-day deadline, the same priority rule and
  the same reminder pause as a filed complaint; it is live (``LIVE``): on the staff list by default
  (and under ``?status=draft``), in the dashboard's deadline figures, and staff work it like any ticket
  (start from draft or received, resolve, close, extend). Outcome ``draft``, HTTP 201. Its words are
  kept on its ``drafted`` event as well as in the description.
* completed, not duplicated: when the same borrower (``_same_borrower``: the same conversation, or the
  same customer) files a full complaint while a draft received within ``link_window_days`` is still a
  draft, that draft, whatever its category, is updated in place with the full fields (category,
  description, outcome, contact; the draft's categories are kept among ``other_categories``) and
  becomes ``received``; it keeps its reference, its receipt time and its deadline, so the borrower's
  clock is never restarted to their detriment. Outcome ``completed_draft``, HTTP 200, a ``completed``
  event and an audit row ``complaint.completed``. A draft staff already started or ended is not
  completed: the complaint is filed as any other (linking as above).
* a second draft from the same borrower while one is open is appended to it (``appended``); a draft
  in the category of a live filed ticket is appended to that ticket.

Several categories: ``other_categories`` lists codes besides the main ``category`` (e.g. collection
+ privacy); priority and the reminder pause look at every category; linking goes by the main one. A
follow-up naming new categories adds them to the ticket's ``other_categories``.

Text: the borrower's own words (description, desired outcome, follow-up notes) are stored verbatim
as the record of the complaint and masked (mask_numbers) in every response; the contact preference
and staff text (resolution, extension reason, close note) are masked before they are stored. The
audit log gets references, categories and statuses, never the text.

State changes are conditional UPDATEs (``_transition``), so two staff acting on one ticket at the
same moment cannot both win, on SQLite or PostgreSQL. Every change writes a ComplaintEvent (the
history shown to borrower and staff) and an audit row.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import texts
from backend.core.clock import local
from backend.core.config import BusinessRules
from backend.core.errors import AppError, not_found
from backend.models import (
    Channel, ComplaintCategory, ComplaintEvent, ComplaintEventKind, ComplaintPriority, ComplaintStatus,
    ComplaintTicket, Customer,
)
from backend.models.complaint import CATEGORY_LABELS, STATUS_LABELS
from backend.models.enums import COMPLAINT_LIVE, labels
from backend.schemas import (
    ComplaintCustomerOut, ComplaintDetailOut, ComplaintEventOut, ComplaintIn, ComplaintListItem, ComplaintOpenedOut,
    ComplaintOut,
)

from . import accounts, audit, records
from .masking import mask_name, mask_numbers, mask_phone

# Live: not yet decided. A draft is live: it is on the staff list, counts against its deadline, pauses
# reminders and takes follow-ups like any open ticket.
LIVE = COMPLAINT_LIVE
REFERENCE_TRIES = 5
CUSTOMER = "customer"  # the actor of events the borrower caused

EVENT_LABELS = labels("complaint_event")  # texts/zh/labels.yml


# --------------------------------------------------------------------------- business time

def _tz(rules: BusinessRules) -> ZoneInfo:
    return ZoneInfo(rules.timezone)


def _local(dt: datetime | None, rules: BusinessRules) -> datetime | None:
    """In the business timezone (stored date-times come back aware: backend.models.base.AwareDateTime)."""
    return local(dt, _tz(rules))


def _mask(text: str | None) -> str | None:
    return mask_numbers(text) if text is not None else None


# --------------------------------------------------------------------------- reading tickets

def get_ticket(db: Session, reference: str) -> ComplaintTicket:
    ticket = db.scalar(select(ComplaintTicket).where(ComplaintTicket.reference == reference))
    if ticket is None:
        raise not_found(texts.text("errors.things.complaint"), "Complaint ticket")
    return ticket


def _events(db: Session, ticket: ComplaintTicket) -> list[ComplaintEvent]:
    return list(db.scalars(select(ComplaintEvent).where(ComplaintEvent.ticket_id == ticket.id)
                           .order_by(ComplaintEvent.id)))


def _root_id(ticket: ComplaintTicket) -> int:
    return ticket.linked_to_id or ticket.id


def _group(db: Session, ticket: ComplaintTicket) -> list[ComplaintTicket]:
    """Every ticket of the ticket's group, oldest first (the group's first ticket leads)."""
    root = _root_id(ticket)
    return list(db.scalars(select(ComplaintTicket).where(
        or_(ComplaintTicket.id == root, ComplaintTicket.linked_to_id == root))
        .order_by(ComplaintTicket.received_at, ComplaintTicket.id)))


def customer_has_reminder_pause(db: Session, customer_id: int) -> bool:
    """True while a ticket of the customer pauses automated reminders (the scheduler holds them back)."""
    return bool(reminder_pause_references(db, customer_id))


def reminder_pause_references(db: Session, customer_id: int) -> list[str]:
    accounts.get_customer(db, customer_id)
    return list(db.scalars(select(ComplaintTicket.reference).where(
        ComplaintTicket.customer_id == customer_id, ComplaintTicket.pauses_reminders.is_(True))
        .order_by(ComplaintTicket.received_at, ComplaintTicket.id)))


# --------------------------------------------------------------------------- API shapes

def _conversation_masked(conversation: str) -> str:
    channel, _, external_id = conversation.partition(":")
    return f"{channel}:{accounts._mask_external(Channel(channel), external_id)}"


def _fields(db: Session, ticket: ComplaintTicket, rules: BusinessRules,
            events: list[ComplaintEvent] | None = None) -> dict:
    events = events if events is not None else _events(db, ticket)
    last = events[-1]
    due = _local(ticket.due_at, rules)
    linked_to = (db.scalar(select(ComplaintTicket.reference).where(ComplaintTicket.id == ticket.linked_to_id))
                 if ticket.linked_to_id else None)
    return dict(
        id=ticket.id, reference=ticket.reference, customer_id=ticket.customer_id,
        conversation_masked=_conversation_masked(ticket.conversation), channel=ticket.channel.value,
        category=ticket.category.value, category_label=CATEGORY_LABELS[ticket.category],
        other_categories=list(ticket.other_categories or []),
        other_category_labels=[CATEGORY_LABELS[ComplaintCategory(c)] for c in ticket.other_categories or []],
        description=mask_numbers(ticket.description), desired_outcome=_mask(ticket.desired_outcome),
        contact=ticket.contact, status=ticket.status.value, status_label=STATUS_LABELS[ticket.status],
        priority=ticket.priority.value, distress=ticket.distress, received_at=_local(ticket.received_at, rules),
        due_at=due, due_date=due.date(), extended=ticket.extended, extension_reason=ticket.extension_reason,
        resolution=ticket.resolution, resolved_at=_local(ticket.resolved_at, rules),
        closed_at=_local(ticket.closed_at, rules), linked_to=linked_to, pauses_reminders=ticket.pauses_reminders,
        reminders_cleared_at=_local(ticket.reminders_cleared_at, rules),
        reminders_cleared_by=ticket.reminders_cleared_by,
        last_update_at=_local(last.at, rules), last_update=EVENT_LABELS[last.kind],
    )


def event_out(event: ComplaintEvent, rules: BusinessRules) -> ComplaintEventOut:
    return ComplaintEventOut(
        at=_local(event.at, rules), kind=event.kind.value, label=EVENT_LABELS[event.kind], actor=event.actor,
        from_status=event.from_status.value if event.from_status else None,
        to_status=event.to_status.value if event.to_status else None,
        channel=event.channel.value if event.channel else None, note=_mask(event.note),
    )


def ticket_out(db: Session, rules: BusinessRules, ticket: ComplaintTicket) -> ComplaintOut:
    return ComplaintOut(**_fields(db, ticket, rules))


def detail_out(db: Session, rules: BusinessRules, ticket: ComplaintTicket) -> ComplaintDetailOut:
    events = _events(db, ticket)
    return ComplaintDetailOut(
        **_fields(db, ticket, rules, events), events=[event_out(e, rules) for e in events],
        linked=[t.reference for t in _group(db, ticket) if t.id != ticket.id],
    )


def opened_out(db: Session, rules: BusinessRules, ticket: ComplaintTicket, outcome: str) -> ComplaintOpenedOut:
    detail = detail_out(db, rules, ticket)
    return ComplaintOpenedOut(**detail.model_dump(), outcome=outcome,
                              offer_human=ticket.priority == ComplaintPriority.high)


def customer_tickets(db: Session, rules: BusinessRules, customer_id: int) -> list[ComplaintOut]:
    """The customer's tickets, newest first (「我的投诉怎么样了」)."""
    accounts.get_customer(db, customer_id)
    tickets = db.scalars(select(ComplaintTicket).where(ComplaintTicket.customer_id == customer_id)
                         .order_by(ComplaintTicket.received_at.desc(), ComplaintTicket.id.desc()))
    return [ticket_out(db, rules, t) for t in tickets]


def staff_list(db: Session, rules: BusinessRules, now: datetime,
               statuses: list[ComplaintStatus] | None = None) -> list[ComplaintListItem]:
    """Tickets for staff (by default the live ones), nearest deadline first, then high priority first,
    with the seconds left to the deadline (negative once overdue) for the countdown."""
    now = _local(now, rules)
    statuses = statuses or list(LIVE)
    high_first = case((ComplaintTicket.priority == ComplaintPriority.high, 0), else_=1)
    rows = db.execute(
        select(ComplaintTicket, Customer).outerjoin(Customer, ComplaintTicket.customer_id == Customer.id)
        .where(ComplaintTicket.status.in_(statuses))
        .order_by(ComplaintTicket.due_at, high_first, ComplaintTicket.id)
    ).all()
    out = []
    for ticket, customer in rows:
        live = ticket.status in LIVE
        remaining = math.floor((_local(ticket.due_at, rules) - now).total_seconds()) if live else None
        out.append(ComplaintListItem(
            **_fields(db, ticket, rules),
            customer=ComplaintCustomerOut(id=customer.id, name_masked=mask_name(customer.name),
                                          phone_masked=mask_phone(customer.phone)) if customer else None,
            seconds_remaining=remaining, overdue=remaining is not None and remaining < 0,
        ))
    return out


def deadline_stats(db: Session, rules: BusinessRules, now: datetime, since: datetime | None = None) -> dict:
    """Complaints against their deadline, for the dashboard.

    * ``open``: live tickets now, by time left to their (possibly extended) deadline: ``overdue``
      (past it), ``within_3_days``, ``within_7_days``, ``within_15_days``, ``later`` (only extended
      tickets can be more than 15 days away);
    * ``resolved`` / ``resolved_within_deadline``: resolved tickets (received at or after ``since``,
      when given) and those resolved within ``decision_days`` of receipt, regardless of any extension;
      ``resolved_within_deadline_share`` is their ratio (None without resolved tickets). Closed
      tickets ended without a decision and are not counted.
    """
    now = _local(now, rules)
    day = 86400
    buckets = {"overdue": 0, "within_3_days": 0, "within_7_days": 0, "within_15_days": 0, "later": 0}
    for due_at in db.scalars(select(ComplaintTicket.due_at).where(ComplaintTicket.status.in_(LIVE))):
        left = (_local(due_at, rules) - now).total_seconds()
        key = ("overdue" if left < 0 else "within_3_days" if left <= 3 * day else "within_7_days"
               if left <= 7 * day else "within_15_days" if left <= 15 * day else "later")
        buckets[key] += 1
    query = select(ComplaintTicket.received_at, ComplaintTicket.resolved_at).where(
        ComplaintTicket.status == ComplaintStatus.resolved)
    if since is not None:
        query = query.where(ComplaintTicket.received_at >= _local(since, rules))
    limit = timedelta(days=rules.complaints.decision_days)
    resolved = db.execute(query).all()
    in_time = sum(1 for received, done in resolved if _local(done, rules) - _local(received, rules) <= limit)
    return {
        "open": sum(buckets.values()), "overdue": buckets["overdue"], "due_buckets": buckets,
        "resolved": len(resolved), "resolved_within_deadline": in_time,
        "resolved_within_deadline_share": round(in_time / len(resolved), 4) if resolved else None,
    }


# --------------------------------------------------------------------------- writes

def _ended() -> AppError:
    return AppError(409, "complaint_ended", texts.text("errors.complaints.ended"),
                    "The complaint ticket has already ended")


_transition = records.transition


def _event(db: Session, ticket: ComplaintTicket, now: datetime, actor: str, kind: ComplaintEventKind,
           from_status: ComplaintStatus | None = None, to_status: ComplaintStatus | None = None,
           channel: Channel | None = None, note: str | None = None) -> None:
    db.add(ComplaintEvent(ticket_id=ticket.id, at=now, actor=actor, kind=kind, from_status=from_status,
                          to_status=to_status, channel=channel, note=note))
    db.flush()


def _next_reference(db: Session, now: datetime) -> str:
    return records.next_reference(db, ComplaintTicket.reference, "CP", now)


def _same_borrower(data: ComplaintIn):
    """Same customer on any channel (including their tickets from before they were identified in
    this conversation); without a customer, the same conversation."""
    if data.customer_id is None:
        return ComplaintTicket.conversation == data.conversation
    return or_(ComplaintTicket.customer_id == data.customer_id,
               and_(ComplaintTicket.customer_id.is_(None), ComplaintTicket.conversation == data.conversation))


def _follow_up_note(data: ComplaintIn, categories: list[ComplaintCategory] | None = None) -> str:
    lines = [data.description or ""] if (data.description or "").strip() else []
    if categories:
        separator = texts.text("backend.complaint_note.category_separator")
        lines.append(texts.text("backend.complaint_note.categories",
                                categories=separator.join(CATEGORY_LABELS[c] for c in categories)))
    if data.desired_outcome:
        lines.append(texts.text("backend.complaint_note.desired_outcome", outcome=data.desired_outcome))
    if data.contact:
        lines.append(texts.text("backend.complaint_note.contact", contact=mask_numbers(data.contact)))
    return "\n".join(lines) or texts.text("backend.complaint_note.empty")


def _categories(data: ComplaintIn) -> tuple[ComplaintCategory, list[ComplaintCategory]]:
    """(main category, other categories): others without duplicates or the main one, in the order
    given. A draft without a main category takes its first other category, else ``other``."""
    try:
        named = [ComplaintCategory(c) for c in ([data.category] if data.category else []) + list(data.other_categories)]
    except ValueError:
        raise AppError(422, "invalid_category", texts.text("errors.complaints.invalid_category"),
                       "Unknown complaint category") from None
    main = named[0] if named else ComplaintCategory.other
    others: list[ComplaintCategory] = []
    for c in named[1:]:
        if c != main and c not in others:
            others.append(c)
    return main, others


def _merge_others(main: ComplaintCategory, *groups) -> list[str]:
    """Category codes of the groups, in order, without duplicates or the main category."""
    out: list[str] = []
    for group in groups:
        for c in group:
            value = ComplaintCategory(c).value
            if value != main.value and value not in out:
                out.append(value)
    return out


def _open_draft(db: Session, data: ComplaintIn, since: datetime) -> ComplaintTicket | None:
    """The borrower's newest draft received within the link window, whatever its category (the bot
    drafts what it had, often before the category was settled)."""
    return db.scalar(select(ComplaintTicket).where(
        _same_borrower(data), ComplaintTicket.status == ComplaintStatus.draft, ComplaintTicket.received_at >= since)
        .order_by(ComplaintTicket.received_at.desc(), ComplaintTicket.id.desc()).limit(1))


def open_ticket(db: Session, rules: BusinessRules, data: ComplaintIn, now: datetime,
                actor: str) -> tuple[ComplaintTicket, str]:
    """Store a complaint or a draft; (ticket, outcome) with outcome ``new``, ``linked``, ``appended``,
    ``draft`` or ``completed_draft`` (see the module docstring)."""
    now = _local(now, rules)
    cr = rules.complaints
    category, others = _categories(data)
    if data.customer_id is not None:
        accounts.get_customer(db, data.customer_id)
    channel = Channel(data.channel)
    every = [category, *others]
    high = any(c.value in cr.high_priority_categories for c in every) or data.distress
    pauses = any(c.value in cr.pause_reminders_categories for c in every)
    since = now - timedelta(days=cr.link_window_days)

    draft = _open_draft(db, data, since)
    if draft is not None:
        if data.draft:  # left unfinished again: one draft, the new words on it
            return _append(db, draft, data, channel, high, pauses, now, actor, others=every), "appended"
        if _complete(db, rules, draft, data, category, others, channel, high, pauses, now, actor):
            return draft, "completed_draft"
        # staff started or ended the draft meanwhile: filed as any complaint below

    earlier = list(db.scalars(
        select(ComplaintTicket).where(
            _same_borrower(data), ComplaintTicket.category == category, ComplaintTicket.received_at >= since)
        .order_by(ComplaintTicket.received_at.desc(), ComplaintTicket.id.desc())))
    live = next((t for t in earlier if t.status in LIVE), None)
    if live is not None:
        return _append(db, live, data, channel, high, pauses, now, actor, others=others), "appended"

    status = ComplaintStatus.draft if data.draft else ComplaintStatus.received
    linked_to_id = _root_id(earlier[0]) if earlier else None
    for _ in range(REFERENCE_TRIES):
        ticket = ComplaintTicket(
            reference=_next_reference(db, now), customer_id=data.customer_id, conversation=data.conversation,
            channel=channel, category=category, other_categories=[c.value for c in others],
            description=data.description or "", desired_outcome=data.desired_outcome, contact=_mask(data.contact),
            status=status, priority=ComplaintPriority.high if high else ComplaintPriority.normal,
            distress=data.distress, received_at=now, due_at=now + timedelta(days=cr.decision_days), extended=False,
            linked_to_id=linked_to_id, pauses_reminders=pauses,
        )
        try:
            with db.begin_nested():
                db.add(ticket)
        except IntegrityError:
            continue  # the reference number was just taken by a concurrent complaint
        break
    else:
        raise AppError(409, "busy", texts.text("errors.busy"), "Could not number the ticket; try again")
    if data.draft:
        # the draft's words stay in its history even after a full complaint replaces the description
        _event(db, ticket, now, CUSTOMER, ComplaintEventKind.drafted, None, status, channel,
               note=_follow_up_note(data))
    else:
        _event(db, ticket, now, CUSTOMER, ComplaintEventKind.opened, None, status, channel)
    if pauses:
        _event(db, ticket, now, CUSTOMER, ComplaintEventKind.reminders_paused)
    linked_ref = db.get(ComplaintTicket, linked_to_id).reference if linked_to_id else None
    audit.record(db, actor, "complaint.drafted" if data.draft else "complaint.opened", "complaint_ticket", ticket.id,
                 reference=ticket.reference, category=category.value,
                 **({"other_categories": ticket.other_categories} if others else {}),
                 priority=ticket.priority.value, distress=data.distress,
                 channel=channel.value, customer_id=data.customer_id, linked_to=linked_ref,
                 pauses_reminders=pauses, due_at=ticket.due_at.isoformat())
    if data.draft:
        return ticket, "draft"
    return ticket, "linked" if linked_to_id else "new"


def _raise_and_pause(db: Session, ticket: ComplaintTicket, data: ComplaintIn, high: bool, pauses: bool,
                     now: datetime) -> tuple[bool, bool]:
    """Raise the priority and pause reminders where the new complaint says so; (raised, paused)."""
    raised = paused = False
    if high and ticket.priority != ComplaintPriority.high:
        raised = _transition(db, ticket, ComplaintTicket.priority != ComplaintPriority.high,
                             priority=ComplaintPriority.high, distress=ticket.distress or data.distress)
        if raised:
            _event(db, ticket, now, CUSTOMER, ComplaintEventKind.priority_raised)
    elif data.distress and not ticket.distress:
        _transition(db, ticket, distress=True)
    if pauses and not ticket.pauses_reminders:
        paused = _transition(db, ticket, ComplaintTicket.pauses_reminders.is_(False), pauses_reminders=True,
                             reminders_cleared_at=None, reminders_cleared_by=None)
        if paused:
            _event(db, ticket, now, CUSTOMER, ComplaintEventKind.reminders_paused)
    return raised, paused


def _append(db: Session, ticket: ComplaintTicket, data: ComplaintIn, channel: Channel, high: bool, pauses: bool,
            now: datetime, actor: str, others: list[ComplaintCategory] = ()) -> ComplaintTicket:
    """A repeat of a live ticket's complaint (or of a draft): one more event on it, not a second ticket.
    Categories the repeat names besides the ticket's are added to its other categories; a draft
    without words takes the repeat's description."""
    merged = _merge_others(ticket.category, ticket.other_categories or [], others)
    added = [c for c in merged if c not in (ticket.other_categories or [])]
    _event(db, ticket, now, CUSTOMER, ComplaintEventKind.follow_up, channel=channel,
           note=_follow_up_note(data, [ComplaintCategory(c) for c in added]))
    values = {}
    if added:
        values["other_categories"] = merged
    if ticket.status == ComplaintStatus.draft and not ticket.description.strip() and (data.description or "").strip():
        values["description"] = data.description
    if values:
        _transition(db, ticket, **values)
    raised, paused = _raise_and_pause(db, ticket, data, high, pauses, now)
    audit.record(db, actor, "complaint.follow_up", "complaint_ticket", ticket.id, reference=ticket.reference,
                 channel=channel.value, customer_id=data.customer_id, distress=data.distress,
                 priority_raised=raised, reminders_paused=paused,
                 **({"draft": True} if data.draft else {}), **({"categories_added": added} if added else {}))
    return ticket


def _complete(db: Session, rules: BusinessRules, ticket: ComplaintTicket, data: ComplaintIn,
              category: ComplaintCategory, others: list[ComplaintCategory], channel: Channel, high: bool,
              pauses: bool, now: datetime, actor: str) -> bool:
    """The borrower filed in full what was kept as a draft: the draft takes the full complaint's fields
    and becomes received, keeping its reference, receipt time and deadline (the clock started when
    the complaint was first voiced). The draft's categories stay as other categories (``other``, the
    bot's placeholder, only when nothing else names the complaint). False if the ticket is no longer
    a draft (staff started or ended it meanwhile)."""
    draft_cats = [ticket.category.value, *(ticket.other_categories or [])]
    if category != ComplaintCategory.other or others:
        draft_cats = [c for c in draft_cats if c != ComplaintCategory.other.value]
    merged = _merge_others(category, others, draft_cats)
    customer_id = ticket.customer_id if ticket.customer_id is not None else data.customer_id
    if not _transition(db, ticket, ComplaintTicket.status == ComplaintStatus.draft,
                       status=ComplaintStatus.received, category=category, other_categories=merged,
                       description=data.description, desired_outcome=data.desired_outcome,
                       contact=_mask(data.contact), customer_id=customer_id):
        return False
    _event(db, ticket, now, CUSTOMER, ComplaintEventKind.completed, ComplaintStatus.draft, ComplaintStatus.received,
           channel)
    raised, paused = _raise_and_pause(db, ticket, data, high, pauses, now)
    audit.record(db, actor, "complaint.completed", "complaint_ticket", ticket.id, reference=ticket.reference,
                 category=category.value, other_categories=merged, priority=ticket.priority.value,
                 distress=data.distress, channel=channel.value, customer_id=customer_id,
                 priority_raised=raised, reminders_paused=paused, due_at=_local(ticket.due_at, rules).isoformat())
    return True


def start(db: Session, rules: BusinessRules, reference: str, by: str, now: datetime, via: str) -> ComplaintTicket:
    ticket, now = get_ticket(db, reference), _local(now, rules)
    startable = (ComplaintStatus.draft, ComplaintStatus.received)
    for _ in range(2):  # a draft may be completed (draft -> received) by the borrower at the same moment
        before = ticket.status
        if before in startable and _transition(db, ticket, ComplaintTicket.status == before,
                                               status=ComplaintStatus.in_progress):
            break
    else:  # not startable (any more)
        if ticket.status == ComplaintStatus.in_progress:
            raise AppError(409, "already_started", texts.text("errors.complaints.already_started"),
                           "The complaint is already in progress")
        raise _ended()
    _event(db, ticket, now, by, ComplaintEventKind.started, before, ComplaintStatus.in_progress)
    audit.record(db, by, "complaint.started", "complaint_ticket", ticket.id, reference=ticket.reference, via=via)
    return ticket


def _end(db: Session, rules: BusinessRules, reference: str, by: str, now: datetime, via: str,
         to: ComplaintStatus, text: str | None) -> ComplaintTicket:
    ticket, now = get_ticket(db, reference), _local(now, rules)
    before, text = ticket.status, _mask(text)
    values = (dict(resolution=text, resolved_at=now) if to == ComplaintStatus.resolved else dict(closed_at=now))
    if not _transition(db, ticket, ComplaintTicket.status.in_(LIVE), status=to, **values):
        raise _ended()
    kind = ComplaintEventKind.resolved if to == ComplaintStatus.resolved else ComplaintEventKind.closed
    _event(db, ticket, now, by, kind, before, to, note=text)
    audit.record(db, by, f"complaint.{to.value}", "complaint_ticket", ticket.id, reference=ticket.reference,
                 from_status=before.value, via=via)
    return ticket


def resolve(db: Session, rules: BusinessRules, reference: str, by: str, resolution: str, now: datetime,
            via: str) -> ComplaintTicket:
    """The decision, told to the borrower; from received or in progress."""
    if not resolution.strip():
        raise AppError(422, "resolution_required", texts.text("errors.complaints.resolution_required"),
                       "A resolution is required")
    return _end(db, rules, reference, by, now, via, ComplaintStatus.resolved, resolution)


def close(db: Session, rules: BusinessRules, reference: str, by: str, note: str | None, now: datetime,
          via: str) -> ComplaintTicket:
    """End a live ticket without a resolution (withdrawn, out of scope ...)."""
    return _end(db, rules, reference, by, now, via, ComplaintStatus.closed, note)


def extend(db: Session, rules: BusinessRules, reference: str, by: str, reason: str, due_date: date | None,
           now: datetime, via: str) -> ComplaintTicket:
    """Extend the deadline once, with a reason, to at most max_total_days after receipt."""
    ticket, now = get_ticket(db, reference), _local(now, rules)
    if not reason.strip():
        raise AppError(422, "reason_required", texts.text("errors.complaints.extension_reason_required"),
                       "An extension needs a reason")
    if ticket.status not in LIVE:
        raise _ended()
    if ticket.extended:
        raise _already_extended()
    received, current = _local(ticket.received_at, rules), _local(ticket.due_at, rules)
    latest = received + timedelta(days=rules.complaints.max_total_days)
    new_due = latest if due_date is None else datetime.combine(due_date, received.timetz())
    if new_due > latest:
        raise AppError(422, "extension_too_long",
                       texts.text("errors.complaints.extension_too_long",
                                  days=rules.complaints.max_total_days, latest=latest),
                       f"The deadline may be at most {rules.complaints.max_total_days} days after receipt "
                       f"({latest:%Y-%m-%d})")
    if new_due <= current or new_due <= now:
        raise AppError(422, "extension_not_later", texts.text("errors.complaints.extension_not_later"),
                       "The new deadline must be later than the current one and than now")
    reason = mask_numbers(reason)
    if not _transition(db, ticket, ComplaintTicket.status.in_(LIVE), ComplaintTicket.extended.is_(False),
                       extended=True, extension_reason=reason, due_at=new_due):
        if ticket.status not in LIVE:
            raise _ended()
        raise _already_extended()
    _event(db, ticket, now, by, ComplaintEventKind.extended, note=reason)
    audit.record(db, by, "complaint.extended", "complaint_ticket", ticket.id, reference=ticket.reference,
                 from_due_at=current.isoformat(), due_at=new_due.isoformat(), via=via)
    return ticket


def _already_extended() -> AppError:
    return AppError(409, "already_extended", texts.text("errors.complaints.already_extended"),
                    "The deadline has already been extended once")


def clear_reminder_pause(db: Session, rules: BusinessRules, reference: str, by: str, now: datetime,
                         via: str) -> ComplaintTicket:
    """Staff lift the ticket's pause of automated reminders (other tickets may still hold one)."""
    ticket, now = get_ticket(db, reference), _local(now, rules)
    if not _transition(db, ticket, ComplaintTicket.pauses_reminders.is_(True), pauses_reminders=False,
                       reminders_cleared_at=now, reminders_cleared_by=by):
        raise AppError(409, "no_reminder_pause", texts.text("errors.complaints.no_reminder_pause"),
                       "The ticket does not pause reminders")
    _event(db, ticket, now, by, ComplaintEventKind.reminders_cleared)
    still = customer_has_reminder_pause(db, ticket.customer_id) if ticket.customer_id else False
    audit.record(db, by, "complaint.reminders_cleared", "complaint_ticket", ticket.id, reference=ticket.reference,
                 customer_id=ticket.customer_id, customer_still_paused=still, via=via)
    return ticket

