"""The business clock: dates are Asia/Shanghai calendar dates, never the server's local date."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """Injected into services so tests and demos can pin 'today' without patching globals."""

    def __init__(self, frozen_date: str | None = None) -> None:
        self._frozen = date.fromisoformat(frozen_date) if frozen_date else None

    def now(self) -> datetime:
        return datetime.now(SHANGHAI)

    def today(self) -> date:
        return self._frozen or self.now().date()
