"""The scheduler's demo clock (OUTREACH_DEMO_TIME): business time starts at HH:MM of the business
date and runs on in real time; without the setting it is the ordinary business clock."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import time_machine

from backend.core.clock import SHANGHAI, Clock
from scheduler.clock import ShiftedClock, make_clock


def test_the_demo_clock_starts_at_the_given_time_and_runs_on():
    with time_machine.travel(datetime(2026, 11, 23, 23, 40, tzinfo=SHANGHAI), tick=False) as traveller:
        clock = make_clock("2026-12-07", "10:00")
        assert isinstance(clock, ShiftedClock)
        assert clock.now() == datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
        traveller.shift(timedelta(minutes=90))
        assert clock.now() == datetime(2026, 12, 7, 11, 30, tzinfo=SHANGHAI)
        assert clock.today() == date(2026, 12, 7)
        traveller.shift(timedelta(hours=12, minutes=30))  # runs past midnight like a real day
        assert clock.today() == date(2026, 12, 8)


def test_without_a_frozen_date_it_starts_today_and_without_a_time_it_is_the_real_clock():
    with time_machine.travel(datetime(2026, 11, 23, 23, 40, tzinfo=SHANGHAI), tick=False):
        assert make_clock(None, "09:30").now() == datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI)
        plain = make_clock(None, "")
        assert type(plain) is Clock and plain.now() == datetime(2026, 11, 23, 23, 40, tzinfo=SHANGHAI)
