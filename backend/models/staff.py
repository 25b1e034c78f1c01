"""Service staff who work in the console, their sign-in sessions, login attempts (for the rate
limit) and the canned replies they pick from."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.core.crypto import HashedConversation

from .base import AwareDateTime, Base, StrEnum
from .customer import Channel
from .enums import StaffRole


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(50))
    role: Mapped[StaffRole] = mapped_column(StrEnum(StaffRole, "staff_role"))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, never the password
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())


class StaffSession(Base):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(AwareDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(AwareDateTime())

    staff: Mapped[StaffUser] = relationship()


class LoginAttempt(Base):
    """Every sign-in attempt, by username and client address: the rate limit counts failures here."""

    __tablename__ = "staff_login_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    success: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)


class CannedReply(Base):
    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(30))
    text: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ConversationSession(Base):
    """One conversation session as the bot started it (action_session_start): the denominator of
    the dashboard's conversations per day and containment. An SMS conversation's number is kept
    only as a keyed hash ("sms:#<hash>", backend.core.crypto.HashedConversation)."""

    __tablename__ = "conversation_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation: Mapped[str] = mapped_column(HashedConversation(100), index=True)
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)
