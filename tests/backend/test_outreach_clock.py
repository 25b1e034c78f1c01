"""The business clock of the whole stack (backend.core.clock.Clock) and its demo shift,
OUTREACH_DEMO_TIME=HH:MM, read through Settings by the backend (create_app) and the scheduler alike.

The rule: business time starts at HH:MM when the clock is made and runs on in real time; the date is
never shifted: it is always the business date the bot has (bot/clock.py: today in Asia/Shanghai, or
APP_FROZEN_DATE). Each new real day starts again at HH:MM; the clock stops at 23:59:59.999999 rather
than run into the next date. ``wall()`` stays the real time (web chat token, scheduler lease, WeChat's
window as the channel sees it).

With the app: a decision taken at 23:30 real time is told at once under OUTREACH_DEMO_TIME=10:00 (and
waits for 08:00 without it), on SQLite and PostgreSQL, through a fake Rasa; the web chat token expires
by the real clock.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta

import jwt
import pytest
import time_machine
from pydantic import ValidationError
from sqlalchemy import select

from backend.core.clock import SHANGHAI, Clock
from backend.core.config import Settings
from backend.main import create_app
from backend.models import OutreachAttempt, OutreachNotice
from backend.services.outreach import worker
from fake_rasa import FakeRasa
from testkit import BACKEND_API_KEYS, HEADERS, Book, StaffDesk, local, ok, shanghai

TOKEN = "rasa-clock-token"
END_OF_DAY = time.max


# --------------------------------------------------------------------------- the clock itself

def test_the_demo_clock_starts_at_the_given_time_and_runs_on_in_real_time():
    with time_machine.travel(shanghai(2026, 11, 23, 14, 20), tick=False) as traveller:
        clock = Clock(None, "10:00")
        assert clock.shifted
        assert clock.now() == shanghai(2026, 11, 23, 10, 0)
        assert clock.wall() == shanghai(2026, 11, 23, 14, 20)  # the real time
        traveller.shift(timedelta(minutes=90, seconds=5))
        assert clock.now() == shanghai(2026, 11, 23, 11, 30) + timedelta(seconds=5)
        assert clock.today() == date(2026, 11, 23)


@pytest.mark.parametrize("real", [(0, 30), (7, 59), (10, 0), (20, 0), (23, 40), (23, 59)])
def test_made_at_any_hour_it_is_hh_mm_of_todays_date(real):
    """00:30 -> 10:00 the same day (not the day before); 23:40 -> 10:00 the same day (not the next)."""
    with time_machine.travel(shanghai(2026, 11, 23, *real), tick=False):
        clock = Clock(None, "10:00")
        assert clock.now() == shanghai(2026, 11, 23, 10, 0)
        assert clock.today() == date(2026, 11, 23)


def test_it_stops_at_the_end_of_the_date_and_each_real_day_starts_again_at_hh_mm():
    with time_machine.travel(shanghai(2026, 11, 23, 0, 30), tick=False) as traveller:
        clock = Clock(None, "10:00")
        seen = [clock.now()]
        traveller.shift(timedelta(hours=13, minutes=29))  # real 13:59: 23:29
        seen.append(clock.now())
        assert seen[-1] == shanghai(2026, 11, 23, 23, 29)
        traveller.shift(timedelta(hours=2))  # real 15:59: would be 01:29 tomorrow; stays on the 23rd
        seen.append(clock.now())
        assert seen[-1] == datetime.combine(date(2026, 11, 23), END_OF_DAY, tzinfo=SHANGHAI)
        traveller.move_to(datetime(2026, 11, 23, 23, 59, 59, tzinfo=SHANGHAI))
        assert clock.now() == seen[-1] and clock.today() == date(2026, 11, 23)
        traveller.move_to(shanghai(2026, 11, 24, 0, 0))  # a new real day: 10:00 of the 24th
        seen.append(clock.now())
        assert seen[-1] == shanghai(2026, 11, 24, 10, 0)
        traveller.move_to(shanghai(2026, 11, 24, 0, 45))
        seen.append(clock.now())
        assert seen[-1] == shanghai(2026, 11, 24, 10, 45) and clock.today() == date(2026, 11, 24)
    assert seen == sorted(seen)  # never backwards


def test_started_in_the_evening_it_runs_from_hh_mm_and_the_next_day_starts_at_hh_mm_again():
    with time_machine.travel(shanghai(2026, 11, 23, 20, 0), tick=False) as traveller:
        clock = Clock(None, "10:00")
        traveller.move_to(shanghai(2026, 11, 23, 23, 59))
        assert clock.now() == shanghai(2026, 11, 23, 13, 59)
        traveller.move_to(shanghai(2026, 11, 24, 0, 1))
        assert clock.now() == shanghai(2026, 11, 24, 10, 1)


def test_a_frozen_date_is_kept_and_replayed_each_real_day():
    with time_machine.travel(shanghai(2026, 11, 23, 23, 40), tick=False) as traveller:
        clock = Clock("2026-12-07", "10:00")
        assert clock.now() == shanghai(2026, 12, 7, 10, 0) and clock.today() == date(2026, 12, 7)
        traveller.shift(timedelta(minutes=15))
        assert clock.now() == shanghai(2026, 12, 7, 10, 15)
        traveller.move_to(shanghai(2026, 11, 24, 0, 50))  # past real midnight: the frozen date again, from 10:00
        assert clock.now() == shanghai(2026, 12, 7, 10, 50) and clock.today() == date(2026, 12, 7)


@pytest.mark.parametrize("frozen", [None, "2026-12-07"])
@pytest.mark.parametrize("started", [(0, 5), (9, 0), (19, 30), (23, 55)])
def test_the_backend_and_the_bot_agree_on_today_at_every_hour(monkeypatch, frozen, started):
    """The action server and Rasa use bot/clock.py (real time, APP_FROZEN_DATE); promise and
    settlement dates are checked there against today, and again in the backend against its today."""
    from bot import clock as bot_clock

    if frozen:
        monkeypatch.setenv("APP_FROZEN_DATE", frozen)
    else:
        monkeypatch.delenv("APP_FROZEN_DATE", raising=False)
    start = shanghai(2026, 11, 23, *started)
    with time_machine.travel(start, tick=False) as traveller:
        backend_clock = Clock(frozen, "10:00")
        for _ in range(2 * 36):  # every 30 minutes for a day and a half
            assert backend_clock.today() == backend_clock.now().date() == bot_clock.today()
            traveller.shift(timedelta(minutes=30))


def test_without_a_demo_time_it_is_the_real_clock():
    with time_machine.travel(shanghai(2026, 11, 23, 23, 40), tick=False):
        for clock in (Clock(), Clock(None, ""), Clock(None, "  "), Clock.from_settings(Settings(OUTREACH_DEMO_TIME=""))):
            assert not clock.shifted
            assert clock.now() == clock.wall() == shanghai(2026, 11, 23, 23, 40)
        assert Clock("2026-12-07").today() == date(2026, 12, 7)


def test_the_setting_is_read_through_settings_and_checked():
    with time_machine.travel(shanghai(2026, 11, 23, 23, 40), tick=False):
        clock = Clock.from_settings(Settings(OUTREACH_DEMO_TIME=" 09:30 ", APP_FROZEN_DATE="2026-12-07"))
        assert clock.now() == shanghai(2026, 12, 7, 9, 30)
    for bad in ("25:00", "ten", "9.30", "10:00+08:00"):
        with pytest.raises(ValidationError, match="OUTREACH_DEMO_TIME"):
            Settings(OUTREACH_DEMO_TIME=bad)


# --------------------------------------------------------------------------- the app under the demo clock

REAL_NIGHT = shanghai(2026, 11, 23, 23, 30)


@pytest.fixture(scope="module")
def fake_rasa():
    with FakeRasa(TOKEN) as fake:
        yield fake


@pytest.fixture
def make_app(db_url, fake_rasa, tmp_path):
    """create_app with the test settings (and these extra ones), made at 23:30 real time."""
    apps = []

    def make(**extra):
        settings = Settings(DATABASE_URL=db_url, BACKEND_API_KEYS=BACKEND_API_KEYS, APP_FROZEN_DATE="2026-11-23",
                            RASA_URL=fake_rasa.url, RASA_API_TOKEN=TOKEN,
                            SMS_OUTBOX_PATH=str(tmp_path / "outbox.jsonl"), SMS_OUTBOX_SHOW_CODES=True, **extra)
        app = create_app(settings)
        app.state.outbox_poll_seconds = 0  # the test runs the outbox worker's round itself
        apps.append(app)
        return app

    fake_rasa.status, fake_rasa.paused, fake_rasa.silent = 200, False, False
    fake_rasa.take()
    yield make
    for app in apps:
        app.state.engine.dispose()


def plan_under_review(desk, client, book) -> tuple[str, object]:
    cust = book.customer("周立")
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    ref = ok(client.post("/api/v1/plan-requests", headers=HEADERS, json={
        "conversation": f"sms:{cust.sms_id}", "channel": "sms", "customer_id": cust.id, "loan_id": loan.id,
        "reason_category": "income_drop", "plan_type": "instalment", "months": 12}), 201)["reference"]
    ok(desk.act(f"/api/v1/plan-requests/{ref}/review", {"by": "alice"}))
    return ref, cust


def decision_notice(app, ref: str) -> OutreachNotice:
    with app.state.sessionmaker() as db:
        return db.scalar(select(OutreachNotice).where(OutreachNotice.dedupe_key.like(f"plan:{ref}:%")))


@pytest.mark.parametrize("demo", ["10:00", ""])
def test_a_decision_at_night_is_told_at_once_under_the_demo_clock(make_app, fake_rasa, demo):
    from fastapi.testclient import TestClient

    with time_machine.travel(REAL_NIGHT, tick=True):
        app = make_app(OUTREACH_DEMO_TIME=demo)
        with TestClient(app) as client, StaffDesk(app) as desk:
            ref, cust = plan_under_review(desk, client, Book(app.state.sessionmaker))
            got = ok(desk.act(f"/api/v1/plan-requests/{ref}/approve", {"by": "bob", "role": "agent"}))
            worker.run_once(app)  # the backend's outbox worker, a moment later
    assert got["status"] == "approved"
    triggers = [r for r in fake_rasa.take() if r.is_delivery]
    n = decision_notice(app, ref)
    if demo:  # business time 10:00 (and a few seconds): inside the window, told now
        assert [r.path for r in triggers] == [f"/conversations/sms:{cust.sms_id}/tracker/events"]
        assert n.status.value == "sent"
        assert shanghai(2026, 11, 23, 10) <= local(n.sent_at) < shanghai(2026, 11, 23, 10, 1)
    else:  # the real 23:30: the rules hold it for the morning
        assert triggers == []
        assert (n.status.value, n.last_error, local(n.next_attempt_at)) == (
            "planned", None, shanghai(2026, 11, 24, 8))
        with app.state.sessionmaker() as db:
            assert db.scalars(select(OutreachAttempt).where(OutreachAttempt.notice_id == n.id)).all() == []


def test_the_web_chat_token_expires_by_the_real_clock(make_app, tmp_path):
    """Rasa's socket.io channel and the page check the token's exp on their own (real) clocks."""
    from fastapi.testclient import TestClient

    with time_machine.travel(REAL_NIGHT, tick=False):
        app = make_app(OUTREACH_DEMO_TIME="10:00")
        cust = Book(app.state.sessionmaker).customer("钱多")
        with TestClient(app) as client:
            ok(client.post("/webchat/login/start", json={"phone": cust.phone}))
            (line,) = (tmp_path / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
            code = re.search(r"\d{6}", json.loads(line)["body"]).group(0)
            got = ok(client.post("/webchat/login/verify", json={"phone": cust.phone, "code": code}))
        claims = jwt.decode(got["token"], app.state.settings.webchat_jwt_secret, algorithms=["HS256"])
        assert claims["iat"] == int(REAL_NIGHT.timestamp())  # not 10:00 business time
        assert claims["exp"] == int(REAL_NIGHT.timestamp()) + got["expires_in"]
