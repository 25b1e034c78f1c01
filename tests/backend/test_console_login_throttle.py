"""Console sign-in throttling that a stranger cannot turn against staff (config/business.yml,
``console``): failures lock only the client address they came from; failures on a username from
elsewhere slow further attempts on it down (doubling, capped) but never refuse its owner."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from backend.core.clock import SHANGHAI
from backend.core.errors import AppError
from backend.services import staff

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
PASSWORD = "throttle-test-pass-1"


@pytest.fixture
def waits(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(staff, "_sleep", slept.append)
    return slept


@pytest.fixture(scope="module")
def user(app):
    with app.state.sessionmaker() as db:
        staff.create_user(db, "throttled1", "客服小赵", "agent", PASSWORD, T0, "test")
        db.commit()
    return "throttled1"


def sign_in(app, username, password, client, at):
    with app.state.sessionmaker() as db:
        try:
            return staff.sign_in(db, app.state.rules, username, password, client, at)
        except AppError as exc:
            return exc.status
        finally:
            db.commit()


def test_a_stranger_cannot_lock_staff_out(app, user, waits):
    at = T0
    for _ in range(5):
        assert sign_in(app, user, "wrong-password-x", "203.0.113.9", at) == 401
    # The stranger's own address is locked now ...
    assert sign_in(app, user, "wrong-password-x", "203.0.113.9", at) == 429
    # ... but the agent at her own desk signs in, only a little later.
    result = sign_in(app, user, PASSWORD, "10.0.0.5", at + timedelta(seconds=1))
    assert isinstance(result, tuple) and result[0].username == user
    assert waits and waits[-1] >= app.state.rules.console.login_slowdown_seconds


def test_failures_from_many_addresses_only_slow_a_username_down(app, user, waits):
    at = T0 + timedelta(hours=1)
    for i in range(12):
        assert sign_in(app, user, "wrong-password-x", f"198.51.100.{i}", at) == 401
    c = app.state.rules.console
    assert waits[0] == c.login_slowdown_seconds  # the 6th attempt waits first
    assert waits == sorted(waits) and max(waits) == c.login_slowdown_max_seconds
    result = sign_in(app, user, PASSWORD, "10.0.0.5", at)
    assert isinstance(result, tuple)


def test_slowdown_doubles_and_is_capped(app):
    rules = app.state.rules
    c = rules.console
    assert staff.slowdown(rules, c.login_max_failures - 1) == 0
    assert staff.slowdown(rules, c.login_max_failures) == c.login_slowdown_seconds
    assert staff.slowdown(rules, c.login_max_failures + 1) == 2 * c.login_slowdown_seconds
    assert staff.slowdown(rules, 10_000) == c.login_slowdown_max_seconds
