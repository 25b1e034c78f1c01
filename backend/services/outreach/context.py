"""What the outreach services need from their process: rules, the clock and a Sender."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select

from backend.core.clock import local
from backend.core.config import BusinessRules, OutreachRules

from .sender import Sender


@dataclass
class Outreach:
    rules: BusinessRules
    clock_now: Callable[[], datetime]  # the business clock (backend.core.clock.Clock.now)
    sender: Sender
    holder: str = "backend"  # who claims notices (the scheduler's lease holder id)
    actor: str = "scheduler"  # audit actor of decision notices sent later by this process
    # The real time (Clock.wall), for what the channels check on their own clock (WeChat's window);
    # None: the business clock (they are the same unless OUTREACH_DEMO_TIME shifts it).
    clock_wall: Callable[[], datetime] | None = None
    # The business date the figures are computed for (Clock.today: APP_FROZEN_DATE pins it, as in the
    # API); None: the business clock's date.
    clock_today: Callable[[], date] | None = None

    @property
    def cfg(self) -> OutreachRules:
        return self.rules.outreach

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.rules.timezone)

    def now(self) -> datetime:
        return local(self.clock_now(), self.tz)

    def today(self) -> date:
        return self.clock_today() if self.clock_today else self.now().date()

    def wall(self) -> datetime:
        return local((self.clock_wall or self.clock_now)(), self.tz)


def fresh(db, model, pk):
    """The row as the database has it now (sessions here keep objects across commits)."""
    key = model.__mapper__.primary_key[0]
    return db.scalars(select(model).where(key == pk).execution_options(populate_existing=True)).first()
