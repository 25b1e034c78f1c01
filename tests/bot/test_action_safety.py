"""An action that raises must answer with an apology, never a 500 carrying the tracker."""
from __future__ import annotations

import asyncio
import logging

import pytest

pytest.importorskip("rasa_sdk")

import actions  # noqa: E402,F401 - installs the guard
from rasa_sdk import Action  # noqa: E402
from rasa_sdk.executor import ActionExecutor  # noqa: E402
from rasa_sdk.interfaces import ActionExecutionRejection  # noqa: E402

from actions.safety import APOLOGY  # noqa: E402

TRACKER = {"sender_id": "sms:+8613812345678", "slots": {"identity_phone": "13812345678"}, "latest_message": {},
           "events": [], "paused": False, "followup_action": None, "active_loop": {}, "latest_action_name": None}


class Boom(Action):
    def name(self) -> str:
        return "action_boom"

    def run(self, dispatcher, tracker, domain):
        raise RuntimeError("backend said 13812345678")


class Reject(Action):
    def name(self) -> str:
        return "action_reject"

    def run(self, dispatcher, tracker, domain):
        raise ActionExecutionRejection("action_reject")


def test_unexpected_error_becomes_an_apology_and_logs_no_personal_data(caplog):
    ex = ActionExecutor()
    ex.register_action(Boom)
    with caplog.at_level(logging.DEBUG):
        out = asyncio.run(ex.run({"next_action": "action_boom", "tracker": TRACKER, "domain": {}}))
    assert out["events"] == []
    assert [r["text"] for r in out["responses"]] == [APOLOGY]
    assert "13812345678" not in caplog.text
    assert "RuntimeError" in caplog.text


def test_form_rejections_still_propagate():
    ex = ActionExecutor()
    ex.register_action(Reject)
    with pytest.raises(ActionExecutionRejection):
        asyncio.run(ex.run({"next_action": "action_reject", "tracker": TRACKER, "domain": {}}))
