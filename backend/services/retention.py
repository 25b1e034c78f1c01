"""Retention and data-subject rights (PIPL Arts. 19, 45, 47).

Three operations, each one transaction, each audited (backend.services.audit):

* ``anonymise``: borrower free text and contact details older than the retention periods of
  ``config/business.yml`` (``retention:``) become 「[已匿名化]」 (texts) or NULL (contact details);
  conversation ids (``sms:+86138…``, ``wechat:<openid>``: they identify a person) keep their channel
  and lose the rest (``sms:[已匿名化]``). Amounts, dates, statuses, categories, references and
  figures stay, so accounting and the regulatory statistics (complaints per category, decision
  times, plan outcomes, dashboard counts) are unchanged. Idempotent: a second run changes nothing.

  - conversation texts, ``retention.conversation_days`` after: a handoff case was closed (summary,
    CSAT comment, staff notes, conversation); an understanding-inbox message was last seen (text and
    conversation; a confirmed or corrected example is training data, masked and linked to nobody
    once its conversation is gone, so its text stays); an SMS was sent (body, hashed number); a
    verification challenge, a conversation session or a finished outreach notice was created
    (conversation); an audit entry was written (conversation ids in it).
  - closed records, ``retention.closed_record_days`` after: a complaint was resolved or closed
    (description, desired outcome, extension reason, resolution, event notes; contact NULL;
    conversation), a plan request was decided or withdrawn (reason text, decision reason,
    conversation), an early-settlement intent was recorded (conversation).

  Loans, instalments, payments and promises to pay hold no free text and are kept (anti-money-
  laundering record keeping); customers are only de-identified on request (``erase_customer``).

* ``export_customer``: everything held about one customer, as one JSON-ready dict (PIPL Art. 45).

* ``erase_customer``: the customer's personal data erased or de-identified (PIPL Art. 47): the
  profile keeps only its id, segment and flags (name, ID number and phone replaced, card details
  NULL, consents withdrawn), channel identities and verification challenges deleted, every text and
  conversation id of theirs anonymised as above, whatever its age. Loans, instalments, payments,
  promises and plan figures are kept for the legally required retention, linked only to the
  de-identified profile. Refused while a loan is unsettled or a complaint, plan request or handoff
  case is still open (the data is needed to perform the contract or answer the borrower).

Customer phone and ID number are read and written through the ORM attributes only (they may be
encrypted at rest by a column type; the attribute is always the plain value).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, Iterable

from sqlalchemy import and_, false, inspect, not_, or_, select
from sqlalchemy.orm import Session

from backend.core.clock import SHANGHAI
from backend.core.config import RetentionRules
from backend.models import (
    AuditLog, ChannelIdentity, ComplaintEvent, ComplaintStatus, ComplaintTicket, ConversationSession, Customer,
    HandoffCase, HandoffNote, HandoffStatus, Loan, LoanStatus, NluReviewItem, NluReviewOccurrence,
    OtpChallenge, OutboxMessage, OutboxStatus, OutreachAttempt, OutreachNotice, OutreachStatus, PlanRequest, PlanStatus, PromiseToPay,
    SettlementIntent, SmsMessage,
)
from backend.models.nlu_review import ReviewStatus

from . import audit
from .nlu_review import keyed_hash

ANON = "[已匿名化]"
CONV_SUFFIX = ":" + ANON
FINAL_COMPLAINT = (ComplaintStatus.resolved, ComplaintStatus.closed)
FINAL_PLAN = (PlanStatus.approved, PlanStatus.rejected, PlanStatus.withdrawn)
FINAL_OUTREACH = (OutreachStatus.sent, OutreachStatus.skipped, OutreachStatus.failed, OutreachStatus.expired)
TRAINING_STATUSES = (ReviewStatus.confirmed, ReviewStatus.corrected)
# Audit entries that carry a conversation id (entity_type "conversation", or detail["conversation"]).
AUDIT_CONVERSATION_KEY = "conversation"


def anon_conversation(conversation: str | None) -> str | None:
    """``sms:+8613812345678`` -> ``sms:[已匿名化]``: the channel stays for statistics."""
    if conversation is None:
        return None
    channel, sep, _ = conversation.partition(":")
    return f"{channel}{CONV_SUFFIX}" if sep and len(channel) <= 20 else ANON


def is_anon_conversation(conversation: str | None) -> bool:
    return conversation is None or conversation == ANON or conversation.endswith(CONV_SUFFIX)


# --------------------------------------------------------------------------- one rule per table

@dataclass
class Scope:
    """Rows of one table and what anonymising them means: ``texts`` become ANON (when set),
    ``nulls`` become NULL, ``conversations`` lose everything but the channel. ``where`` selects the
    rows by age or owner; rows already anonymised are filtered out in SQL."""

    name: str
    model: type
    where: list
    texts: tuple[str, ...] = ()
    nulls: tuple[str, ...] = ()
    conversations: tuple[str, ...] = ()
    extra: Callable[[Any], bool] | None = None  # further per-row changes; True if it changed something

    def pending(self):
        m = self.model
        conds = [and_(getattr(m, c).isnot(None), getattr(m, c) != ANON) for c in self.texts]
        conds += [getattr(m, c).isnot(None) for c in self.nulls]
        conds += [and_(getattr(m, c).isnot(None), getattr(m, c) != ANON,
                       not_(getattr(m, c).endswith(CONV_SUFFIX, autoescape=True))) for c in self.conversations]
        return or_(*conds) if conds else false()

    def apply(self, db: Session) -> int:
        rows = db.scalars(select(self.model).where(*self.where, self.pending()).order_by(self.model.id)).all()
        changed = 0
        for row in rows:
            hit = False
            for c in self.texts:
                if getattr(row, c) not in (None, ANON):
                    setattr(row, c, ANON)
                    hit = True
            for c in self.nulls:
                if getattr(row, c) is not None:
                    setattr(row, c, None)
                    hit = True
            for c in self.conversations:
                if not is_anon_conversation(getattr(row, c)):
                    setattr(row, c, anon_conversation(getattr(row, c)))
                    hit = True
            if self.extra is not None and self.extra(row):
                hit = True
            changed += hit
        db.flush()
        return changed


def _review_item_extra(row: NluReviewItem) -> bool:
    """An anonymised inbox text gets a unique key of its own (text_key is unique and was the hash of
    the words), so the same words arriving later start a new item."""
    hit = False
    if row.text_masked == ANON:
        key = hashlib.sha256(f"{ANON}:{row.id}".encode()).hexdigest()
        if row.text_key != key:
            row.text_key = key
            hit = True
        if row.status in TRAINING_STATUSES:  # no words left to train on: never exported again
            row.status, row.exported_at = ReviewStatus.dismissed, None
            hit = True
    return hit


def _review_item_conversation(row: NluReviewItem) -> bool:
    """conversation_masked still shows the channel and part of the id; conversation_hash links the
    item to a conversation: both go (the hash becomes one that matches no conversation)."""
    hit = False
    anon_hash = hashlib.sha256(f"{ANON}:item:{row.id}".encode()).hexdigest()
    if not is_anon_conversation(row.conversation_masked):
        row.conversation_masked = anon_conversation(row.conversation_masked)
        hit = True
    if row.conversation_hash != anon_hash:
        row.conversation_hash = anon_hash
        hit = True
    return hit


def _occurrence_extra(row: NluReviewOccurrence) -> bool:
    anon_hash = hashlib.sha256(f"{ANON}:occurrence:{row.id}".encode()).hexdigest()
    if row.conversation_hash != anon_hash:
        row.conversation_hash = anon_hash
        return True
    return False


def _audit_extra(row: AuditLog) -> bool:
    hit = False
    if row.entity_type == "conversation" and not is_anon_conversation(row.entity_id):
        row.entity_id = anon_conversation(row.entity_id)
        hit = True
    detail = dict(row.detail or {})
    conv = detail.get(AUDIT_CONVERSATION_KEY)
    if isinstance(conv, str) and not is_anon_conversation(conv):
        detail[AUDIT_CONVERSATION_KEY] = anon_conversation(conv)
        row.detail = detail  # a new dict: the JSON column sees the change
        hit = True
    return hit


# --------------------------------------------------------------------------- anonymise by age

@dataclass
class RetentionResult:
    conversation_cutoff: datetime
    closed_cutoff: datetime
    counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def cutoffs(now: datetime, conversation_days: int, closed_record_days: int) -> tuple[datetime, datetime]:
    now = now.astimezone(SHANGHAI)
    return now - timedelta(days=conversation_days), now - timedelta(days=closed_record_days)


def _age_scopes(conv_cut: datetime, closed_cut: datetime) -> list[Scope]:
    final_ticket = and_(ComplaintTicket.status.in_(FINAL_COMPLAINT),
                        or_(ComplaintTicket.closed_at < closed_cut,
                            and_(ComplaintTicket.closed_at.is_(None), ComplaintTicket.resolved_at < closed_cut)))
    old_ticket_ids = select(ComplaintTicket.id).where(final_ticket)
    final_plan = and_(PlanRequest.status.in_(FINAL_PLAN),
                      or_(PlanRequest.decided_at < closed_cut, PlanRequest.withdrawn_at < closed_cut))
    closed_case = and_(HandoffCase.status == HandoffStatus.closed, HandoffCase.closed_at < conv_cut)
    old_case_ids = select(HandoffCase.id).where(closed_case)
    old_items = NluReviewItem.last_seen_at < conv_cut
    return [
        Scope("complaint_tickets", ComplaintTicket, [final_ticket],
              texts=("description", "desired_outcome", "extension_reason", "resolution"), nulls=("contact",),
              conversations=("conversation",)),
        Scope("complaint_events", ComplaintEvent, [ComplaintEvent.ticket_id.in_(old_ticket_ids)], texts=("note",)),
        Scope("plan_requests", PlanRequest, [final_plan], texts=("reason_text", "decision_reason"),
              conversations=("conversation",)),
        Scope("settlement_intents", SettlementIntent, [SettlementIntent.created_at < closed_cut],
              conversations=("conversation",)),
        Scope("handoff_cases", HandoffCase, [closed_case], texts=("summary",), nulls=("csat_comment",),
              conversations=("conversation",)),
        Scope("handoff_notes", HandoffNote, [HandoffNote.case_id.in_(old_case_ids)], texts=("text",)),
        # Open and dismissed inbox texts are anonymised; confirmed/corrected ones are training data.
        Scope("nlu_review_items", NluReviewItem, [old_items, NluReviewItem.status.not_in(TRAINING_STATUSES)],
              texts=("text_masked",), extra=_review_item_extra),
        _ReviewLinkScope("nlu_review_items.conversation", NluReviewItem, [old_items], extra=_review_item_conversation),
        _ReviewLinkScope("nlu_review_occurrences", NluReviewOccurrence,
                         [NluReviewOccurrence.item_id.in_(select(NluReviewItem.id).where(old_items))],
                         extra=_occurrence_extra),
        Scope("sms_messages", SmsMessage, [SmsMessage.created_at < conv_cut], texts=("body", "to_hash")),
        Scope("otp_challenges", OtpChallenge, [OtpChallenge.created_at < conv_cut], conversations=("conversation",)),
        Scope("conversation_sessions", ConversationSession, [ConversationSession.started_at < conv_cut],
              conversations=("conversation",)),
        Scope("outreach_notices", OutreachNotice,
              [OutreachNotice.status.in_(FINAL_OUTREACH), OutreachNotice.created_at < conv_cut],
              conversations=("conversation",)),
        # What the backend said (backend.services.outreach.outbox): the text and the conversation.
        Scope("outbox_messages", OutboxMessage,
              [OutboxMessage.status.in_([OutboxStatus.sent, OutboxStatus.failed]), OutboxMessage.created_at < conv_cut],
              texts=("text",), conversations=("conversation",)),
        _AuditScope("audit_log", AuditLog, [AuditLog.at < conv_cut]),
    ]


class _ReviewLinkScope(Scope):
    """Rows whose change is a per-row hash (no SQL filter can tell a done row): all candidate rows
    are read, only those the ``extra`` changes are counted."""

    def pending(self):
        return and_()  # no filter beyond ``where``


class _AuditScope(Scope):
    def __init__(self, name, model, where) -> None:
        super().__init__(name, model, where, extra=_audit_extra)

    def pending(self):
        # Entries naming a conversation (entity or detail); JSON is read in Python.
        return or_(and_(AuditLog.entity_type == "conversation", not_(AuditLog.entity_id.endswith(CONV_SUFFIX,
                                                                                                autoescape=True))),
                   AuditLog.action.like("verification.%"))


def anonymise(db: Session, rules: RetentionRules, now: datetime, *, actor: str, dry_run: bool = False,
              conversation_days: int | None = None, closed_record_days: int | None = None) -> RetentionResult:
    """Anonymise everything past its retention period (see the module docstring). With ``dry_run``
    the changes are counted, then the session's transaction is rolled back (nothing written, nothing
    audited): call it on a session with nothing else pending."""
    conv_days = conversation_days if conversation_days is not None else rules.conversation_days
    closed_days = closed_record_days if closed_record_days is not None else rules.closed_record_days
    if conv_days < 0 or closed_days < 0:
        raise ValueError("retention periods must not be negative")
    conv_cut, closed_cut = cutoffs(now, conv_days, closed_days)
    result = RetentionResult(conv_cut, closed_cut, dry_run=dry_run)
    for scope in _age_scopes(conv_cut, closed_cut):
        result.counts[scope.name] = scope.apply(db)
    if dry_run:
        db.rollback()
        return result
    if result.total:
        audit.record(db, actor, "retention.anonymised", "retention", now.astimezone(SHANGHAI).date().isoformat(),
                     conversation_days=conv_days, closed_record_days=closed_days,
                     conversation_cutoff=conv_cut.isoformat(), closed_cutoff=closed_cut.isoformat(),
                     counts={k: v for k, v in result.counts.items() if v})
    return result


# --------------------------------------------------------------------------- one customer

class RetentionRefused(Exception):
    """The customer's data is still needed (open loan, complaint, plan request, handoff case)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def _conversations(db: Session, customer_id: int) -> list[str]:
    """The customer's conversation ids ("<channel>:<external id>") from their channel identities."""
    idents = db.scalars(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id)).all()
    return sorted({f"{i.channel.value}:{i.external_id}" for i in idents})


def _owned(model, customer_id: int, conversations: list[str]):
    clauses = []
    if hasattr(model, "customer_id"):
        clauses.append(model.customer_id == customer_id)
    if hasattr(model, "conversation") and conversations:
        clauses.append(model.conversation.in_(conversations))
    return or_(*clauses) if clauses else false()


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def row_dict(row: Any, skip: Iterable[str] = ()) -> dict:
    """Every column of an ORM row by attribute (so column types such as encryption apply), without
    keyed hashes and tokens (``*_hash``: lookup hashes, code hashes; internal, not the person's data)."""
    skip = set(skip)
    return {a.key: _jsonable(getattr(row, a.key)) for a in inspect(type(row)).column_attrs
            if a.key not in skip and not a.key.endswith("_hash")}


def _rows(db: Session, model, *where, order=None) -> list:
    return list(db.scalars(select(model).where(*where).order_by(order if order is not None else model.id)))


def _sms_hashes(customer: Customer, conversations: list[str]) -> set[str]:
    numbers = {customer.phone, "+86" + customer.phone if not customer.phone.startswith("+") else customer.phone}
    numbers |= {c.partition(":")[2] for c in conversations if c.startswith("sms:")}
    return {hashlib.sha256((n if n.startswith("+") else "+86" + n).encode()).hexdigest() for n in numbers if n}


def _review_hashes(conversations: list[str], secret: str) -> set[str]:
    return {keyed_hash(secret, c) for c in conversations}


def export_customer(db: Session, customer_id: int, now: datetime, *, actor: str, review_secret: str) -> dict:
    """Everything held about one customer (PIPL Art. 45), as plain JSON values. The access is audited.
    Secrets are left out (verification code hashes); staff-only notes are included (they are about
    the customer)."""
    customer = db.get(Customer, customer_id)
    if customer is None:
        raise LookupError(f"customer {customer_id} not found")
    convs = _conversations(db, customer_id)
    loans = _rows(db, Loan, Loan.customer_id == customer_id)
    loan_ids = [ln.id for ln in loans]
    tickets = _rows(db, ComplaintTicket, _owned(ComplaintTicket, customer_id, convs))
    plans = _rows(db, PlanRequest, _owned(PlanRequest, customer_id, convs))
    cases = _rows(db, HandoffCase, _owned(HandoffCase, customer_id, convs))
    intents = _rows(db, SettlementIntent, _owned(SettlementIntent, customer_id, convs))
    notices = _rows(db, OutreachNotice, or_(OutreachNotice.customer_id == customer_id,
                                            OutreachNotice.conversation.in_(convs) if convs else false()))
    idents = _rows(db, ChannelIdentity, ChannelIdentity.customer_id == customer_id)
    review_items = _rows(db, NluReviewItem, NluReviewItem.id.in_(
        select(NluReviewOccurrence.item_id).where(
            NluReviewOccurrence.conversation_hash.in_(_review_hashes(convs, review_secret)))))
    about = [("customer", customer_id)] + [("loan", i) for i in loan_ids] \
        + [("complaint_ticket", t.id) for t in tickets] + [("plan_request", p.id) for p in plans] \
        + [("handoff_case", c.id) for c in cases] + [("settlement_intent", s.id) for s in intents] \
        + [("channel_identity", i.id) for i in idents] + [("conversation", c) for c in convs]
    audit_rows = _rows(db, AuditLog, or_(*[and_(AuditLog.entity_type == t, AuditLog.entity_id == str(i))
                                           for t, i in about]))
    data = {
        "format": "loan-assistant customer export v1",
        "exported_at": now.astimezone(SHANGHAI).isoformat(),
        "customer": row_dict(customer),
        "channel_identities": [row_dict(i) for i in idents],
        "conversations": convs,
        "loans": [dict(row_dict(ln), instalments=[row_dict(i) for i in ln.instalments],
                       payments=[row_dict(p) for p in ln.payments]) for ln in loans],
        "promises_to_pay": [row_dict(p) for p in _rows(db, PromiseToPay, PromiseToPay.customer_id == customer_id)],
        "settlement_intents": [row_dict(s) for s in intents],
        "plan_requests": [row_dict(p) for p in plans],
        "complaints": [dict(row_dict(t), events=[row_dict(e) for e in t.events]) for t in tickets],
        "handoff_cases": [dict(row_dict(c), notes=[row_dict(n) for n in c.notes]) for c in cases],
        "conversation_sessions": [row_dict(s) for s in _rows(
            db, ConversationSession, _owned(ConversationSession, customer_id, convs))],
        "verification_challenges": [row_dict(o) for o in _rows(
            db, OtpChallenge, _owned(OtpChallenge, customer_id, convs))],
        "outreach_notices": [dict(row_dict(n, skip=("claim_token",)),
                                  attempts=[row_dict(a) for a in _rows(db, OutreachAttempt,
                                                                       OutreachAttempt.notice_id == n.id)])
                             for n in notices],
        "sms_messages": [row_dict(m) for m in _rows(
            db, SmsMessage, SmsMessage.to_hash.in_(_sms_hashes(customer, convs)))],
        "understanding_inbox": [row_dict(i, skip=("text_key",)) for i in review_items],
        "audit_log": [row_dict(a) for a in audit_rows],
    }
    audit.record(db, actor, "customer.exported", "customer", customer_id,
                 sections={k: len(v) for k, v in data.items() if isinstance(v, list)})
    return data


def erase_blockers(db: Session, customer_id: int, conversations: list[str]) -> list[str]:
    reasons = []
    open_loans = [ln.loan_no for ln in _rows(db, Loan, Loan.customer_id == customer_id, Loan.status != LoanStatus.settled)]
    if open_loans:
        reasons.append(f"{len(open_loans)} loan(s) not settled ({', '.join(open_loans)})")
    open_tickets = _rows(db, ComplaintTicket, _owned(ComplaintTicket, customer_id, conversations),
                         ComplaintTicket.status.not_in(FINAL_COMPLAINT))
    if open_tickets:
        reasons.append(f"{len(open_tickets)} complaint(s) not resolved or closed "
                       f"({', '.join(t.reference for t in open_tickets)})")
    open_plans = _rows(db, PlanRequest, _owned(PlanRequest, customer_id, conversations),
                       PlanRequest.status.not_in(FINAL_PLAN))
    if open_plans:
        reasons.append(f"{len(open_plans)} plan request(s) not decided ({', '.join(p.reference for p in open_plans)})")
    open_cases = _rows(db, HandoffCase, _owned(HandoffCase, customer_id, conversations),
                       HandoffCase.status != HandoffStatus.closed)
    if open_cases:
        reasons.append(f"{len(open_cases)} handoff case(s) open ({', '.join(c.reference for c in open_cases)})")
    return reasons


def erased_phone(customer_id: int) -> str:
    """The placeholder that replaces an erased customer's phone (unique, like the column)."""
    return f"ERASED-{customer_id}"[:20]


def erase_customer(db: Session, customer_id: int, now: datetime, *, actor: str, review_secret: str,
                   dry_run: bool = False) -> dict[str, int]:
    """De-identify one customer (module docstring). Returns the rows changed per table; raises
    LookupError (no such customer) or RetentionRefused. Audited as ``customer.erased`` with the
    counts; a second call changes nothing and writes nothing."""
    customer = db.get(Customer, customer_id)
    if customer is None:
        raise LookupError(f"customer {customer_id} not found")
    convs = _conversations(db, customer_id)
    blockers = erase_blockers(db, customer_id, convs)
    if blockers:
        raise RetentionRefused(blockers)
    sms_hashes = _sms_hashes(customer, convs)
    review_hashes = _review_hashes(convs, review_secret)
    counts: dict[str, int] = {}

    # Profile: only what the kept loans need to stay consistent (id, segment, created_at).
    profile = {"name": ANON, "phone": erased_phone(customer_id), "id_number": ANON, "card_bank": None,
               "card_last4": None, "consent_reminders": False, "consent_marketing": False}
    changed = False
    for attr, value in profile.items():
        if getattr(customer, attr) != value:
            setattr(customer, attr, value)
            changed = True
    counts["customers"] = int(changed)

    # Channel identities and verification challenges: nothing to keep (the next message from that
    # number or openid is from an unknown person).
    ident_ids = [i.id for i in _rows(db, ChannelIdentity, ChannelIdentity.customer_id == customer_id)]
    notices_by_ident = _rows(db, OutreachNotice, OutreachNotice.identity_id.in_(ident_ids)) if ident_ids else []
    for n in notices_by_ident:
        n.identity_id = None
    otps = _rows(db, OtpChallenge, _owned(OtpChallenge, customer_id, convs))
    for o in otps:
        db.delete(o)
    counts["otp_challenges"] = len(otps)
    db.flush()
    idents = _rows(db, ChannelIdentity, ChannelIdentity.id.in_(ident_ids)) if ident_ids else []
    for i in idents:
        db.delete(i)
    counts["channel_identities"] = len(idents)
    db.flush()

    # Ids first: tickets and cases found by conversation are no longer found once it is anonymised.
    owned_tickets = list(db.scalars(select(ComplaintTicket.id).where(_owned(ComplaintTicket, customer_id, convs))))
    owned_cases = list(db.scalars(select(HandoffCase.id).where(_owned(HandoffCase, customer_id, convs))))
    # Inbox items only they said (every occurrence theirs): the text goes. Words others sent too
    # (「嗯嗯」) are nobody's in particular: only the link to their conversation goes.
    theirs = select(NluReviewOccurrence.item_id).where(NluReviewOccurrence.conversation_hash.in_(review_hashes))
    others = select(NluReviewOccurrence.item_id).where(NluReviewOccurrence.conversation_hash.not_in(review_hashes))
    only_theirs = and_(NluReviewItem.id.in_(theirs), NluReviewItem.id.not_in(others))
    scopes = [
        Scope("complaint_tickets", ComplaintTicket, [_owned(ComplaintTicket, customer_id, convs)],
              texts=("description", "desired_outcome", "extension_reason", "resolution"), nulls=("contact",),
              conversations=("conversation",)),
        Scope("complaint_events", ComplaintEvent, [ComplaintEvent.ticket_id.in_(owned_tickets)], texts=("note",)),
        Scope("plan_requests", PlanRequest, [_owned(PlanRequest, customer_id, convs)],
              texts=("reason_text", "decision_reason"), conversations=("conversation",)),
        Scope("settlement_intents", SettlementIntent, [_owned(SettlementIntent, customer_id, convs)],
              conversations=("conversation",)),
        Scope("handoff_cases", HandoffCase, [_owned(HandoffCase, customer_id, convs)], texts=("summary",),
              nulls=("csat_comment",), conversations=("conversation",)),
        Scope("handoff_notes", HandoffNote, [HandoffNote.case_id.in_(owned_cases)], texts=("text",)),
        # Whatever its review status (training data too): the customer asked for erasure.
        Scope("nlu_review_items", NluReviewItem, [only_theirs], texts=("text_masked",), extra=_review_item_extra),
        _ReviewLinkScope("nlu_review_items.conversation", NluReviewItem,
                         [NluReviewItem.conversation_hash.in_(review_hashes)], extra=_review_item_conversation),
        _ReviewLinkScope("nlu_review_occurrences", NluReviewOccurrence,
                         [NluReviewOccurrence.conversation_hash.in_(review_hashes)], extra=_occurrence_extra),
        Scope("sms_messages", SmsMessage, [SmsMessage.to_hash.in_(sms_hashes)], texts=("body", "to_hash"),
              extra=_sms_extra),
        Scope("conversation_sessions", ConversationSession, [_owned(ConversationSession, customer_id, convs)],
              conversations=("conversation",)),
        Scope("outbox_messages", OutboxMessage,
              [or_(OutboxMessage.notice_id.in_(select(OutreachNotice.id).where(OutreachNotice.customer_id == customer_id)),
                   OutboxMessage.conversation.in_(convs) if convs else false())],
              texts=("text",), conversations=("conversation",)),
        Scope("outreach_notices", OutreachNotice,
              [or_(OutreachNotice.customer_id == customer_id,
                   OutreachNotice.conversation.in_(convs) if convs else false())],
              conversations=("conversation",)),
        _AuditScope("audit_log", AuditLog, [_audit_about(customer_id, convs)]),
    ]
    # An already erased customer has no identities left: their anonymised rows are found by customer_id.
    for scope in scopes:
        counts[scope.name] = scope.apply(db)
    if dry_run:
        db.rollback()  # as in anonymise: the session's whole transaction
        return counts
    if any(counts.values()):
        audit.record(db, actor, "customer.erased", "customer", customer_id,
                     at=now.astimezone(SHANGHAI).isoformat(), counts={k: v for k, v in counts.items() if v},
                     kept=["loans", "instalments", "payments", "promises_to_pay", "plan figures"])
    return counts


def _sms_extra(row: SmsMessage) -> bool:
    if row.to_masked != "****":
        row.to_masked = "****"
        return True
    return False


def _audit_about(customer_id: int, conversations: list[str]):
    """Audit entries naming one of the customer's conversations (as entity or in the detail)."""
    clauses = [and_(AuditLog.entity_type == "customer", AuditLog.entity_id == str(customer_id))]
    if conversations:
        clauses.append(and_(AuditLog.entity_type == "conversation", AuditLog.entity_id.in_(conversations)))
    return or_(*clauses)
