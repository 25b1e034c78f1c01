"""Closing a handoff case always gives the conversation back to the bot.

A case is closed only by the console's hand-back (backend.services.console.hand_back), which resumes
the conversation in Rasa and triggers EXTERNAL_handoff_closed before it closes the case; the service
API that closed a case without resuming it (POST /api/v1/handoffs/{id}/close) is gone. A Rasa that
cannot be reached leaves the case open, never closed with the conversation still paused.
"""
from __future__ import annotations

import ast
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import delete

from backend.core.clock import SHANGHAI
from backend.models import HandoffCase, HandoffNote
from testkit import HEADERS, ManualClock, ok

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)


@pytest.fixture
def clock(app):
    with app.state.sessionmaker() as db:
        db.execute(delete(HandoffNote))
        db.execute(delete(HandoffCase))
        db.commit()
    original, app.state.clock = app.state.clock, ManualClock(T0)
    yield app.state.clock
    app.state.clock = original


def open_case(client, conversation: str) -> dict:
    return ok(client.post("/api/v1/handoffs", headers=HEADERS, json={
        "conversation": conversation, "channel": "sms", "reason": "request_human", "summary": "客户要求转人工"}), 201)


def test_closing_resumes_the_conversation_then_closes_the_case(app, client, desk, clock):
    conversation = "sms:+8613800000001"
    case = open_case(client, conversation)
    ok(desk.post("alice", f"/cases/{case['id']}/claim"))
    desk.rasa.take()
    closed = ok(desk.act(f"/api/v1/handoffs/{case['id']}/close", {"by": "alice"}))
    assert (closed["status"], closed["assigned_to"]) == ("closed", "alice")
    sent = [(r.method, r.path, r.json) for r in desk.rasa.take()]
    assert sent == [
        ("POST", f"/conversations/{conversation}/tracker/events", {"event": "resume"}),
        ("POST", f"/conversations/{conversation}/trigger_intent",
         {"name": "EXTERNAL_handoff_closed", "entities": {"case_id": case["id"]}}),
    ]
    with app.state.sessionmaker() as db:
        stored = db.get(HandoffCase, case["id"])
        assert (stored.status.value, stored.active_conversation) == ("closed", None)


def test_a_rasa_that_cannot_resume_leaves_the_case_open(app, client, desk, clock):
    case = open_case(client, "sms:+8613800000002")
    ok(desk.post("alice", f"/cases/{case['id']}/claim"))
    desk.rasa.status = 500
    try:
        resp = desk.act(f"/api/v1/handoffs/{case['id']}/close", {"by": "alice"})
    finally:
        desk.rasa.status = 200
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "rasa_unavailable"
    with app.state.sessionmaker() as db:
        assert db.get(HandoffCase, case["id"]).status.value == "claimed"


def _calls_to_close(tree: ast.AST) -> list[ast.Call]:
    """Calls of backend.services.handoff.close: ``handoff.close(...)`` / ``svc.close(...)`` with 6+ arguments."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == "close" and isinstance(n.func.value, ast.Name)
            and n.func.value.id in ("handoff", "handoff_service", "svc") and len(n.args) + len(n.keywords) >= 5]


def test_the_only_code_that_closes_a_case_resumes_the_conversation_first():
    """Every call of handoff.close in the backend and the scheduler is in a function that has called
    ``rasa.hand_back`` (resume + EXTERNAL_handoff_closed) on an earlier line."""
    callers = []
    for path in sorted([*(ROOT / "backend").rglob("*.py"), *(ROOT / "scheduler").rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for call in _calls_to_close(fn):
                resumed = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                           and n.func.attr == "hand_back" and n.lineno < call.lineno]
                callers.append((path.relative_to(ROOT).as_posix(), fn.name, bool(resumed)))
    assert callers == [("backend/services/console.py", "hand_back", True)]
