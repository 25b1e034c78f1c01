"""Rasa's REST channel (POST /webhooks/rest/webhook) behind the borrower-channel guard.

The same JSON in and out as ``rasa.core.channels.rest.RestInput`` (``{"sender", "message"}`` ->
the bot's messages), but: the sender must have a channel's shape (channels/guard.py) or a plain test
id, else 400; empty, too long or too fast messages get a polite reply and are not processed;
「/intent{...}」 is only let through for the bot's own buttons; a one-time code is checked here and
stored masked; nothing a borrower wrote is logged. No streaming, no client-chosen input channel or
metadata.
"""
from __future__ import annotations

import logging
from asyncio import CancelledError
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.backend import backend, close_backend
from channels import guard

log = logging.getLogger(__name__)


class GuardedRestInput(RestInput):
    @classmethod
    def name(cls) -> str:
        return "rest"  # same URL as Rasa's own REST channel, which this replaces

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("guarded_rest_webhook", __name__)
        bp.listener(close_backend, "after_server_stop")
        client = backend(timeout=5.0)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # noqa: BLE001 - sanic raises its own InvalidUsage
                body = None
            if not isinstance(body, dict):
                return response.json({"error": "a JSON object with sender and message is expected"}, status=400)
            sender = body.get("sender")
            verdict = await guard.screen(sender, body.get("message"), client, allow_plain=True)
            if verdict.reply == guard.BAD_SENDER:
                return response.json({"error": "invalid sender"}, status=400)
            if verdict.reply:
                return response.json([{"recipient_id": sender, "text": verdict.reply}])
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(verdict.text, collector, sender, input_channel=self.name(),
                                                 metadata=verdict.metadata or None))
            except CancelledError:
                log.error("rest: message timed out")
            except Exception as exc:  # noqa: BLE001 - never the borrower's text in the log
                log.error("rest: message not handled: %s", type(exc).__name__)
            return response.json(collector.messages)

        return bp
