"""Early-settlement intents (提前结清意向): the borrower said in chat they will settle a loan on a date.

The amount is the payoff the backend computed for that date when the intent was recorded (the bot's
figures are never stored); ``quote`` keeps its parts (PayoffOut, decimals as strings). Payments that
arrive later change the real payoff, so staff read it as what the borrower was told.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.crypto import TokenizedConversation

from .base import AwareDateTime, Base, Money, StrEnum
from .customer import Channel
from .enums import SettlementIntentStatus


class SettlementIntent(Base):
    __tablename__ = "settlement_intents"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    conversation: Mapped[str] = mapped_column(TokenizedConversation(100))  # Rasa sender id "<channel>:<external id>"
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    settle_on: Mapped[date] = mapped_column(Date)
    quoted_total: Mapped[Decimal] = mapped_column(Money())
    quote: Mapped[dict] = mapped_column(JSON)
    quoted_on: Mapped[date] = mapped_column(Date)  # business date the payoff was computed on
    status: Mapped[SettlementIntentStatus] = mapped_column(
        StrEnum(SettlementIntentStatus, "settlement_intent_status"), index=True)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
