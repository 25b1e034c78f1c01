"""Writing to the audit log. Callers pass masked details only."""
from __future__ import annotations

from sqlalchemy.orm import Session

from backend.models import AuditLog


def record(db: Session, actor: str, action: str, entity_type: str, entity_id: object, **detail) -> None:
    db.add(AuditLog(actor=actor, action=action, entity_type=entity_type, entity_id=str(entity_id), detail=detail))
