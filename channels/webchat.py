"""The web chat's socket.io channel: the conversation is the one the sign-in token names.

Rasa's own SocketIOInput takes the sender from the ``session_id`` the browser sends, so any page
could claim any borrower's conversation. Here the sender comes from the signed token
("web:s-<random>", an opaque session id the backend's /webchat/login binds to the customer; never the
customer number) or, without a token, from an anonymous id the server hands out ("web:anon-<hex>"),
which has no account behind it. Every message passes channels/guard.py first (text only, length,
rate, no intent injection, one-time codes masked).
The channel keeps the name "socketio" so Rasa's HTTP API (output_channel=socketio) reaches it.

Nothing lost (backend/static/chat.js sends, channels/claims.py holds the claim): a message carries
the page's client message id ``cid`` (a uuid) and is claimed in the backend by (sender, cid) before
it is processed, completed once Rasa has processed it. The handler's return value is the socket.io
acknowledgement: ``{"cid", "status": "done"}`` (processed now; its answers, sent before, carry
``reply_to: cid``), ``{"cid", "status": "duplicate", "replies": [...]}`` (processed before: the
answers it got, from the tracker, for a page that lost them), ``{"cid", "status": "pending",
"retry_after"}`` (another connection or replica is processing it) or ``{"status": "retry"}``. The
tracker's user event carries ``message_id = cid``.
"""
from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import UserMessage, decode_bearer_token
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint, response
from socketio import AsyncServer

from bot.backend import BackendError, backend, close_backend
from bot.settings import get_settings
from channels import guard
from channels.claims import (
    CLAIMED, DONE, IN_PROGRESS, Lease, new_owner, processed_before, seconds_left, taken_over,
)

log = logging.getLogger(__name__)
ANON = re.compile(r"^web:anon-[0-9a-f]{32}$")
SIGNED_IN = re.compile(r"^web:(s-[A-Za-z0-9_-]{16,64})$")
CHANNEL = "web"


def client_message_id(data: Any) -> Optional[str]:
    """The page's message id (a uuid) as 32 hex digits, or None when missing or malformed."""
    raw = data.get("cid") if isinstance(data, dict) else None
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    try:
        return uuid.UUID(raw).hex
    except ValueError:
        return None


class ReplyOutput(SocketIOOutput):
    """Rasa's socket.io output, each answer marked with the message it answers (``reply_to``)."""

    def __init__(self, sio: AsyncServer, bot_message_evt: Text, reply_to: str) -> None:
        super().__init__(sio, bot_message_evt)
        self.reply_to = reply_to

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        if isinstance(response, dict):
            response = {**response, "reply_to": self.reply_to}
        await super()._send_message(socket_id, response)


def replies_to(events: List[Any], cid: str) -> List[Dict[str, Any]]:
    """The bot messages that answered the user message ``cid`` in a tracker, as the page shows them."""
    out: List[Dict[str, Any]] = []
    found = False
    for event in events:
        if isinstance(event, UserUttered):
            if found:
                break
            found = event.message_id == cid
        elif found and isinstance(event, BotUttered) and event.text:
            buttons = [{"title": b.get("title"), "payload": b.get("payload")}
                       for b in (event.data or {}).get("buttons") or [] if isinstance(b, dict)]
            parts = event.text.strip().split("\n\n") or [event.text]
            out += [{"text": part, "buttons": []} for part in parts]
            out[-1]["buttons"] = buttons
    return out


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
        self.app: Any = None

        @bp.listener("before_server_start")
        async def keep_app(app: Any, _loop: Any) -> None:
            self.app = app  # its agent's tracker store answers a duplicate with the replies it had

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
        async def handle_message(sid: Text, data: Dict) -> Optional[Dict[str, Any]]:
            session = await sio.get_session(sid)
            sender = session.get("sender")
            if not sender:
                return {"status": "retry"}  # before session_request: the page sends again
            text = data.get("message") if isinstance(data, dict) else None
            cid = client_message_id(data)
            if cid is None:  # a page without message ids: processed as it comes, no de-duplication
                await record_presence(sender, f"message:{sid}:{uuid.uuid4().hex}")
                await self._process(sid, sender, text, None, on_new_message)
                return {"status": "done"}
            ack: Dict[str, Any] = {"cid": str(uuid.UUID(cid))}
            external, owner = sender.removeprefix(f"{CHANNEL}:"), new_owner()
            key = f"{external}:{cid}"
            claims = backend(timeout=5.0)
            try:
                claim: Optional[Dict[str, Any]] = await claims.claim(CHANNEL, external, key, owner)
            except BackendError as exc:
                # Without the claim a resend cannot be told apart; answering matters more (a
                # duplicate needs this and a lost acknowledgement together).
                log.warning("web chat claim failed: %s", type(exc).__name__)
                claim = None
            state = claim.get("state") if claim else CLAIMED
            if state == DONE:
                return {**ack, "status": "duplicate", "replies": await self._replies(sender, cid)}
            if state == IN_PROGRESS:
                return {**ack, "status": "pending", "retry_after": round(min(max(seconds_left(claim), 0.5), 5.0), 1)}
            lease = Lease(claims, CHANNEL, key, owner, claim.get("lease_seconds")).start() if claim else None
            if claim and taken_over(claim) and await processed_before(self.app, sender, cid):
                await lease.complete()  # its owner died after Rasa saved the turn: a duplicate
                return {**ack, "status": "duplicate", "replies": await self._replies(sender, cid)}
            try:
                await self._process(sid, sender, text, cid, on_new_message)
            except BaseException as exc:  # not processed: the page sends it again, and the claim is free for it
                log.error("web chat message not handled: %s", type(exc).__name__)
                if lease is not None:
                    await asyncio.shield(lease.release())
                if not isinstance(exc, Exception):
                    raise  # cancelled (shutting down)
                return {**ack, "status": "retry"}
            if lease is not None:
                await lease.complete()
            return {**ack, "status": "done"}

        return bp

    async def _process(self, sid: Text, sender: str, text: Any, cid: Optional[str],
                       on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        reply_to = str(uuid.UUID(cid)) if cid else None  # the id as the page wrote it
        verdict = await guard.screen(sender, text, backend(timeout=5.0))
        if verdict.reply:
            await self.sio.emit(self.bot_message_evt, {"text": verdict.reply, "reply_to": reply_to}, room=sid)
            return
        output = (ReplyOutput(self.sio, self.bot_message_evt, reply_to) if reply_to
                  else SocketIOOutput(self.sio, self.bot_message_evt))
        await on_new_message(UserMessage(verdict.text, output, sender, input_channel=self.name(),
                                         message_id=cid, metadata=verdict.metadata or {}))

    async def _replies(self, sender: str, cid: str) -> List[Dict[str, Any]]:
        agent = getattr(getattr(self.app, "ctx", None), "agent", None)
        store = getattr(agent, "tracker_store", None)
        if store is None:
            return []
        try:
            tracker = await store.retrieve(sender)
        except Exception as exc:  # noqa: BLE001 - the acknowledgement matters more than the replay
            log.warning("web chat replies not read: %s", type(exc).__name__)
            return []
        return replies_to(list(tracker.events) if tracker else [], cid)
