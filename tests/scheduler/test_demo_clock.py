"""The scheduler's business clock is the backend's (backend.core.clock.Clock, tested with the app in
tests/backend/test_outreach_clock.py), built from the same settings: OUTREACH_DEMO_TIME shifts both
alike, APP_FROZEN_DATE pins the date; the lease and WeChat's window as the channel sees it use the
real time (Clock.wall)."""
from __future__ import annotations

import time_machine

from backend.core.clock import Clock
from testkit import shanghai


def test_the_scheduler_builds_the_same_clock(monkeypatch):
    import scheduler.__main__ as process
    from scheduler import jobs

    monkeypatch.setattr(process, "apply_env", lambda: {})  # leave this process's environment alone
    monkeypatch.setenv("OUTREACH_DEMO_TIME", "10:00")
    monkeypatch.setenv("APP_FROZEN_DATE", "2026-12-07")
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    from backend.core import config

    config.get_settings.cache_clear()
    try:
        with time_machine.travel(shanghai(2026, 11, 23, 23, 40), tick=False):
            _, runtime = process.setup()
            assert runtime.clock.now() == shanghai(2026, 12, 7, 10, 0)
            assert runtime.outreach().now() == shanghai(2026, 12, 7, 10, 0)
            assert runtime.outreach().wall() == shanghai(2026, 11, 23, 23, 40)
    finally:
        jobs.RUNTIME = None
        config.get_settings.cache_clear()


def test_without_the_setting_the_scheduler_runs_on_the_real_clock(monkeypatch):
    import scheduler.__main__ as process
    from scheduler import jobs

    monkeypatch.setattr(process, "apply_env", lambda: {})
    monkeypatch.setenv("OUTREACH_DEMO_TIME", "")
    monkeypatch.delenv("APP_FROZEN_DATE", raising=False)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    from backend.core import config

    config.get_settings.cache_clear()
    try:
        with time_machine.travel(shanghai(2026, 11, 23, 23, 40), tick=False):
            _, runtime = process.setup()
            assert type(runtime.clock) is Clock and not runtime.clock.shifted
            assert runtime.clock.now() == runtime.outreach().wall() == shanghai(2026, 11, 23, 23, 40)
    finally:
        jobs.RUNTIME = None
        config.get_settings.cache_clear()
