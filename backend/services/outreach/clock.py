"""Business-time helpers: SQLite hands back naive wall times (stored in the business timezone),
PostgreSQL aware ones; every datetime written here is aware and in the business timezone, so both
compare alike."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.core.config import OutreachRules


def local(dt: datetime | None, tz: ZoneInfo) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt.astimezone(tz)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def window(cfg: OutreachRules, tz: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    w = cfg.contact_window
    return datetime.combine(day, w.start, tzinfo=tz), datetime.combine(day, w.end, tzinfo=tz)


def in_window(cfg: OutreachRules, tz: ZoneInfo, now: datetime) -> bool:
    start, end = window(cfg, tz, local(now, tz).date())
    return start <= now < end


def next_window_start(cfg: OutreachRules, tz: ZoneInfo, now: datetime) -> datetime:
    """The next opening of the contact window strictly after now."""
    now = local(now, tz)
    start, _ = window(cfg, tz, now.date())
    return start if now < start else window(cfg, tz, now.date() + timedelta(days=1))[0]


def earliest_send(cfg: OutreachRules, tz: ZoneInfo, at: datetime) -> datetime:
    """``at`` if the window is open then, else the window's next opening."""
    at = local(at, tz)
    return at if in_window(cfg, tz, at) else next_window_start(cfg, tz, at)
