"""Borrowers and the channel identities they talk to us from."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from backend.core.crypto import HASH_LENGTH, EncryptedString, hash_default, lookup_hash

from .base import AwareDateTime, Base, StrEnum
from .enums import Channel, IdentityStatus


class Customer(Base):
    """Phone and ID numbers are stored encrypted (backend.core.crypto.EncryptedString) with keyed
    lookup hashes beside them: ``Customer.phone == "13812345678"`` compares ``phone_hash``. The
    last four ID digits are kept apart (``id_last4``, set with id_number): what identity checks
    compare and responses show, without decrypting the number."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    # Mainland mobile without +86 (13812345678), encrypted; found by phone_hash.
    phone: Mapped[str] = mapped_column(EncryptedString(20, hash_column="phone_hash"))
    phone_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True, default=hash_default("phone"))
    # Stored for identity checks, encrypted; every API response masks it to the last four digits.
    id_number: Mapped[str] = mapped_column(EncryptedString(18, hash_column="id_number_hash"))
    id_number_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), index=True, default=hash_default("id_number"))
    id_last4: Mapped[str] = mapped_column(
        String(4), default=lambda ctx: (ctx.get_current_parameters().get("id_number") or "")[-4:].upper())
    preferred_channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"), default=Channel.sms)
    consent_reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    # Only the bank and the last four digits of the repayment card are kept (PIPL: collect the minimum).
    card_bank: Mapped[str | None] = mapped_column(String(30))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    risk_tier: Mapped[str] = mapped_column(String(10), default="low")
    value_tier: Mapped[str] = mapped_column(String(10), default="basic")
    segment_computed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), server_default=func.now())

    identities: Mapped[list["ChannelIdentity"]] = relationship(back_populates="customer")
    loans: Mapped[list["Loan"]] = relationship(back_populates="customer", order_by="Loan.id")  # noqa: F821

    @validates("phone")
    def _hash_phone(self, _key: str, value: str | None) -> str | None:
        self.phone_hash = None if value is None else lookup_hash(value)
        return value

    @validates("id_number")
    def _hash_id_number(self, _key: str, value: str | None) -> str | None:
        self.id_number_hash = None if value is None else lookup_hash(value)
        self.id_last4 = None if value is None else value[-4:].upper()
        return value


class ChannelIdentity(Base):
    """Who is behind a WeChat openid, a phone number or a web account.

    ``external_id`` (an E.164 number for SMS) is stored encrypted on every channel, with its keyed
    lookup hash: ``ChannelIdentity.external_id == "+8613812345678"`` compares ``external_id_hash``,
    and (channel, external_id_hash) is unique."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id_hash", name="uq_identity_channel_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    external_id: Mapped[str] = mapped_column(EncryptedString(64, hash_column="external_id_hash"))
    external_id_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), default=hash_default("external_id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[IdentityStatus] = mapped_column(
        StrEnum(IdentityStatus, "identity_status"), default=IdentityStatus.active
    )
    # SMS: the number sent STOP/退订; nothing is sent to it until it opts in again.
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Last message from the person (WeChat's 48-hour customer-service window starts here).
    last_inbound_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), server_default=func.now())

    customer: Mapped[Customer | None] = relationship(back_populates="identities")

    @validates("external_id")
    def _hash_external_id(self, _key: str, value: str | None) -> str | None:
        self.external_id_hash = None if value is None else lookup_hash(value)
        return value


class InboundEvent(Base):
    """Each inbound channel message or event, claimed by its key (WeChat MsgId, Twilio MessageSid,
    web chat client message id), so retries are processed exactly once, across restarts too.

    A claim with an owner is ``in_progress`` until the owner completes it after Rasa processed the
    message (``done``); the owner holds it until ``lease_until`` (renewed while it works), after which
    a retry takes it over (``attempts`` + 1) instead of dropping it (backend.services.channels)."""

    __tablename__ = "inbound_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    received_at: Mapped[datetime] = mapped_column(AwareDateTime(), server_default=func.now())
    state: Mapped[str] = mapped_column(String(16), default="done", server_default="done")
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(AwareDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    done_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
