from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from backend.api.deps import DB

router = APIRouter(tags=["health"])


@router.get("/health")
def health(db: DB) -> dict[str, str]:
    db.execute(text("SELECT 1"))
    return {"status": "ok"}
