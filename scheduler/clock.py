"""The scheduler's business clock, optionally shifted for demos.

OUTREACH_DEMO_TIME=HH:MM starts the clock at that time of the business date (APP_FROZEN_DATE or
today) and lets it run on in real time: a demo at night still sees reminders go out "at 10:00",
through the clock, while every rule (the contact window included) stays on.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from backend.core.clock import SHANGHAI, Clock


class ShiftedClock(Clock):
    def __init__(self, frozen_date: str | None, demo_time: str) -> None:
        super().__init__(frozen_date)
        start_day = self._frozen or datetime.now(SHANGHAI).date()
        start = datetime.combine(start_day, time.fromisoformat(demo_time), tzinfo=SHANGHAI)
        self.offset: timedelta = start - datetime.now(SHANGHAI)

    def now(self) -> datetime:
        return datetime.now(SHANGHAI) + self.offset

    def today(self) -> date:
        return self.now().date()


def make_clock(frozen_date: str | None, demo_time: str) -> Clock:
    return ShiftedClock(frozen_date, demo_time) if demo_time.strip() else Clock(frozen_date)
