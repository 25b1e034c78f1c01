"""The business clock: dates are Asia/Shanghai calendar dates, never the server's local date.

One Clock per process (the backend's app.state.clock, the scheduler's runtime), built from the same
settings (``Clock.from_settings``), injected into services as ``now`` / ``today``:

* APP_FROZEN_DATE (ISO date) pins the business date (``today()``); unset: today's Asia/Shanghai date.
* OUTREACH_DEMO_TIME (HH:MM), for demos and end-to-end tests only, shifts the time of day: business
  time starts at HH:MM when the clock is made and runs on in real time, so a demo or a CI run at
  night is "at 10:00", inside the 08:00-21:00 contact window, while every rule still applies through
  the clock. The shift never changes the date:

  - the date is always the business date above, the one the bot uses (bot/clock.py: real time,
    APP_FROZEN_DATE when set). Made at 00:30 with 10:00, the clock says 10:00 of the same day, never
    the day before or after;
  - the time of day is HH:MM plus the real time elapsed since the clock was made, or since the last
    real midnight if that is later: each new real day starts again at HH:MM (with APP_FROZEN_DATE the
    frozen date is replayed, as the bot's clock replays it);
  - it stops at 23:59:59.999999 of the business date rather than run into the next one, and waits
    there (outside the contact window) for the real date to change.

  Processes started together (``make run``, the end-to-end stack) agree to within their start-up;
  from the first real midnight on they agree exactly. A restarted process starts again at HH:MM.

``wall()`` is the real time, for what another process or the browser checks against its own clock
(the web chat token's expiry, the scheduler lease, WeChat's 48-hour window as the channel sees it).
Without OUTREACH_DEMO_TIME it is ``now()``.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from backend.core.config import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def parse_demo_time(value: str | None) -> time | None:
    """HH:MM (or HH:MM:SS) as a time of day; empty: None. Raises ValueError otherwise."""
    value = (value or "").strip()
    if not value:
        return None
    parsed = time.fromisoformat(value)
    if parsed.tzinfo is not None:
        raise ValueError("a time of day without a timezone (Asia/Shanghai is implied)")
    return parsed


class Clock:
    """Injected into services so tests and demos can pin 'today' without patching globals."""

    def __init__(self, frozen_date: str | None = None, demo_time: str | None = None) -> None:
        self._frozen = date.fromisoformat(frozen_date) if frozen_date else None
        self.demo_time = parse_demo_time(demo_time)
        self._started = datetime.now(SHANGHAI)

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Clock":
        """The process's business clock: APP_FROZEN_DATE and OUTREACH_DEMO_TIME."""
        return cls(settings.frozen_date, settings.outreach_demo_time)

    @property
    def shifted(self) -> bool:
        return self.demo_time is not None

    def now(self) -> datetime:
        real = datetime.now(SHANGHAI)
        if self.demo_time is None:
            return real
        day = self._frozen or real.date()
        since = max(self._started, datetime.combine(real.date(), time(0), tzinfo=SHANGHAI))
        running = max(real - since, timedelta(0))
        return min(datetime.combine(day, self.demo_time, tzinfo=SHANGHAI) + running,
                   datetime.combine(day, time.max, tzinfo=SHANGHAI))

    def wall(self) -> datetime:
        """The real time (see the module docstring); the business time when nothing is shifted."""
        return datetime.now(SHANGHAI) if self.demo_time is not None else self.now()

    def today(self) -> date:
        return self._frozen or self.now().date()
