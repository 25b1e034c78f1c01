"""The business clock on the Rasa side: Asia/Shanghai, pinned by APP_FROZEN_DATE when set
(the backend's Clock reads the same setting), so the bot and the backend agree on "today"."""
from __future__ import annotations

import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    current = datetime.now(SHANGHAI)
    frozen = os.environ.get("APP_FROZEN_DATE")
    if frozen:
        d = date.fromisoformat(frozen)
        current = current.replace(year=d.year, month=d.month, day=d.day)
    return current


def today() -> date:
    return now().date()
