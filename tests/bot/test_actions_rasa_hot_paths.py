"""bot/launch.py's fixes of Rasa 3.6's hot paths (found by `make bench`'s profile): each does what
Rasa did, for less. Installed on Rasa's classes here with monkeypatch, so they are undone after
each test."""
from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import launch, settings


@pytest.fixture
def installed(monkeypatch):
    """Run an installer with everything it patches restored afterwards."""
    import rasa.core.tracker_store as ts

    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    monkeypatch.setattr(Event, "resolve_by_type", Event.__dict__["resolve_by_type"])
    monkeypatch.setattr(ts.SQLTrackerStore, "save", ts.SQLTrackerStore.save)
    monkeypatch.setattr(ts, "create_engine_kwargs", ts.create_engine_kwargs)
    yield
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if event.contains(Engine, "connect", launch.sqlite_wal):
        event.remove(Engine, "connect", launch.sqlite_wal)


def test_action_results_are_validated_as_before(installed):
    launch.validate_action_results_with_one_validator()
    action = RemoteAction("action_x", None)
    good = {"events": [{"event": "slot", "name": "verified", "value": True}], "responses": [{"text": "hi"}]}
    assert action._validate_action_result(good) is True
    with pytest.raises(ValidationError) as bad:
        action._validate_action_result({"events": [{"event": "no_such_event"}]})
    assert "Failed to validate Action server response from API" in bad.value.message
    with pytest.raises(ValidationError):
        action._validate_action_result({"events": "not a list"})


def test_event_types_resolve_as_before(installed):
    launch.resolve_event_types_once()
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("user") is UserUttered  # remembered
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("nonsense", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):
        Event.resolve_by_type("nonsense")
    restored = Event.from_parameters({"event": "user", "text": "你好", "parse_data": {"intent": {"name": "greet"}}})
    assert isinstance(restored, UserUttered) and restored.text == "你好"


class Broker(EventBroker):
    def __init__(self) -> None:
        self.published: list[dict] = []

    def publish(self, event: dict) -> None:
        self.published.append(event)


def test_trackers_are_saved_and_published_once_per_event_without_reloading(installed, tmp_path, monkeypatch):
    """Each save inserts and publishes only the events not stored yet, across a new session too;
    and it never loads the stored tracker."""
    import rasa.core.tracker_store as ts

    launch.save_trackers_without_reloading()
    launch.sqlite_tracker_store_kept_open()
    broker = Broker()
    store = ts.SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "tracker.db"), event_broker=broker)

    async def never(*_a, **_k):
        raise AssertionError("save must not reload the tracker")

    monkeypatch.setattr(store, "retrieve", never)
    tracker = DialogueStateTracker("web:s-1", [])
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered("你好", {"name": "greet", "confidence": 0.99}))

    asyncio.run(store.save(tracker))
    assert [e["event"] for e in broker.published] == ["session_started", "action", "user"]
    tracker.update(ActionExecuted("utter_greet"))
    asyncio.run(store.save(tracker))
    asyncio.run(store.save(tracker))  # nothing new: nothing stored or published twice
    assert [e["event"] for e in broker.published] == ["session_started", "action", "user", "action"]
    assert all(e["sender_id"] == "web:s-1" for e in broker.published)

    # A new session in the same (in-memory) tracker: only its events are new.
    tracker.update(SessionStarted(timestamp=tracker.events[-1].timestamp + 10))
    tracker.update(ActionExecuted("action_listen", timestamp=tracker.events[-1].timestamp + 10))
    asyncio.run(store.save(tracker))
    assert [e["event"] for e in broker.published][4:] == ["session_started", "action"]
    with sqlite3.connect(tmp_path / "tracker.db") as conn:
        rows = conn.execute("SELECT type_name, intent_name, action_name FROM events ORDER BY id").fetchall()
    assert rows == [("session_started", None, None), ("action", None, "action_listen"), ("user", "greet", None),
                    ("action", None, "utter_greet"), ("session_started", None, None), ("action", None, "action_listen")]
    monkeypatch.undo()  # the real retrieve again: the last session, as Rasa loads it
    loaded = asyncio.run(store.retrieve("web:s-1"))
    assert [e.type_name for e in loaded.events] == ["session_started", "action"]


def test_sqlite_tracker_store_keeps_its_connections_open_in_wal_mode(installed, tmp_path):
    import rasa.core.tracker_store as ts
    from sqlalchemy.pool import QueuePool

    postgres = ts.create_engine_kwargs("postgresql://u@localhost/rasa")
    launch.sqlite_tracker_store_kept_open()
    assert ts.create_engine_kwargs("postgresql://u@localhost/rasa") == postgres  # untouched
    store = ts.SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "t.db"))
    assert isinstance(store.engine.pool, QueuePool)
    tracker = DialogueStateTracker("sms:+8613800000000", [])
    tracker.update(UserUttered("hi"))
    asyncio.run(store.save(tracker))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    assert len(asyncio.run(store.retrieve("sms:+8613800000000")).events) == 1
    assert (tmp_path / "t.db-wal").exists()


def test_speedups_are_on_unless_turned_off(monkeypatch):
    monkeypatch.delenv("RASA_SPEEDUPS", raising=False)
    assert launch.speedups({}) is True
    assert launch.speedups({"RASA_SPEEDUPS": "0"}) is False
    monkeypatch.setenv("RASA_SPEEDUPS", "0")
    assert launch.speedups(settings.merged_env()) is False  # the environment reaches it through the settings


def test_servers_get_single_threaded_math_unless_the_environment_says_otherwise(monkeypatch):
    for key in launch.SERVER_THREADS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    launch.single_threaded_math(settings.merged_env())
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "4"
