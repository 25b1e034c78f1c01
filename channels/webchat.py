"""The web chat's socket.io channel: the conversation is the one the sign-in token names.

Rasa's own SocketIOInput takes the sender from the ``session_id`` the browser sends, so any page
could claim any borrower's conversation. Here the sender comes from the signed token
("web:s-<random>", an opaque session id the backend's /webchat/login binds to the customer; never the
customer number) or, without a token, from an anonymous id the server hands out ("web:anon-<hex>"),
which has no account behind it. Every message passes channels/guard.py first (text only, length,
rate, no intent injection, one-time codes masked).
The channel keeps the name "socketio" so Rasa's HTTP API (output_channel=socketio) reaches it.
"""
from __future__ import annotations

import logging
import re
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage, decode_bearer_token
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from socketio import AsyncServer

from bot.backend import backend, close_backend
from bot.settings import get_settings
from channels import guard

log = logging.getLogger(__name__)
ANON = re.compile(r"^web:anon-[0-9a-f]{32}$")
SIGNED_IN = re.compile(r"^web:(s-[A-Za-z0-9_-]{16,64})$")


async def record_presence(sender: str, key: str) -> None:
    """A signed-in borrower connected or wrote: the backend's web identity gets last_inbound_at,
    which tells the scheduler the web chat can deliver a notice now. Never blocks the chat."""
    m = SIGNED_IN.match(sender or "")
    if not m:
        return  # anonymous visitors have no account to remind
    try:
        await backend().claim("web", m.group(1), key)
    except Exception as exc:  # noqa: BLE001 - presence is best effort; the message still goes to Rasa
        log.warning("web presence not recorded: %s", type(exc).__name__)


class WebChatInput(SocketIOInput):
    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WebChatInput":
        credentials = credentials or {}
        return cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            None, True, credentials.get("socketio_path", "/socket.io"),
            credentials.get("jwt_key"), credentials.get("jwt_method", "HS256"),
        )

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        origins = get_settings().webchat_allowed_origins
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins="*" if origins == "*" else origins.split(","))
        bp = SocketBlueprint(sio, self.socketio_path, "webchat_socketio", __name__)
        bp.listener(close_backend, "after_server_stop")
        self.sio = sio

        @bp.route("/", methods=["GET"])
        async def health(_):
            return response.json({"status": "ok"})

        @sio.on("connect")
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict]) -> bool:
            token = (auth or {}).get("token")
            if not token:
                await sio.save_session(sid, {"sender": None})
                return True
            payload = decode_bearer_token(token, self.jwt_key, self.jwt_algorithm) if self.jwt_key else None
            if not payload or not SIGNED_IN.match(str(payload.get("sub", ""))):
                return False  # a bad or expired token is refused, not downgraded to anonymous
            await sio.save_session(sid, {"sender": payload["sub"]})
            return True

        @sio.on("session_request")
        async def session_request(sid: Text, data: Optional[Dict]) -> None:
            session = await sio.get_session(sid)
            sender = session.get("sender")
            if sender is None:
                wanted = (data or {}).get("session_id") or ""
                sender = wanted if ANON.match(wanted) else f"web:anon-{uuid.uuid4().hex}"
                await sio.save_session(sid, {"sender": sender})
            sio.enter_room(sid, sender)  # python-socketio 5.8: synchronous (see field notes)
            await sio.emit("session_confirm", sender, room=sid)
            await record_presence(sender, f"connect:{sid}")

        @sio.on(self.user_message_evt)
        async def handle_message(sid: Text, data: Dict) -> None:
            session = await sio.get_session(sid)
            sender = session.get("sender")
            if not sender:
                return
            text = data.get("message") if isinstance(data, dict) else None
            verdict = await guard.screen(sender, text, backend(timeout=5.0))
            if verdict.reply:
                await sio.emit(self.bot_message_evt, {"text": verdict.reply}, room=sid)
                return
            await record_presence(sender, f"message:{sid}:{uuid.uuid4().hex}")
            await on_new_message(UserMessage(verdict.text, SocketIOOutput(sio, self.bot_message_evt), sender,
                                             input_channel=self.name(), metadata=verdict.metadata or {}))

        return bp
