"""What borrowers do in conversations that the lender must remember: verification codes,
promises to pay, and the SMS messages we sent."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.crypto import TokenizedConversation

from .base import AwareDateTime, Base, Money, StrEnum
from .enums import PromiseStatus


class OtpChallenge(Base):
    """A one-time code sent to a customer's registered phone for one conversation."""

    __tablename__ = "otp_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation: Mapped[str] = mapped_column(TokenizedConversation(100), index=True)  # "<channel>:<external id>", SMS number tokenised
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    code_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    wrong_attempts: Mapped[int] = mapped_column(Integer, default=0)
    mismatches: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(AwareDateTime())
    verified_at: Mapped[datetime | None] = mapped_column(AwareDateTime())


class PromiseToPay(Base):
    __tablename__ = "promises_to_pay"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    promised_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money())
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[PromiseStatus] = mapped_column(
        StrEnum(PromiseStatus, "promise_status"),
        default=PromiseStatus.open,
    )
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), server_default=func.now())


class SmsMessage(Base):
    """Every SMS we send (masked number, text), whichever provider carried it."""

    __tablename__ = "sms_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_masked: Mapped[str] = mapped_column(String(20))
    to_hash: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(30))
    provider: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime(), server_default=func.now())
