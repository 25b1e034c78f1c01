"""Rasa event broker that feeds the staff console's understanding inbox (理解收件箱).

Rasa publishes every new tracker event to the configured event broker (endpoints.yml,
``event_broker: type: bot.review_broker.ReviewBroker``). Of those, a borrower message (``user``
event) is sent to the backend (``POST /api/v1/nlu-review/items``, the action server's BACKEND_URL and
BACKEND_API_KEY) when the NLU fell back (``nlu_fallback``) or its top intent scored below
``nlu_review.review_below`` (the rule the backend enforces too, served by it: bot/rules.py). Button payloads
and intent injections (text starting with '/'), EXTERNAL_ triggers, empty texts and texts longer
than ``nlu_review.max_text_chars`` are not. The backend masks the text before storing it.

publish() never blocks and never raises: it only filters (a few dictionary look-ups) and puts the
item on a bounded queue; one background thread posts them with a short timeout. A full queue drops
the item with a warning; a backend that is down or refuses loses the item with a warning. The
message text is never logged. Standard library only (it runs inside the Rasa server).
"""
from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from asyncio import AbstractEventLoop
from typing import Any, Optional

from rasa.core.brokers.broker import EventBroker

from bot import contract
from bot.rules import rules_for
from bot.settings import load_env

log = logging.getLogger(__name__)

FALLBACK_INTENT = "nlu_fallback"
CHANNELS = contract.values("channel")  # sender ids are "<channel>:<external id>"
PATH = "/api/v1/nlu-review/items"
_STOP = object()


def review_rules() -> dict:
    """``nlu_review`` of the business rules, as the backend serves them (bot/rules.py)."""
    served = rules_for("nlu_review")
    return {"review_below": float(served["review_below"]), "max_text_chars": int(served["max_text_chars"])}


def _confidence(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return round(min(max(float(value), 0.0), 1.0), 4)


def review_item(event: Any, review_below: float, max_text_chars: int) -> Optional[dict]:
    """The backend's review item for a published event, or None when it is not one to review."""
    if not isinstance(event, dict) or event.get("event") != "user":
        return None
    text, sender = event.get("text"), event.get("sender_id")
    if not isinstance(text, str) or not text.strip() or text.startswith("/") or len(text) > max_text_chars:
        return None
    if not isinstance(sender, str) or not sender:
        return None
    timestamp = event.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or not math.isfinite(timestamp):
        return None
    parse = event.get("parse_data") if isinstance(event.get("parse_data"), dict) else {}
    top = parse.get("intent") if isinstance(parse.get("intent"), dict) else {}
    name = top.get("name")
    if not isinstance(name, str) or name.startswith("EXTERNAL_") or text.startswith("EXTERNAL: "):
        return None
    ranking = []
    for r in parse.get("intent_ranking") or []:
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            continue
        if r["name"] == FALLBACK_INTENT or r["name"].startswith("EXTERNAL_"):
            continue
        if r["name"] in {x["intent"] for x in ranking} or _confidence(r.get("confidence")) is None:
            continue
        ranking.append({"intent": r["name"], "confidence": _confidence(r.get("confidence"))})
    if not ranking and name != FALLBACK_INTENT and _confidence(top.get("confidence")) is not None:
        ranking = [{"intent": name, "confidence": _confidence(top.get("confidence"))}]
    if not ranking:
        return None
    if name == FALLBACK_INTENT:
        source = "fallback"
    elif name == ranking[0]["intent"] and ranking[0]["confidence"] < review_below:
        source = "low_confidence"
    else:
        return None
    prefix = sender.split(":", 1)[0]
    return {
        "conversation": sender, "channel": prefix if prefix in CHANNELS and ":" in sender else "other",
        "text": text, "timestamp": float(timestamp), "source": source,
        "predicted_intent": ranking[0]["intent"], "confidence": ranking[0]["confidence"], "ranking": ranking[:3],
    }


class ReviewBroker(EventBroker):
    """See the module docstring. Options in endpoints.yml (all optional): ``url`` (the backend; default
    BACKEND_URL), ``api_key`` (default BACKEND_API_KEY), ``queue_size`` (1000), ``timeout`` (seconds, 3)."""

    def __init__(self, url: str, api_key: str, review_below: float, max_text_chars: int,
                 queue_size: int = 1000, timeout: float = 3.0) -> None:
        self.endpoint = url.rstrip("/") + PATH
        self.api_key = api_key
        self.review_below = review_below
        self.max_text_chars = max_text_chars
        self.timeout = timeout
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()
        self._dropped = 0
        self._dropped_warned_at = 0.0
        self._closed = False
        # The backend is on the same host or network: never through an HTTP proxy from the environment
        # (the action server's aiohttp client ignores proxy variables too).
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.sent = 0  # items the backend accepted (for tests and debugging)

    @classmethod
    async def from_endpoint_config(cls, broker_config: Any, event_loop: Optional[AbstractEventLoop] = None
                                   ) -> Optional["ReviewBroker"]:
        """Never raises: a broken configuration logs an error and Rasa runs without the inbox."""
        try:
            options = dict(getattr(broker_config, "kwargs", None) or {})
            env = load_env()
            rules = review_rules()
            return cls(url=getattr(broker_config, "url", None) or options.get("url") or env["BACKEND_URL"],
                       api_key=options.get("api_key") or env.get("BACKEND_API_KEY", ""),
                       review_below=rules["review_below"], max_text_chars=rules["max_text_chars"],
                       queue_size=int(options.get("queue_size", 1000)), timeout=float(options.get("timeout", 3.0)))
        except Exception as exc:  # noqa: BLE001 - a broker must never stop Rasa from starting
            log.error("understanding inbox disabled: bad event broker configuration (%s)", type(exc).__name__)
            return None

    # ------------------------------------------------------------------ Rasa's interface

    def publish(self, event: dict) -> None:
        try:
            item = review_item(event, self.review_below, self.max_text_chars)
            if item is None or self._closed:
                return
            self._ensure_worker()
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self._dropped += 1
                now = time.monotonic()
                if now - self._dropped_warned_at > 10:
                    self._dropped_warned_at = now
                    log.warning("understanding inbox: queue full, %d message(s) dropped so far", self._dropped)
        except Exception as exc:  # noqa: BLE001 - never break the conversation
            log.warning("understanding inbox: event not handled (%s)", type(exc).__name__)

    def is_ready(self) -> bool:
        return True

    async def close(self) -> None:
        """Send what is queued (for at most a few seconds), then stop the worker."""
        self._closed = True
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        import asyncio

        def stop() -> None:
            try:
                self._queue.put(_STOP, timeout=1)
            except queue.Full:
                pass
            thread.join(self.timeout + 2)

        await asyncio.get_running_loop().run_in_executor(None, stop)

    # ------------------------------------------------------------------ the worker

    def _ensure_worker(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()  # a forked worker process starts its own thread
                self._thread = threading.Thread(target=self._run, name="review-broker", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._send(item)
            except Exception as exc:  # noqa: BLE001 - the worker must survive anything
                log.warning("understanding inbox: message not recorded (%s)", type(exc).__name__)

    def _send(self, item: dict) -> None:
        request = urllib.request.Request(
            self.endpoint, data=json.dumps(item, ensure_ascii=False).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json", "X-API-Key": self.api_key})
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                resp.read()
            self.sent += 1
        except urllib.error.HTTPError as exc:
            code = ""
            try:
                code = (json.loads(exc.read() or b"{}").get("error") or {}).get("code", "")
            except Exception:  # noqa: BLE001
                pass
            log.warning("understanding inbox: backend refused the message (%s %s)", exc.code, code)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            log.warning("understanding inbox: backend unreachable (%s)", type(exc).__name__)
