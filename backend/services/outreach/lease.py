"""One scheduler process at a time: a lease row renewed by its holder, taken over once expired.

acquire() is a conditional UPDATE (held by me, or expired) and, for a lease nobody took yet, an
INSERT that loses cleanly to a concurrent one; both commit at once. A second scheduler started by
mistake never acquires it while the first keeps renewing, so its jobs do nothing.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from backend.models import SchedulerLease as L

OUTREACH = "outreach"


def acquire(db: Session, holder: str, now: datetime, ttl_seconds: int, name: str = OUTREACH) -> bool:
    """Take or renew the lease until now + ttl; False while someone else holds it."""
    expires = now + timedelta(seconds=ttl_seconds)
    got = db.execute(update(L).where(L.name == name, or_(L.holder == holder, L.expires_at < now))
                     .values(holder=holder, expires_at=expires).execution_options(synchronize_session=False)).rowcount
    if not got:
        insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
        got = len(db.execute(insert(L.__table__).values(name=name, holder=holder, expires_at=expires)
                             .on_conflict_do_nothing(index_elements=["name"]).returning(L.__table__.c.name)).all())
    db.commit()
    return got == 1


def release(db: Session, holder: str, name: str = OUTREACH) -> None:
    """Give the lease up at shutdown so a successor need not wait for it to expire."""
    db.execute(update(L).where(L.name == name, L.holder == holder).values(expires_at=datetime(2000, 1, 1, tzinfo=timezone.utc))
               .execution_options(synchronize_session=False))
    db.commit()
