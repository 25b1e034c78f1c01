"""Borrowers and the channel identities they talk to us from."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, UniqueConstraint, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, StrEnum


class Channel(str, enum.Enum):
    wechat = "wechat"
    sms = "sms"
    web = "web"


class IdentityStatus(str, enum.Enum):
    active = "active"
    inactive = "inactive"  # e.g. unsubscribed from the WeChat account
    wrong_person = "wrong_person"  # the person on this channel said they are not the borrower



class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    # Stored for identity checks; every API response masks it to the last four digits.
    id_number: Mapped[str] = mapped_column(String(18))
    preferred_channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"), default=Channel.sms)
    consent_reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    # Only the bank and the last four digits of the repayment card are kept (PIPL: collect the minimum).
    card_bank: Mapped[str | None] = mapped_column(String(30))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    risk_tier: Mapped[str] = mapped_column(String(10), default="low")
    value_tier: Mapped[str] = mapped_column(String(10), default="basic")
    segment_computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    identities: Mapped[list["ChannelIdentity"]] = relationship(back_populates="customer")
    loans: Mapped[list["Loan"]] = relationship(back_populates="customer", order_by="Loan.id")  # noqa: F821


class ChannelIdentity(Base):
    """Who is behind a WeChat openid, a phone number or a web account."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    external_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[IdentityStatus] = mapped_column(
        StrEnum(IdentityStatus, "identity_status"), default=IdentityStatus.active
    )
    # SMS: the number sent STOP/退订; nothing is sent to it until it opts in again.
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Last message from the person (WeChat's 48-hour customer-service window starts here).
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    customer: Mapped[Customer | None] = relationship(back_populates="identities")


class InboundEvent(Base):
    """Each inbound channel message or event, claimed once by its key (WeChat MsgId, Twilio
    MessageSid), so retries are processed exactly once, across restarts too."""

    __tablename__ = "inbound_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
