"""Human handoff (转人工): a conversation the bot passes to staff, and the staff's private notes.

The transcript itself stays in Rasa's tracker store; a case keeps only what the queue needs and
the summary the bot collected, with personal numbers masked before they get here.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.core.crypto import TokenizedConversation

from .base import AwareDateTime, Base, StrEnum
from .customer import Channel
from .enums import HandoffReason, HandoffStatus


class HandoffCase(Base):
    __tablename__ = "handoff_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # HO20261123-0001
    conversation: Mapped[str] = mapped_column(TokenizedConversation(100), index=True)  # Rasa sender id "<channel>:<external id>"
    # Equal to conversation while the case is open or claimed, NULL once closed: the unique
    # constraint lets the database itself refuse a second live case for one conversation.
    active_conversation: Mapped[str | None] = mapped_column(TokenizedConversation(100), unique=True)
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[HandoffReason] = mapped_column(StrEnum(HandoffReason, "handoff_reason"))
    priority: Mapped[int] = mapped_column(Integer)  # 1 urgent .. 4 low (config/business.yml)
    summary: Mapped[str] = mapped_column(Text)  # masked: no full phone, ID or card number
    status: Mapped[HandoffStatus] = mapped_column(StrEnum(HandoffStatus, "handoff_status"), index=True)
    assigned_to: Mapped[str | None] = mapped_column(String(50))  # staff username
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    csat: Mapped[int | None] = mapped_column(Integer)  # 1..5, given once after closing
    csat_comment: Mapped[str | None] = mapped_column(String(500))  # masked like the summary

    notes: Mapped[list["HandoffNote"]] = relationship(
        back_populates="case", order_by="HandoffNote.id", cascade="all, delete-orphan"
    )


class HandoffNote(Base):
    """A private staff note on a case; never shown to the customer."""

    __tablename__ = "handoff_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("handoff_cases.id"), index=True)
    author: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)  # masked like the summary
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())

    case: Mapped[HandoffCase] = relationship(back_populates="notes")
