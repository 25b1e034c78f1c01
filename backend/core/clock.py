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

The daily windows of the business rules (``DailyWindow``): outreach's contact window and the
handoff's staffed hours, both in the business timezone of config/business.yml (``timezone``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from backend.core.config import BusinessRules, OutreachRules, Settings

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


# --------------------------------------------------------------------------- daily windows

ALL_DAYS = (1, 2, 3, 4, 5, 6, 7)


def local(dt: datetime | None, tz: ZoneInfo) -> datetime | None:
    """In the business timezone. SQLite hands back naive wall times (stored in the business timezone),
    PostgreSQL aware ones: both compare alike afterwards."""
    if dt is None:
        return None
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt.astimezone(tz)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


@dataclass(frozen=True)
class DailyWindow:
    """[start, end) of the day on the given ISO weekdays, in ``tz``: the one "inside the daily
    window" rule (outreach's contact window, the handoff's staffed hours)."""

    start: time
    end: time
    tz: ZoneInfo
    days: tuple[int, ...] = ALL_DAYS

    @classmethod
    def contact(cls, rules: "BusinessRules") -> "DailyWindow":
        """When outreach may contact a borrower (outreach.contact_window), every day."""
        return cls.of_outreach(rules.outreach, ZoneInfo(rules.timezone))

    @classmethod
    def of_outreach(cls, cfg: "OutreachRules", tz: ZoneInfo) -> "DailyWindow":
        return cls(cfg.contact_window.start, cfg.contact_window.end, tz)

    @classmethod
    def staffed(cls, rules: "BusinessRules") -> "DailyWindow":
        """When staff are at the console (handoff.staffed_hours), on its days."""
        hours = rules.handoff.staffed_hours
        return cls(hours.start, hours.end, ZoneInfo(rules.timezone), tuple(hours.days))

    def on(self, day: date) -> tuple[datetime, datetime] | None:
        """The window of that day, or None on a day it is closed."""
        if day.isoweekday() not in self.days:
            return None
        return datetime.combine(day, self.start, tzinfo=self.tz), datetime.combine(day, self.end, tzinfo=self.tz)

    def contains(self, moment: datetime) -> bool:
        moment = local(moment, self.tz)
        window = self.on(moment.date())
        return window is not None and window[0] <= moment < window[1]

    def next_start(self, moment: datetime) -> datetime:
        """The next opening strictly after ``moment``."""
        moment = local(moment, self.tz)
        for offset in range(8):
            window = self.on(moment.date() + timedelta(days=offset))
            if window is not None and window[0] > moment:
                return window[0]
        raise ValueError("a daily window open on no day")  # pragma: no cover - the rules refuse it

    def earliest(self, moment: datetime) -> datetime:
        """``moment`` if the window is open then, else its next opening."""
        moment = local(moment, self.tz)
        return moment if self.contains(moment) else self.next_start(moment)

    def seconds_inside(self, start: datetime, end: datetime) -> float:
        """Seconds between start and end that fall inside the window."""
        start, end = local(start, self.tz), local(end, self.tz)
        total, day = 0.0, start.date()
        while day <= end.date():
            window = self.on(day)
            if window is not None:
                lo, hi = max(start, window[0]), min(end, window[1])
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total


# Outreach's contact window by its rules section and the business timezone (backend/services/outreach).

def window(cfg: "OutreachRules", tz: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    return DailyWindow.of_outreach(cfg, tz).on(day)  # type: ignore[return-value]  # open every day


def in_window(cfg: "OutreachRules", tz: ZoneInfo, now: datetime) -> bool:
    return DailyWindow.of_outreach(cfg, tz).contains(now)


def next_window_start(cfg: "OutreachRules", tz: ZoneInfo, now: datetime) -> datetime:
    """The next opening of the contact window strictly after now."""
    return DailyWindow.of_outreach(cfg, tz).next_start(now)


def earliest_send(cfg: "OutreachRules", tz: ZoneInfo, at: datetime) -> datetime:
    """``at`` if the window is open then, else the window's next opening."""
    return DailyWindow.of_outreach(cfg, tz).earliest(at)
