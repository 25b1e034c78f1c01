"""The backend's client for Rasa's HTTP API: Rasa stays the record of the conversation.

Staff replies are appended to the tracker as ``bot`` events with ``execute_side_effects`` and the
borrower's ``output_channel``, so they reach WeChat, SMS or the web chat the way bot messages do
and are part of the transcript. "Return to assistant" resumes the conversation and triggers
EXTERNAL_handoff_closed (the bot then asks for a rating). Decisions on plan requests and complaint
tickets trigger an EXTERNAL_* intent so the bot itself words the notice (backend.services.notices).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx

from backend.core.errors import AppError

# The Rasa input channel that delivers to each of our channels (InputChannel.name()).
OUTPUT_CHANNEL = {"web": "socketio", "wechat": "wechat", "sms": "sms"}


class RasaUnavailable(AppError):
    def __init__(self) -> None:
        super().__init__(502, "rasa_unavailable", "对话服务暂时不可用，请稍后重试", "Rasa did not answer")


@dataclass
class RasaClient:
    base_url: str
    token: str
    timeout: float = 10.0

    def _call(self, method: str, conversation: str, tail: str, **kw) -> dict:
        # Rasa does not decode %3A in the conversation id: keep ':' and '+' (sms:+86...) as they are.
        url = f"{self.base_url.rstrip('/')}/conversations/{quote(conversation, safe=':+')}/{tail}"
        params = {"token": self.token, **kw.pop("params", {})}
        try:
            r = httpx.request(method, url, params=params, timeout=self.timeout, **kw)
            r.raise_for_status()
            return r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RasaUnavailable() from exc

    def events(self, conversation: str) -> list[dict]:
        """The whole stored conversation (all sessions), oldest first."""
        return self._call("GET", conversation, "tracker", params={"include_events": "ALL"}).get("events", [])

    def send_staff_message(self, conversation: str, channel: str, text: str, staff: str) -> None:
        self._call("POST", conversation, "tracker/events",
                   params={"output_channel": OUTPUT_CHANNEL[channel], "execute_side_effects": "true"},
                   json={"event": "bot", "text": text, "metadata": {"staff": staff}})

    def hand_back(self, conversation: str, channel: str, case_id: int) -> None:
        """Resume the conversation, then let the bot ask for a rating on the borrower's channel."""
        self._call("POST", conversation, "tracker/events", json={"event": "resume"})
        self.trigger_intent(conversation, channel, "EXTERNAL_handoff_closed", {"case_id": case_id})

    def trigger_intent(self, conversation: str, channel: str, intent: str, entities: dict) -> dict:
        """Run an external intent in the borrower's conversation; the bot answers on their channel."""
        return self._call("POST", conversation, "trigger_intent",
                          params={"output_channel": OUTPUT_CHANNEL[channel]},
                          json={"name": intent, "entities": entities})
