"""The business clock on the Rasa side: the business timezone (Asia/Shanghai), pinned by
APP_FROZEN_DATE when set (bot.settings; the backend's Clock reads the same setting), so the bot and
the backend agree on "today". The one clock of the bot environment."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.settings import get_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    current = datetime.now(SHANGHAI)
    frozen = get_settings().app_frozen_date
    if frozen:
        current = current.replace(year=frozen.year, month=frozen.month, day=frozen.day)
    return current


def today() -> date:
    return now().date()
