"""Two record-keeping rules the workflows share (handoff cases, complaint tickets, plan requests)."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session


def transition(db: Session, row, *conditions, **values) -> bool:
    """UPDATE the row only if the conditions still hold; False when another request got there
    first (a conditional UPDATE, so two staff acting at once cannot both win, on SQLite or PostgreSQL)."""
    model = type(row)
    result = db.execute(
        update(model).where(model.id == row.id, *conditions).values(**values)
        .execution_options(synchronize_session=False)
    )
    db.refresh(row)
    return result.rowcount == 1


def next_reference(db: Session, column, kind: str, day: date) -> str:
    """The day's next reference number: HO20261123-0001, CP20261123-0007, RP20261123-0042.
    Callers retry on a unique-constraint clash (two requests taking the same number)."""
    prefix = f"{kind}{day:%Y%m%d}-"
    taken = db.scalars(select(column).where(column.like(f"{prefix}%")))
    return f"{prefix}{max((int(r[len(prefix):]) for r in taken), default=0) + 1:04d}"
