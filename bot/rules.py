"""The business rules on the bot side: the one place the action server, the channel connectors and
the event broker in the Rasa process get limits, windows and the numbers they tell borrowers.

config/business.yml has one reader, the backend, which validates every key of it; the bot side asks
it (``GET /api/v1/bot/rules``, BACKEND_URL and BACKEND_API_KEY from bot.settings) and never opens
the file. The answer is a plain mapping in the file's section names, e.g.
``rules()["verification"]["lock_minutes"]`` (backend/api/routes/bot_rules.py lists what is served).

Fetched once per process and kept: the backend reads the file only at its own start, so a changed
rule needs a restart of the backend and then of the bot side, as it always did.

Why a blocking fetch: the readers are synchronous (``actions.knowledge.kb()`` words texts inside
actions, ``channels.guard.refusal()`` runs per message) and their callers are not all coroutines.
bot/launch.py therefore loads the rules at process start, before the server takes requests, so no
conversation ever waits on it; the backend starts at the same time (scripts/stack.py starts the
servers together), hence the retries for up to ``STARTUP_WAIT`` seconds. A process started another
way (``rasa run`` by hand) fetches on first use, with the same retries.

Standard library only: it runs in the Rasa process, the action server and (tests, stack.py) the app
environment.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from bot.settings import get_settings

log = logging.getLogger(__name__)

PATH = "/api/v1/bot/rules"
# Every section the bot side reads (the backend's BotRulesOut); an answer without one is refused.
SECTIONS = ("penalty", "verification", "payment_check", "conversation_forms", "complaints", "repayment_plans",
            "handoff", "outreach", "nlu_review", "abuse")
STARTUP_WAIT = 90.0  # seconds to wait for a backend that is still starting
RETRY_SECONDS = 1.0
TIMEOUT = 5.0  # one request

_rules: Optional[dict] = None
_lock = threading.Lock()


class RulesUnavailable(RuntimeError):
    """The backend did not serve the rules (down past the wait, a refused key, a broken answer)."""


def fetch(url: Optional[str] = None, api_key: Optional[str] = None, timeout: float = TIMEOUT) -> dict:
    """One request for the rules (no retry, no cache). Raises RulesUnavailable, or OSError while the
    backend cannot be reached or answers 5xx (worth retrying)."""
    settings = get_settings() if url is None or api_key is None else None
    base = url if url is not None else settings.backend_url
    key = api_key if api_key is not None else settings.backend_api_key
    request = urllib.request.Request(base.rstrip("/") + PATH, headers={"X-API-Key": key, "Accept": "application/json"})
    # The backend is on this host or network: never through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as resp:
            body = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 404:  # starting, or behind a proxy that is
            raise OSError(f"backend answered {exc.code}") from None
        raise RulesUnavailable(f"the backend refused the rules request ({exc.code}): check BACKEND_API_KEY") from None
    except ValueError as exc:
        raise RulesUnavailable(f"the backend's rules are not JSON ({exc})") from None
    missing = [s for s in SECTIONS if not isinstance(body, dict) or not isinstance(body.get(s), dict)]
    if missing:
        raise RulesUnavailable(f"the backend's rules lack {', '.join(missing)}")
    return body


def load(wait: float = STARTUP_WAIT) -> dict:
    """The rules, fetched once per process (retried every RETRY_SECONDS for up to ``wait`` seconds
    while the backend is unreachable). Raises RulesUnavailable when they cannot be had."""
    global _rules
    if _rules is not None:
        return _rules
    with _lock:
        if _rules is not None:
            return _rules
        deadline = time.monotonic() + wait
        while True:
            try:
                _rules = fetch()
                log.info("business rules read from the backend")
                return _rules
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise RulesUnavailable(f"backend unreachable for {wait:.0f}s, no business rules "
                                           f"({type(exc).__name__}: {exc})") from None
                time.sleep(RETRY_SECONDS)


def rules() -> dict:
    """The served rules: ``rules()["abuse"]["max_message_chars"]``."""
    return _rules if _rules is not None else load()


def rules_for(name: str) -> dict[str, Any]:
    """One section of the served rules, e.g. ``rules_for("payment_check")["max_days_back"]``."""
    return rules()[name]


@contextmanager
def override(data: dict) -> Iterator[dict]:
    """Tests: work by ``data`` (tests/data/bot_rules.json, what the backend serves for the shipped
    file) instead of asking a backend."""
    global _rules
    previous, _rules = _rules, data
    try:
        yield data
    finally:
        _rules = previous
