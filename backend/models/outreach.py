"""Proactive outreach: the log of notices the scheduler plans and sends, every attempt, and the lease
that lets only one scheduler process run the jobs (backend.services.outreach).

``dedupe_key`` is unique: each (loan, instalment, kind), promise, handoff case or decision gets at most
one notice ever, however often planning runs or however many processes plan. ``notice_id`` travels
to Rasa in the delivered bot event's metadata, so a delivery can be recognised in the conversation's
tracker after a crash. The enums (OutreachKind, OutreachStatus, OutboxStatus) live in .enums.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.crypto import TokenizedConversation, TokenizedConversationJSON

from .base import AwareDateTime, Base, StrEnum
from .enums import Channel, OutboxStatus, OutreachKind, OutreachStatus


class OutreachNotice(Base):
    __tablename__ = "outreach_notices"
    __table_args__ = (Index("ix_outreach_notices_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[str] = mapped_column(String(36), unique=True)  # uuid4
    # NULL only for a complaint update to an anonymous web visitor (no account behind the conversation).
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    instalment_seq: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[OutreachKind] = mapped_column(StrEnum(OutreachKind, "outreach_kind"))
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    service: Mapped[bool] = mapped_column(Boolean)  # service notices have their own cap
    priority: Mapped[int] = mapped_column(Integer)  # lower goes first when caps allow only some
    planned_on: Mapped[date] = mapped_column(Date, index=True)  # business date it was planned for
    planned_for: Mapped[datetime] = mapped_column(AwareDateTime())  # earliest send time
    next_attempt_at: Mapped[datetime] = mapped_column(AwareDateTime())
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime())  # stale from then on
    status: Mapped[OutreachStatus] = mapped_column(StrEnum(OutreachStatus, "outreach_status"))
    channel: Mapped[Channel | None] = mapped_column(StrEnum(Channel, "channel"))  # chosen at send
    # Rasa sender id it went to; an SMS number is stored tokenised ("sms:~<token>", TokenizedConversation).
    conversation: Mapped[str | None] = mapped_column(TokenizedConversation(100))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # Rasa calls that failed
    last_error: Mapped[str | None] = mapped_column(String(100))  # rule or error code, no personal data
    sent_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claim_token: Mapped[str | None] = mapped_column(String(36))
    claimed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # The figures known at planning (due date, amount, reference ...); decimals as strings. A decision
    # notice's "conversation" is stored tokenised like the column above.
    payload: Mapped[dict] = mapped_column(TokenizedConversationJSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())


class OutreachAttempt(Base):
    """One step in a notice's life: sent, suppressed:<rule>, deferred:<rule>, no_channel, rasa_error,
    no_reply (Rasa took it, the bot said nothing), retry_scheduled, permanent_failure, expired.
    ``detail`` never holds personal data."""

    __tablename__ = "outreach_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("outreach_notices.id"), index=True)
    at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
    channel: Mapped[Channel | None] = mapped_column(StrEnum(Channel, "channel"))
    outcome: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(200))


class SchedulerLease(Base):
    """Held by one scheduler process at a time; renewed by every job, taken over once expired."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime())


class OutboxMessage(Base):
    """One message the backend says to a borrower (the outbox, backend.services.outreach.outbox):
    the rendered text and the extra tracker events (slots the bot reads the answer with), written by
    the decision's transaction or by the dispatcher, delivered by a worker through Rasa's HTTP API
    (a ``bot`` event on the borrower's output channel, so the tracker records it). ``notice_id`` is
    its source: the outreach notice (a decision's notice names the plan request or complaint)."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("outreach_notices.id"), index=True)
    kind: Mapped[OutreachKind] = mapped_column(StrEnum(OutreachKind, "outreach_kind"))
    conversation: Mapped[str] = mapped_column(TokenizedConversation(100))  # Rasa sender id (SMS tokenised)
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    text: Mapped[str] = mapped_column(Text)
    events: Mapped[list] = mapped_column(JSON, default=list)  # tracker events sent before the text (slots)
    status: Mapped[OutboxStatus] = mapped_column(StrEnum(OutboxStatus, "outbox_status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # deliveries tried
    last_error: Mapped[str | None] = mapped_column(String(100))  # error code, no personal data
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
    attempted_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
