"""Complaint tickets (投诉工单) and their history.

A ticket has a regulatory deadline: a decision within ``complaints.decision_days`` of receipt,
extendable once, with a recorded reason, up to ``complaints.max_total_days`` in total
(config/business.yml). Complaints from any channel about the same borrower and category within the
link window are linked, not duplicated (see backend.services.complaints). A complaint the borrower
started in chat and left unfinished is kept as a draft (status ``draft``) that staff see and work.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.core.crypto import TokenizedConversation

from .base import AwareDateTime, Base, StrEnum
from .customer import Channel
from .enums import ComplaintCategory, ComplaintEventKind, ComplaintPriority, ComplaintStatus, labels

# Chinese labels: texts/zh/labels.yml
CATEGORY_LABELS = labels("complaint_category")
STATUS_LABELS = labels("complaint_status")


class ComplaintTicket(Base):
    __tablename__ = "complaint_tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # CP20261122-0007 (business date, daily number)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    conversation: Mapped[str] = mapped_column(TokenizedConversation(100), index=True)  # Rasa sender id "<channel>:<external id>"
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    category: Mapped[ComplaintCategory] = mapped_column(StrEnum(ComplaintCategory, "complaint_category"))
    # Categories besides the main one (e.g. collection + ["privacy"]): ComplaintCategory values, no
    # duplicates, never the main category. Linking goes by the main category only.
    other_categories: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # The borrower's own words, kept verbatim as the record of the complaint; every API response
    # and the console show it masked (mask_numbers), never with a full phone, ID or card number.
    description: Mapped[str] = mapped_column(Text)
    desired_outcome: Mapped[str | None] = mapped_column(Text)  # the borrower's words too: verbatim, shown masked
    contact: Mapped[str | None] = mapped_column(String(200))  # how to reach them; masked before it is stored
    status: Mapped[ComplaintStatus] = mapped_column(StrEnum(ComplaintStatus, "complaint_status"), index=True)
    priority: Mapped[ComplaintPriority] = mapped_column(StrEnum(ComplaintPriority, "complaint_priority"))
    distress: Mapped[bool] = mapped_column(Boolean, default=False)  # the messages showed distress
    received_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
    due_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)  # received + decision_days
    extended: Mapped[bool] = mapped_column(Boolean, default=False)  # at most once
    extension_reason: Mapped[str | None] = mapped_column(Text)  # masked
    resolution: Mapped[str | None] = mapped_column(Text)  # masked; told to the borrower
    resolved_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # The first ticket of a group of linked complaints (same borrower and category within the link
    # window); NULL on the first ticket itself and on tickets that are not linked.
    linked_to_id: Mapped[int | None] = mapped_column(ForeignKey("complaint_tickets.id"), index=True)
    # Collection complaints pause automated reminders for the borrower until staff clear it.
    pauses_reminders: Mapped[bool] = mapped_column(Boolean, default=False)
    reminders_cleared_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    reminders_cleared_by: Mapped[str | None] = mapped_column(String(50))  # staff username

    events: Mapped[list["ComplaintEvent"]] = relationship(
        back_populates="ticket", order_by="ComplaintEvent.id", cascade="all, delete-orphan"
    )


class ComplaintEvent(Base):
    """One line of a ticket's history, shown to the borrower and to staff."""

    __tablename__ = "complaint_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("complaint_tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(AwareDateTime())
    actor: Mapped[str] = mapped_column(String(50))  # "customer" or a staff username
    kind: Mapped[ComplaintEventKind] = mapped_column(StrEnum(ComplaintEventKind, "complaint_event_kind"))
    from_status: Mapped[ComplaintStatus | None] = mapped_column(StrEnum(ComplaintStatus, "complaint_status"))
    to_status: Mapped[ComplaintStatus | None] = mapped_column(StrEnum(ComplaintStatus, "complaint_status"))
    channel: Mapped[Channel | None] = mapped_column(StrEnum(Channel, "channel"))  # the borrower's channel, if theirs
    # A follow-up's note is the borrower's words (verbatim, shown masked); staff notes are masked when stored.
    note: Mapped[str | None] = mapped_column(Text)

    ticket: Mapped[ComplaintTicket] = relationship(back_populates="events")
