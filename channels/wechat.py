"""WeChat Official Account channel for Rasa (credentials.yml key `channels.wechat.WeChatInput`).

Routes under /webhooks/wechat/ (configure https://<host>/webhooks/wechat/webhook as the server URL):

    GET  /webhook   URL check: echo `echostr` when `signature` matches the token, else 403
    POST /webhook   messages and events, plaintext or safe mode (encrypt_type=aes)

WeChat gives a callback 5 s and retries a callback it got no answer to. The handler checks, claims
the message key in the backend (MsgId; events: FromUserName + CreateTime) with a lease
(channels/claims.py), runs the conversation in a background task (the answers go out through the
customer-service message API) and answers `success` when the turn is done, or after REPLY_WITHIN
seconds, whichever comes first. The claim is completed only once Rasa has processed the message, so:
a retry of a processed message is answered `success` and dropped (across restarts too); a retry of
one whose process died mid-turn (WeChat got no answer) takes the claim over once its lease has run
out and processes it; a retry while the owner's lease is fresh waits up to REPLY_WITHIN for it to
settle, then answers `success` (the owner is alive and renews its lease).

Outbound rules: customer-service messages only within ``outreach.wechat_window_hours`` (48 h) of the
user's last message (served by the backend, bot/rules.py) and at
most 5 per user message; past either limit a configured template message (service notices
only, each field at most 20 characters, no newline) is sent instead, or nothing if none is set.

The access token lives in wechatpy session storage (Redis when WECHAT_REDIS_URL is set, shared
by every worker; memory otherwise) and is refreshed under a lock, so many workers fetch it once.
Logs carry masked openids and never message text.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Iterator

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy import parse_message
from wechatpy.client import WeChatClient
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException, WeChatClientException
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage
from wechatpy.utils import check_signature

from bot.backend import BackendClient, BackendError, backend, close_backend
from bot.rules import rules_for
from bot.settings import get_settings
from channels import guard
from channels.claims import (
    CLAIMED, DONE, IN_PROGRESS, Lease, answer_when_done, new_owner, processed_before, settle, taken_over,
)
from texts import text

log = logging.getLogger(__name__)

CHANNEL = "wechat"
MAX_BODY = 64 * 1024
PER_MESSAGE_LIMIT = 5
REPLY_WITHIN = 3.5  # seconds: WeChat drops the callback after 5 s
FIELD_MAX = 20
SHANGHAI = timezone(timedelta(hours=8))  # no DST; naive backend timestamps are Beijing time


def window() -> timedelta:
    """How long after a user's last message customer-service messages reach them (WeChat's 48 hours:
    ``outreach.wechat_window_hours``, served by the backend, which routes notices by the same rule)."""
    return timedelta(hours=rules_for("outreach")["wechat_window_hours"])


ONLY_TEXT = text("channel.wechat.only_text")
WELCOME = text("channel.wechat.welcome")
WELCOME_BOUND = WELCOME + text("channel.wechat.welcome_bound")
NOTICE_TITLE = text("channel.wechat.notice_title")
NOTICE_REMARK = text("channel.wechat.notice_remark")
BIND_OFFER = "/provide_identity"  # starts the identity form; a verified form binds this openid

# Events that count as the user's action (they open the 48-hour window); others (template
# delivery reports, location reports) are acknowledged and ignored.
USER_EVENTS = {"subscribe", "subscribe_scan", "unsubscribe", "click", "view", "scan"}
WINDOW_CLOSED, OVER_LIMIT = 45015, 45047
TOKEN_REJECTED = {40001, 40014, 42001}
OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A signed callback is good for this long around its timestamp, and each nonce once (a repeat with
# the same body is WeChat retrying; with another body, a replay): plaintext-mode signatures cover
# only token, timestamp and nonce, not the body.
SIGNATURE_WINDOW = 300


class NonceCache:
    """Nonces seen within the signature window (Redis when configured, so replicas share them)."""

    def __init__(self, redis: Any = None, window: int = SIGNATURE_WINDOW, prefix: str = "wechat:nonce") -> None:
        self.redis, self.window, self.prefix = redis, window, prefix
        self._seen: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def first_use(self, key: str, body_digest: str, now: float | None = None) -> bool:
        """True if ``key`` is new, or was seen with this same body (a retry)."""
        now = time.time() if now is None else now
        if self.redis is not None:
            try:
                name = f"{self.prefix}:{key}"
                if self.redis.set(name, body_digest, nx=True, ex=2 * self.window):
                    return True
                stored = self.redis.get(name)
                return (stored.decode() if isinstance(stored, bytes) else stored) == body_digest
            except Exception as exc:  # noqa: BLE001 - fall back to this process's memory
                log.warning("wechat nonce store unavailable: %s", type(exc).__name__)
        with self._lock:
            for k in [k for k, (at, _) in self._seen.items() if at < now - 2 * self.window]:
                del self._seen[k]
            seen = self._seen.get(key)
            if seen is None:
                self._seen[key] = (now, body_digest)
                return True
            return seen[1] == body_digest


def mask(openid: str) -> str:
    return openid[:4] + "****" + openid[-4:] if len(openid) > 8 else "****"


def openid_of(recipient_id: str) -> str:
    return recipient_id.removeprefix(f"{CHANNEL}:")


def clean_field(value: Any, limit: int = FIELD_MAX) -> str:
    """A template field: one line, no control characters, at most `limit` characters."""
    text = re.sub(r"\s+", " ", "".join(ch if ch.isprintable() else " " for ch in str(value))).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def template_data(text: str, now: datetime) -> dict[str, dict[str, str]]:
    """Fields of the service-notice template: summary of the message and the time."""
    fields = {"first": NOTICE_TITLE, "keyword1": text, "keyword2": now.strftime("%Y-%m-%d %H:%M"),
              "remark": NOTICE_REMARK}
    return {name: {"value": clean_field(value)} for name, value in fields.items()}


def within_window(last_inbound_at: str | None, now: datetime | None = None) -> bool:
    if not last_inbound_at:
        return False
    try:
        last = datetime.fromisoformat(str(last_inbound_at).replace("Z", "+00:00"))
    except ValueError:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=SHANGHAI)
    return (now or datetime.now(SHANGHAI)) - last < window()


def with_options(text: str, buttons: list[dict[str, Any]]) -> str:
    """WeChat text has no buttons: list the choices under the question."""
    titles = [str(b.get("title", "")).strip() for b in buttons or [] if b.get("title")]
    return "\n".join([text, *(f"· {t}" for t in titles)]) if titles else text


class RefreshLock:
    """Serialises token refreshes: a thread lock in this process, plus a Redis lock across
    workers when the token is stored in Redis."""

    def __init__(self, redis: Any = None, name: str = "wechatpy:token-refresh", timeout: float = 30) -> None:
        self._local = threading.Lock()
        self._redis, self._name, self._timeout = redis, name, timeout

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._local:
            if self._redis is None:
                yield
                return
            lock = self._redis.lock(self._name, timeout=self._timeout, blocking_timeout=self._timeout)
            acquired = False
            try:
                acquired = lock.acquire()
            except Exception as exc:  # Redis unreachable: refresh anyway rather than send nothing
                log.warning("wechat token lock unavailable: %s", type(exc).__name__)
            try:
                yield
            finally:
                if acquired:
                    try:
                        lock.release()
                    except Exception:  # expired while we held it
                        pass


class SharedTokenClient(WeChatClient):
    """wechatpy's client with a configurable API base (WECHAT_API_BASE) and an access token
    that is shared through the session storage and refreshed once under a lock."""

    def __init__(self, appid: str, secret: str, api_base: str, session: Any, lock: RefreshLock,
                 timeout: float = 10) -> None:
        super().__init__(appid, secret, session=session, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = api_base if api_base.endswith("/") else api_base + "/"
        self._refresh_lock = lock

    @property
    def _expires_key(self) -> str:
        return f"{self.appid}_access_token_expires_at"

    def _fresh_token(self) -> str | None:
        token = self.session.get(self.access_token_key)
        expires_at = self.session.get(self._expires_key)
        if token and expires_at and float(expires_at) - time.time() > 60:
            return token
        return None

    @property
    def access_token(self) -> str:
        token = self._fresh_token()
        if token:
            return token
        with self._refresh_lock():
            # Another thread or worker may have refreshed while this one waited for the lock.
            return self._fresh_token() or self._fetch()

    def fetch_access_token(self) -> dict:
        with self._refresh_lock():
            self._fetch()
        return {"access_token": self.session.get(self.access_token_key)}

    def replace_rejected_token(self, rejected: str | None) -> None:
        """The API rejected `rejected`: fetch a new token unless another worker already did."""
        with self._refresh_lock():
            current = self._fresh_token()
            if current is None or current == rejected:
                self._fetch()

    def _fetch(self) -> str:
        result = self._fetch_access_token(url=self.API_BASE_URL + "token", params={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})
        expires_in = int(result.get("expires_in", 7200))
        self.session.set(self._expires_key, time.time() + expires_in, expires_in)
        log.info("wechat access token refreshed")
        return result["access_token"]


class SendCounter:
    """Customer-service messages sent to each user since their last message (WeChat allows 5)."""

    def __init__(self, redis: Any = None, limit: int = PER_MESSAGE_LIMIT, prefix: str = "wechat:cs-count") -> None:
        self._redis, self._limit, self._prefix = redis, limit, prefix
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, openid: str) -> bool:
        """Count one more message; False if that would exceed the limit."""
        if self._redis is not None:
            key = f"{self._prefix}:{openid}"
            n = self._redis.incr(key)
            if n == 1:
                self._redis.expire(key, int(window().total_seconds()))
            return n <= self._limit
        with self._lock:
            n = self._counts.get(openid, 0) + 1
            self._counts[openid] = n
            return n <= self._limit

    def reset(self, openid: str) -> None:
        if self._redis is not None:
            self._redis.delete(f"{self._prefix}:{openid}")
        else:
            with self._lock:
                self._counts.pop(openid, None)


class WeChatSender:
    """Delivers one text to an openid: customer-service message inside the window and quota,
    template message otherwise."""

    def __init__(self, client: SharedTokenClient, backend: BackendClient, counter: SendCounter,
                 template_id: str = "", template_url: str = "") -> None:
        self.client, self.backend, self.counter = client, backend, counter
        self.template_id, self.template_url = template_id, template_url

    async def send(self, openid: str, text: str, window_open: bool | None = None) -> None:
        """window_open None: look it up (proactive message); True: replying to a message now."""
        if not text or not text.strip():
            return
        if window_open is None:
            window_open = await self._window_open(openid)
            if window_open is None:
                return
        if window_open and await asyncio.to_thread(self.counter.take, openid):
            try:
                await self._call(self.client.message.send_text, openid, text)
                log.info("wechat customer-service message sent to %s", mask(openid))
                return
            except WeChatClientException as exc:
                if exc.errcode not in (WINDOW_CLOSED, OVER_LIMIT):
                    log.warning("wechat send to %s failed: errcode %s", mask(openid), exc.errcode)
                    return
                log.info("wechat window or quota closed for %s (errcode %s)", mask(openid), exc.errcode)
        await self.send_template(openid, text)

    async def send_template(self, openid: str, text: str) -> None:
        if not self.template_id:
            log.warning("wechat message to %s not delivered: outside the window and no template set", mask(openid))
            return
        try:
            await self._call(self.client.message.send_template, openid, self.template_id,
                             template_data(text, datetime.now(SHANGHAI)), url=self.template_url or None)
            log.info("wechat template message sent to %s", mask(openid))
        except WeChatClientException as exc:
            log.warning("wechat template to %s failed: errcode %s", mask(openid), exc.errcode)

    async def _window_open(self, openid: str) -> bool | None:
        try:
            ident = await self.backend.identity(CHANNEL, openid)
        except BackendError as exc:  # backend down: try customer service, WeChat says if closed
            log.warning("wechat identity lookup failed: %s", type(exc).__name__)
            return True
        if ident is None or ident.get("status") != "active":
            log.info("wechat message to %s dropped: identity %s", mask(openid),
                     "unknown" if ident is None else ident.get("status"))
            return None
        return within_window(ident.get("last_inbound_at"))

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            used = self.client.session.get(self.client.access_token_key)
            try:
                return fn(*args, **kwargs)
            except WeChatClientException as exc:
                if exc.errcode not in TOKEN_REJECTED:
                    raise
                self.client.replace_rejected_token(used)
                return fn(*args, **kwargs)

        return await asyncio.to_thread(run)


class WeChatOutput(OutputChannel):
    """Sends each bot message on its own (proactive messages through Rasa's HTTP API)."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, sender: WeChatSender) -> None:
        self.sender = sender

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.sender.send(openid_of(recipient_id), text)

    async def send_text_with_buttons(self, recipient_id: str, text: str, buttons: list[dict[str, Any]],
                                     **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, with_options(text, buttons))

    async def send_quick_replies(self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]],
                                 **kwargs: Any) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies)

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        if isinstance(json_message, dict) and json_message.get("text"):
            await self.send_text_message(recipient_id, str(json_message["text"]))


class WeChatTurnOutput(WeChatOutput):
    """Collects the answers to one user message and sends them as one customer-service message
    (one of the 5 allowed per user message)."""

    def __init__(self, sender: WeChatSender) -> None:
        super().__init__(sender)
        self.parts: list[str] = []

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        if text and text.strip():
            self.parts.append(text.strip())

    async def flush(self, openid: str) -> None:
        if self.parts:
            text, self.parts = "\n\n".join(self.parts), []
            await self.sender.send(openid, text, window_open=True)


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class WeChatInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "WeChatInput":
        if not credentials:
            cls.raise_missing_credentials_exception()
        c = {k: ("" if v is None else str(v)) for k, v in credentials.items()}
        settings = get_settings()
        return cls(token=c.get("token", ""), app_id=c.get("app_id", ""), app_secret=c.get("app_secret", ""),
                   aes_key=c.get("aes_key", ""),
                   api_base=c.get("api_base") or "https://api.weixin.qq.com/cgi-bin/",
                   template_id=c.get("template_id") or settings.wechat_template_id,
                   template_url=c.get("template_url") or settings.wechat_template_url,
                   redis_url=c.get("redis_url") or settings.wechat_redis_url)

    def __init__(self, token: str, app_id: str, app_secret: str, aes_key: str = "",
                 api_base: str = "https://api.weixin.qq.com/cgi-bin/", template_id: str = "",
                 template_url: str = "", redis_url: str = "") -> None:
        if not token:
            raise ValueError("wechat: token is required")
        if aes_key and len(aes_key) != 43:
            raise ValueError("wechat: the EncodingAESKey must have 43 characters")
        self.token, self.app_id = token, app_id
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        redis = None
        if redis_url:
            import redis as redis_lib

            redis = redis_lib.Redis.from_url(redis_url)
        session = RedisStorage(redis, prefix="wechatpy") if redis is not None else MemoryStorage()
        client = SharedTokenClient(app_id, app_secret, api_base, session,
                                   RefreshLock(redis, f"wechatpy:{app_id}:token-refresh"))
        self.claims = backend(timeout=3.0)  # must answer well inside WeChat's 5 s
        self.sender = WeChatSender(client, backend(), SendCounter(redis), template_id, template_url)
        self.nonces = NonceCache(redis)
        self._tasks: set[asyncio.Task] = set()

    def get_output_channel(self) -> OutputChannel:
        return WeChatOutput(self.sender)

    # --- inbound -------------------------------------------------------------------------

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("wechat_webhook", __name__)
        bp.listener(close_backend, "after_server_stop")

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["GET"])
        async def verify_url(request: Request) -> HTTPResponse:
            echostr = request.args.get("echostr")
            if not echostr or not self._signed(request, echostr.encode()):
                return response.text("forbidden", status=403)
            return response.text(echostr)

        @bp.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = await self._read_body(request)
                if not self._signed(request, body):
                    raise BadRequest(403, "bad signature")
                msg = self._parse(body, request)
            except BadRequest as exc:
                log.info("wechat callback refused: %s", exc.reason)
                return response.text(exc.reason, status=exc.status)
            return await self._accept(msg, on_new_message, request.app)

        return bp

    def _signed(self, request: Request, body: bytes = b"") -> bool:
        """The signature, a timestamp within SIGNATURE_WINDOW of now, and a nonce not used before
        for another body."""
        a = request.args
        try:
            check_signature(self.token, a.get("signature", ""), a.get("timestamp", ""), a.get("nonce", ""))
        except InvalidSignatureException:
            return False
        try:
            stamp = int(a.get("timestamp", ""))
        except ValueError:
            return False
        if abs(time.time() - stamp) > SIGNATURE_WINDOW:
            log.info("wechat callback refused: timestamp outside the window")
            return False
        key = f"{stamp}:{a.get('nonce', '')}:{a.get('signature', '')}"
        if not self.nonces.first_use(key, hashlib.sha256(body).hexdigest()):
            log.info("wechat callback refused: nonce replayed with another body")
            return False
        return True

    @staticmethod
    async def _read_body(request: Request) -> bytes:
        request.stream.request_max_size = MAX_BODY  # also bounds what Sanic drains after a refusal
        try:
            if int(request.headers.get("content-length") or 0) > MAX_BODY:
                raise BadRequest(413, "body too large")
        except ValueError:
            raise BadRequest(400, "bad content-length") from None
        try:
            await request.receive_body()
        except PayloadTooLarge:
            raise BadRequest(413, "body too large") from None
        return request.body or b""

    def _parse(self, body: bytes, request: Request) -> Any:
        if re.search(rb"<!(DOCTYPE|ENTITY)", body, re.IGNORECASE):
            raise BadRequest(400, "malformed xml")
        xml: Any = body
        if request.args.get("encrypt_type", "raw").lower() == "aes":
            if self.crypto is None:
                raise BadRequest(403, "safe mode not configured")
            a = request.args
            try:
                xml = self.crypto.decrypt_message(body, a.get("msg_signature", ""), a.get("timestamp", ""),
                                                  a.get("nonce", ""))
            except (InvalidSignatureException, InvalidAppIdException):
                raise BadRequest(403, "bad signature") from None
            except Exception:
                raise BadRequest(400, "malformed xml") from None
            if re.search(r"<!(DOCTYPE|ENTITY)", xml, re.IGNORECASE):
                raise BadRequest(400, "malformed xml")
        try:
            msg = parse_message(xml)
            source = msg.source if msg is not None else None
        except Exception:
            raise BadRequest(400, "malformed xml") from None
        if not source or not OPENID.fullmatch(source) or not msg._data.get("CreateTime"):
            raise BadRequest(400, "malformed xml")
        return msg

    @staticmethod
    def _kind(msg: Any) -> tuple[str, str]:
        """(MsgType, Event) from the raw fields: wechatpy maps events it does not know to
        UnknownMessage, which must not be taken for an unsupported user message."""
        data = msg._data
        return str(data.get("MsgType") or "").lower(), str(data.get("Event") or "").lower()

    def _dedupe_key(self, msg: Any) -> str | None:
        data = msg._data
        kind, event = self._kind(msg)
        if kind != "event":
            msg_id = str(data.get("MsgId") or "").strip()
            return msg_id or f"{msg.source}:{data['CreateTime']}"
        if event not in USER_EVENTS:
            return None
        return f"{msg.source}:{data['CreateTime']}"

    async def _accept(self, msg: Any, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                      app: Any = None) -> HTTPResponse:
        started = time.monotonic()
        key = self._dedupe_key(msg)
        if key is None:
            return response.text("success")
        owner = new_owner()
        try:
            claim = await self.claims.claim(CHANNEL, msg.source, key, owner)
            if claim.get("state") == IN_PROGRESS:  # a retry while another owner holds it
                claim = await settle(self.claims, CHANNEL, msg.source, key, owner, claim,
                                     REPLY_WITHIN - (time.monotonic() - started))
        except BackendError as exc:
            # Without the claim a retry cannot be told apart: let WeChat retry later.
            log.warning("wechat claim failed for %s: %s", mask(msg.source), type(exc).__name__)
            return response.text("", status=503)
        state = claim.get("state", CLAIMED if claim.get("first_time") else DONE)
        if state != CLAIMED:
            log.info("wechat retry from %s not processed (%s)", mask(msg.source), state)
            return response.text("success")
        lease = Lease(self.claims, CHANNEL, key, owner, claim.get("lease_seconds", 10)).start()
        if taken_over(claim):
            log.info("wechat message from %s taken over (attempt %s)", mask(msg.source), claim["attempts"])
            if await processed_before(app, f"{CHANNEL}:{msg.source}", str(msg._data.get("MsgId") or "")):
                await lease.complete()  # its owner died after Rasa saved the turn: not processed again
                return response.text("success")
        task = self._spawn(self._held(msg, claim.get("identity") or {}, on_new_message, lease))
        if not await answer_when_done(task, started, REPLY_WITHIN):
            return response.text("", status=500)
        return response.text("success")

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # logged where it happened
        return task

    async def _held(self, msg: Any, identity: dict, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                    lease: Lease) -> None:
        """Handle the message under its claim: completed once handled (:meth:`_converse` completes it
        as soon as Rasa has processed the message, before sending the answer), released if it failed."""
        try:
            await self._handle(msg, identity, on_new_message, lease)
        except BaseException as exc:
            log.error("wechat message from %s not handled: %s", mask(msg.source), type(exc).__name__)
            await asyncio.shield(lease.release())
            raise
        await lease.complete()

    async def _handle(self, msg: Any, identity: dict, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                      lease: Lease | None = None) -> None:
        openid = msg.source
        await asyncio.to_thread(self.sender.counter.reset, openid)
        kind, event = self._kind(msg)
        if kind == "text":
            verdict = await guard.screen(f"{CHANNEL}:{openid}", str(msg._data.get("Content") or ""),
                                         self.claims)
            if verdict.reply:
                await self.sender.send(openid, verdict.reply, window_open=True)
                return
            await self._converse(openid, verdict.text, on_new_message, str(msg._data.get("MsgId") or ""),
                                 verdict.metadata, lease)
        elif kind != "event":
            await self.sender.send(openid, ONLY_TEXT, window_open=True)
        elif event in ("subscribe", "subscribe_scan"):
            await self._subscribed(openid, identity, on_new_message, lease)
        elif event == "unsubscribe":
            await self.claims.set_status(CHANNEL, openid, "inactive")
            log.info("wechat %s unsubscribed", mask(openid))

    async def _subscribed(self, openid: str, identity: dict, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                          lease: Lease | None = None) -> None:
        if identity.get("status") == "inactive":
            await self.claims.set_status(CHANNEL, openid, "active")
            identity["status"] = "active"
        bound = identity.get("customer_id") is not None and identity.get("verified") and identity.get("status") == "active"
        await self.sender.send(openid, WELCOME_BOUND if bound else WELCOME, window_open=True)
        if not bound:
            await self._converse(openid, BIND_OFFER, on_new_message, lease=lease)

    async def _converse(self, openid: str, text: str, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                        message_id: str | None = None, metadata: dict | None = None,
                        lease: Lease | None = None) -> None:
        if not text.strip():
            return
        out = WeChatTurnOutput(self.sender)
        await on_new_message(UserMessage(text, out, f"{CHANNEL}:{openid}", input_channel=CHANNEL,
                                         message_id=message_id or None, metadata=metadata or None))
        if lease is not None:
            await lease.complete()  # in the tracker now: a retry must not process it again
        await out.flush(openid)
