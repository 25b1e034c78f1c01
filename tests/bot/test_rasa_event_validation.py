"""bot/launch.py validate_appended_events_with_one_validator: Rasa's POST /conversations/{id}/tracker/events
(the backend's notices and staff replies) validates its body with one validator built once, with the
same verdicts as Rasa's own ``jsonschema.validate`` and the same 400 answer on an invalid body."""
from __future__ import annotations

from types import SimpleNamespace

import jsonschema
import pytest
import rasa.server as server

from bot.launch import validate_appended_events_with_one_validator

NOTICE = [{"event": "slot", "name": "answer_context", "value": "identity_check"},
          {"event": "bot", "text": "您好", "metadata": {"notice_id": "n-1", "kind": "due_in_3_days"}},
          {"event": "action", "name": "action_listen"}]
INVALID = [[{"text": "no event type"}], {"event": 3}, [{"event": "bot", "timestamp": "yesterday"}]]


@pytest.fixture
def patched(monkeypatch):
    monkeypatch.setattr(server, "validate_events_in_request_body", server.validate_events_in_request_body)
    validate_appended_events_with_one_validator()
    return server.validate_events_in_request_body


def test_valid_bodies_pass_as_with_rasas_own_validation(patched):
    for body in (NOTICE, NOTICE[1], {"event": "pause"}, {"event": "resume"}):
        jsonschema.validate(body if isinstance(body, list) else [body], server.EVENTS_SCHEMA)
        assert patched(SimpleNamespace(json=body)) is None


@pytest.mark.parametrize("body", INVALID)
def test_invalid_bodies_get_rasas_400(patched, body):
    with pytest.raises(jsonschema.ValidationError) as rasas:
        jsonschema.validate(body if isinstance(body, list) else [body], server.EVENTS_SCHEMA)
    with pytest.raises(server.ErrorResponse) as ours:
        patched(SimpleNamespace(json=body))
    assert ours.value.status == 400
    assert ours.value.error_info["reason"] == "BadRequest"
    assert ours.value.error_info["message"] == (
        "Failed to validate the events format. For more information about the format visit the docs. "
        f"Error: {rasas.value}")
