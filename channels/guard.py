"""What every borrower channel checks before a message reaches Rasa (REST, web chat, WeChat, SMS).

* Sender ids have one shape per channel: ``wechat:<openid>``, ``sms:+<E.164>``, ``web:<opaque id>``
  (``web:anon-<hex>`` for a visitor, ``web:s-<token>`` for a signed-in session; never a customer
  number). Anything else is refused: a sender id ends up in backend URLs and tracker keys.
* Text only: empty, whitespace-only or non-text messages get 「请输入文字消息」; more than
  ``abuse.max_message_chars`` (1,000) characters get a polite note and are not processed.
* A per-sender rate limit (``abuse.messages_per_minute``), in memory, or in Redis when one is
  configured (REDIS_URL, or the Rasa lock store of endpoints.scale.yml) so replicas share it.
* No intent injection: Rasa parses 「/intent{...}」 itself, before NLU. Only the payloads of the bot's
  own buttons are let through (``BUTTON_INTENTS``, with at most a loan's last four); anything else
  that starts with 「/」 loses the slash and is understood as the words it is.
* One-time codes are never stored readable: while the conversation waits for a code, a message
  carrying six digits is checked against the backend here and reaches Rasa as 「******」
  (:func:`seal_otp`); the identity form asks the backend for the outcome.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.rules import rules_for
from bot.settings import get_settings
from texts import text, words

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]

ONLY_TEXT = text("channel.only_text")
TOO_FAST = text("channel.too_fast")
BAD_SENDER = text("channel.bad_sender")
OTP_MASK = "******"

SENDER_SHAPES = {
    "wechat": re.compile(r"[A-Za-z0-9_-]{1,64}"),
    "sms": re.compile(r"\+[1-9]\d{6,14}"),
    # anon-<hex>: a web chat visitor; s-<token>: a signed-in web session (backend.services.webchat).
    "web": re.compile(r"anon-[A-Za-z0-9]{6,64}|s-[A-Za-z0-9_-]{16,64}"),
}
# A REST sender without a channel prefix (tests, the demo): no identity is ever looked up for it.
PLAIN_SENDER = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Intents of the bot's own buttons (actions/workflows.py HUMAN_BUTTONS, actions/service.py
# SUGGESTIONS, actions/account.py loan choice, the WeChat bind offer). EXTERNAL_* are never here: only
# the backend triggers them, through Rasa's authenticated HTTP API.
BUTTON_INTENTS = frozenset({
    "request_human", "deny", "provide_identity", "nlu_fallback",
    "query_balance", "query_repayment_schedule", "query_payment_history", "ask_repayment_method",
    "ask_interest_fees", "request_repayment_plan", "query_loan_status", "request_early_repayment",
    "complaint", "report_payment_made",
})
BUTTON_ENTITIES = {"loan_ref": re.compile(r"\d{4}")}
COMMAND = re.compile(r"^\s*/(?P<intent>[A-Za-z_][A-Za-z0-9_]*)(?P<entities>\{.*\})?\s*$", re.S)
SIX_DIGITS = re.compile(r"(?<![\d０-９])[0-9０-９]{6}(?![\d０-９])")
MONEY_AFTER = re.compile(r"\s*(%s)" % "|".join(map(re.escape, words("vocabulary.money_units"))))


# ---- configuration ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AbuseRules:
    messages_per_minute: int
    max_message_chars: int
    too_long_reply: str


def rules() -> AbuseRules:
    """The ``abuse`` limits the backend serves (bot/rules.py, from config/business.yml)."""
    served = rules_for("abuse")
    limit = int(served["max_message_chars"])
    return AbuseRules(messages_per_minute=int(served["messages_per_minute"]), max_message_chars=limit,
                      too_long_reply=text("channel.too_long", limit=limit))


# ---- sender ids and text ------------------------------------------------------------------------

def valid_sender(sender_id: Any, allow_plain: bool = False) -> bool:
    """``<channel>:<external id>`` in its channel's shape (or, over REST, a plain test id)."""
    if not isinstance(sender_id, str):
        return False
    channel, sep, external = sender_id.partition(":")
    if not sep:
        return allow_plain and bool(PLAIN_SENDER.fullmatch(sender_id))
    shape = SENDER_SHAPES.get(channel)
    return bool(shape and shape.fullmatch(external))


def refusal(text: Any) -> str | None:
    """The reply for a message that must not be processed, or None when it may go on."""
    if not isinstance(text, str) or not text.strip():
        return ONLY_TEXT
    if len(text) > rules().max_message_chars:
        return rules().too_long_reply
    return None


def neutralise_command(text: str) -> str:
    """A button payload of ours stays as it is; any other 「/...」 becomes plain words."""
    m = COMMAND.match(text)
    if m and m.group("intent") in BUTTON_INTENTS and _button_entities_ok(m.group("entities")):
        return text.strip()
    if not text.lstrip().startswith("/"):
        return text
    return text.lstrip().lstrip("/").strip() or ONLY_TEXT


def _button_entities_ok(raw: str | None) -> bool:
    if not raw:
        return True
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    return isinstance(data, dict) and all(
        k in BUTTON_ENTITIES and isinstance(v, str) and BUTTON_ENTITIES[k].fullmatch(v) for k, v in data.items())


def otp_candidate(text: str) -> str | None:
    """The six digits of a message that may be a one-time code (not an amount: 「150000元」)."""
    for m in SIX_DIGITS.finditer(text):
        if not MONEY_AFTER.match(text[m.end():]):
            return m.group(0).translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    return None


async def seal_otp(backend: Any, sender_id: str, text: str) -> tuple[str, dict]:
    """While the conversation waits for a code, check six digits with the backend here and pass
    Rasa only 「******」: the code never enters the tracker, the NLU inbox or the logs.
    Returns (text for Rasa, metadata); unchanged text when there is no code pending."""
    code = otp_candidate(text)
    if code is None:
        return text, {}
    try:
        pending = await backend.verification_pending(sender_id)
        if not pending:
            return text, {}
        await backend.check_code(sender_id, code)
    except Exception as exc:  # noqa: BLE001 - the form asks the backend again and says it is busy
        log.warning("code check from the channel failed: %s", type(exc).__name__)
    return SIX_DIGITS.sub(OTP_MASK, text), {"otp_checked": True}


# ---- rate limit -------------------------------------------------------------------------------

class RateLimiter:
    """At most ``limit`` messages per sender in a sliding ``window`` seconds."""

    def __init__(self, limit: int, window: float = 60.0, redis: Any = None, prefix: str = "abuse:rate") -> None:
        self.limit, self.window, self.redis, self.prefix = limit, window, redis, prefix
        self._hits: dict[str, deque] = {}
        self._lock = threading.Lock()

    def allow(self, sender_id: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if self.redis is not None:
            try:
                return self._allow_redis(sender_id, now)
            except Exception as exc:  # noqa: BLE001 - fall back to this process's count
                log.warning("rate limit store unavailable: %s", type(exc).__name__)
        with self._lock:
            hits = self._hits.setdefault(sender_id, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            if len(self._hits) > 100_000:  # forget idle senders
                for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                    del self._hits[key]
            return True

    def _allow_redis(self, sender_id: str, now: float) -> bool:
        key = f"{self.prefix}:{sender_id}"
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(key, 0, now - self.window)
        pipe.zcard(key)
        _, count = pipe.execute()
        if count >= self.limit:
            return False
        pipe = self.redis.pipeline()
        pipe.zadd(key, {f"{now:.6f}:{os.urandom(4).hex()}": now})
        pipe.expire(key, int(self.window) + 1)
        pipe.execute()
        return True


def redis_url() -> str:
    """REDIS_URL, else the Rasa lock store's Redis when the endpoints in use configure one."""
    settings = get_settings()
    if settings.redis_url:
        return settings.redis_url
    endpoints = settings.rasa_endpoints
    try:
        text = (ROOT / endpoints).read_text(encoding="utf-8") if endpoints else ""
    except OSError:
        text = ""
    if re.search(r"lock_store:\s*\n\s*type:\s*redis", text) and settings.rasa_lock_store_url:
        return settings.rasa_lock_store_url
    return ""


_limiter: RateLimiter | None = None


def limiter() -> RateLimiter:
    """The process's limiter (shared by every channel, so one sender cannot use two)."""
    global _limiter
    if _limiter is None:
        redis = None
        url = redis_url()
        if url:
            try:
                import redis as redis_lib

                redis = redis_lib.Redis.from_url(url, socket_timeout=0.5)
            except Exception as exc:  # noqa: BLE001
                log.warning("rate limit: Redis not usable (%s), counting in memory", type(exc).__name__)
        _limiter = RateLimiter(rules().messages_per_minute, 60.0, redis)
    return _limiter


@dataclass(frozen=True)
class Verdict:
    """``reply``: answer this and stop; else pass ``text`` (and ``metadata``) to Rasa."""
    text: str
    reply: str | None = None
    metadata: dict | None = None


async def screen(sender_id: str, text: Any, backend: Any = None, allow_plain: bool = False) -> Verdict:
    """Everything above, in order: sender, text, rate, command, code."""
    if not valid_sender(sender_id, allow_plain):
        return Verdict("", BAD_SENDER)
    if not limiter().allow(sender_id):
        return Verdict("", TOO_FAST)
    if (why := refusal(text)) is not None:
        return Verdict("", why)
    text = neutralise_command(text)
    metadata: dict = {}
    if backend is not None:
        text, metadata = await seal_otp(backend, sender_id, text)
    return Verdict(text, None, metadata)
