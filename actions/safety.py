"""No action error may reach a borrower as silence or a log line full of personal data.

rasa_sdk answers an exception with HTTP 500 and the whole request body (the tracker, with phone
numbers the borrower typed), which the Rasa server then logs. There is no hook for this in
rasa_sdk 3.6, so ActionExecutor.run is wrapped once here: an unexpected error is logged by type
only and the borrower gets a short apology. Form rejections (ActionExecutionRejection) and unknown
actions keep their normal handling.
"""
from __future__ import annotations

import logging

from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

from texts import text

log = logging.getLogger(__name__)
APOLOGY = text("service.apology")


def install() -> None:
    if getattr(ActionExecutor.run, "_guarded", False):
        return
    original = ActionExecutor.run

    async def run(self, action_call):
        try:
            return await original(self, action_call)
        except (ActionExecutionRejection, ActionNotFoundException):
            raise
        except Exception as exc:  # noqa: BLE001 - the point is to catch everything
            log.error("action %s failed: %s", action_call.get("next_action"), type(exc).__name__)
            dispatcher = CollectingDispatcher()
            dispatcher.utter_message(text=APOLOGY)
            return self._create_api_response([], dispatcher.messages)

    run._guarded = True
    ActionExecutor.run = run
