"""Append-only audit log: who did what, when. Details are masked before they get here."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, func
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.crypto import TokenizedConversation, TokenizedConversationJSON

from .base import AwareDateTime, Base


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(AwareDateTime(), server_default=func.now(), index=True)
    actor: Mapped[str] = mapped_column(String(50))
    action: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(30))
    # A conversation id (entity_type "conversation", detail["conversation"]) keeps its SMS number tokenised
    # (backend.core.crypto): ids of other entities (numbers, names, dates) are stored as they are.
    entity_id: Mapped[str] = mapped_column(TokenizedConversation(100))
    detail: Mapped[dict] = mapped_column(TokenizedConversationJSON, default=dict)
