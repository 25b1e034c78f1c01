"""The one client of the backend API on the Rasa side: the action server's actions and the channel
connectors in the Rasa process both use it (service key and URL from bot.settings).

* One long-lived aiohttp session per process and event loop, created on first use (a session whose
  loop has closed is closed and replaced) and closed at shutdown (:func:`close_backend`, registered
  by the action server and by each channel's blueprint).
* One error type, :class:`BackendError`: ``refused`` (a 4xx the backend explains to the borrower in
  ``message_zh``) or unavailable (unreachable, timed out, 401/403, 5xx; ``message_zh`` is None).
  Callers catch ``BackendError`` and say ``exc.message_zh or <their apology>``.
* A GET of something that does not exist is None (404), a 204 is ``{}``.
* Log lines name the resource kind and the status only: identities carry phone numbers.
* Injected: code asks :func:`backend` for the client and never constructs one; tests substitute a
  fake with :func:`override_backend`.
* Within one action run (one request to the action server: :func:`action_run`, started by the
  action server's middleware) a GET is sent once: the identity, the loans, a quote asked again by
  the next validation step are answered from that run's memo (a copy each time); any other request
  (a write) empties the memo first. Nothing outlives the run, so nothing is ever staler than the
  action that asked.
"""
from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

import aiohttp

from channels.guard import SENDER_SHAPES

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 8.0  # seconds for one request; connectors that must answer faster ask for less
REFUSED_DEFAULT = "请求未能完成"  # a refusal whose body carries no message for the borrower


class BackendError(Exception):
    """The backend did not do what was asked.

    ``status``: the HTTP status, None when the backend could not be reached. ``refused``: True for a
    4xx (other than 401/403) that carries ``code`` and ``message_zh``, a reason meant for the
    borrower; otherwise the backend is unavailable and ``message_zh`` is None.
    """

    def __init__(self, status: int | None = None, code: str = "", message_zh: str | None = None,
                 reason: str = "") -> None:
        super().__init__(code or reason or str(status))
        self.status, self.code, self.message_zh = status, code, message_zh

    @property
    def refused(self) -> bool:
        return self.message_zh is not None

    @classmethod
    def refusal(cls, status: int, body: Any) -> BackendError:
        err = (body or {}).get("error", {}) if isinstance(body, dict) else {}
        return cls(status, err.get("code", ""), err.get("message_zh") or REFUSED_DEFAULT)


def valid_identity(channel: str, external_id: str) -> bool:
    """Is this a sender id some channel produces (channels/guard.py owns the shapes)?"""
    shape = SENDER_SHAPES.get(channel)
    return bool(shape and isinstance(external_id, str) and shape.fullmatch(external_id))


def seg(value: Any) -> str:
    """One URL path segment, escaped: an id like ``../web/7`` cannot reach another resource."""
    return quote(str(value), safe="")


BACKEND_KEEP_ALIVE_SECONDS = 4.0


class _Sessions:
    """One aiohttp ClientSession per running event loop, shared by every view of a client."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self._by_loop: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    async def get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        for other in [lp for lp in self._by_loop if lp is not loop and lp.is_closed()]:
            await self._close(self._by_loop.pop(other))  # its loop is gone: only the connector is left
        session = self._by_loop.get(loop)
        if session is None or session.closed:
            # Idle connections are dropped after 4 s, before uvicorn (timeout_keep_alive 5 s) closes
            # them: aiohttp's default (15 s) reused connections the backend had closed, and the call
            # failed with ClientOSError (seen as an SMS reply lost in the outreach benchmark).
            session = aiohttp.ClientSession(headers={"X-API-Key": self.api_key},
                                            timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT),
                                            connector=aiohttp.TCPConnector(keepalive_timeout=BACKEND_KEEP_ALIVE_SECONDS))
            self._by_loop[loop] = session
        return session

    async def close(self) -> None:
        """Close the sessions of this loop and of loops that have closed (others stay usable)."""
        loop = asyncio.get_running_loop()
        for other in [lp for lp in self._by_loop if lp is loop or lp.is_closed()]:
            await self._close(self._by_loop.pop(other))

    @staticmethod
    async def _close(session: aiohttp.ClientSession) -> None:
        try:
            await session.close()
        except Exception as exc:  # noqa: BLE001 - shutting down: nothing left to do with it
            log.debug("backend session not closed cleanly: %s", type(exc).__name__)


class BackendClient:
    """The backend API, method per endpoint. ``with_timeout`` gives a view with another request
    timeout over the same session."""

    def __init__(self, base_url: str, api_key: str, timeout: float = DEFAULT_TIMEOUT,
                 sessions: _Sessions | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._sessions = sessions or _Sessions(api_key)

    def with_timeout(self, timeout: float) -> BackendClient:
        return BackendClient(self.base_url, self.api_key, timeout, self._sessions)

    async def close(self) -> None:
        await self._sessions.close()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        memo = _run_memo.get()
        if memo is None:
            return await self._send(method, path, **kwargs)
        if method != "GET":
            memo.clear()  # a write may change what the next GET answers
            return await self._send(method, path, **kwargs)
        key = (self.base_url, path, json.dumps(kwargs, sort_keys=True, default=str))
        pending = memo.get(key)
        if pending is None:
            pending = memo[key] = asyncio.ensure_future(self._send(method, path, **kwargs))
        # shield: one caller cancelled does not cancel the request the others wait for
        return copy.deepcopy(await asyncio.shield(pending))

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/api/v1{path}"
        kind = path.strip("/").split("/")[0]  # never the rest of the path: identities carry phone numbers
        try:
            session = await self._sessions.get()
            async with session.request(method, url, timeout=self.timeout, **kwargs) as resp:
                if resp.status == 404 and method == "GET":
                    return None
                if resp.status == 204:
                    return {}
                body = await resp.json(content_type=None)
                if 400 <= resp.status < 500 and resp.status not in (401, 403):
                    raise BackendError.refusal(resp.status, body)
                if resp.status >= 400:
                    log.warning("backend %s /%s -> %s", method, kind, resp.status)
                    raise BackendError(resp.status)
                return body
        # Python 3.10 (the bot environment): asyncio's TimeoutError, which aiohttp raises, is not the builtin.
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ValueError) as exc:  # noqa: UP041
            log.warning("backend unreachable: %s", type(exc).__name__)
            raise BackendError(reason=type(exc).__name__) from exc

    # ---- identities, verification --------------------------------------------------------------
    async def identity(self, channel: str, external_id: str) -> dict | None:
        if not valid_identity(channel, external_id):
            return None  # not a sender any channel produces: no identity behind it
        return await self._request("GET", f"/identities/{seg(channel)}/{seg(external_id)}")

    async def verification_status(self, conversation: str) -> dict:
        """The backend's record of this conversation's code check: {"status": "verified",
        "customer_id": ...} | {"status": "pending", "attempts_left": n} | expired | locked | none."""
        return await self._request("GET", "/verification/status", params={"conversation": conversation}) or {}

    async def verification_pending(self, conversation: str) -> bool:
        """Does this conversation wait for a one-time code (sent, not yet used, not expired)?"""
        return (await self.verification_status(conversation)).get("status") == "pending"

    async def start_verification(self, conversation: str, phone: str, id_last4: str) -> dict:
        return await self._request("POST", "/verification/start",
                                   json={"conversation": conversation, "phone": phone, "id_last4": id_last4})

    async def check_code(self, conversation: str, code: str) -> dict:
        return await self._request("POST", "/verification/check", json={"conversation": conversation, "code": code})

    async def bind(self, channel: str, external_id: str, customer_id: int) -> dict:
        return await self._request("POST", f"/identities/{seg(channel)}/{seg(external_id)}/bind",
                                   json={"customer_id": customer_id})

    async def mark_wrong_person(self, channel: str, external_id: str) -> dict:
        return await self._request("POST", f"/identities/{seg(channel)}/{seg(external_id)}/wrong-person")

    async def set_status(self, channel: str, external_id: str, status: str) -> dict:
        return await self._request("POST", f"/identities/{seg(channel)}/{seg(external_id)}/status",
                                   json={"status": status})

    # ---- channels: inbound claims, SMS ---------------------------------------------------------
    async def claim(self, channel: str, external_id: str, key: str, owner: str | None = None) -> dict:
        """Claim an inbound message: {"first_time", "state", "identity", "lease_seconds", ...}. Without
        ``owner`` it is done at once (first_time False: a retry). With one, ``state`` "claimed" means
        process it and then :meth:`complete_claim`; "in_progress" another owner holds it; "done" a
        duplicate (backend.services.channels.claim_inbound)."""
        body = {"channel": channel, "external_id": external_id, "key": key}
        if owner:
            body["owner"] = owner
        return await self._request("POST", "/channels/inbound", json=body)

    async def renew_claim(self, channel: str, key: str, owner: str) -> dict:
        """Extend the lease while Rasa works; BackendError 409 (claim_lost) once it is not ours."""
        return await self._request("POST", "/channels/inbound/renew", json={"channel": channel, "key": key, "owner": owner})

    async def complete_claim(self, channel: str, key: str, owner: str) -> dict:
        """Rasa has processed the message: the claim is done."""
        return await self._request("POST", "/channels/inbound/complete",
                                   json={"channel": channel, "key": key, "owner": owner})

    async def release_claim(self, channel: str, key: str, owner: str) -> dict:
        """Give the claim up (not processed): the next retry takes it over at once."""
        return await self._request("POST", "/channels/inbound/release",
                                   json={"channel": channel, "key": key, "owner": owner})

    async def opt_out(self, number: str, opted_out: bool) -> bool:
        """Record STOP (True) or START (False) for an E.164 number; True once stored."""
        await self._request("POST", f"/sms/{seg(number)}/{'opt-out' if opted_out else 'opt-in'}")
        return True

    async def send_sms(self, to: str, body: str, purpose: str = "reply") -> int | None:
        """Number of segments sent, or None if refused (opted out, bad number)."""
        try:
            sent = await self._request("POST", "/sms/send", json={"to": to, "body": body, "purpose": purpose})
        except BackendError as exc:
            if exc.refused:
                return None
            raise
        return sent["segments"]

    # ---- customers, loans ------------------------------------------------------------------------
    async def customer(self, customer_id: int) -> dict | None:
        return await self._request("GET", f"/customers/{seg(customer_id)}")

    async def loans(self, customer_id: int) -> list[dict]:
        return await self._request("GET", f"/customers/{seg(customer_id)}/loans") or []

    async def loan(self, loan_id: int) -> dict | None:
        return await self._request("GET", f"/loans/{seg(loan_id)}")

    async def schedule(self, loan_id: int) -> list[dict]:
        return await self._request("GET", f"/loans/{seg(loan_id)}/schedule") or []

    async def payments(self, loan_id: int) -> list[dict]:
        return await self._request("GET", f"/loans/{seg(loan_id)}/payments") or []

    async def payoff(self, loan_id: int, day: str | None = None) -> dict:
        return await self._request("GET", f"/loans/{seg(loan_id)}/payoff", params={"date": day} if day else None)

    async def unsubscribe(self, customer_id: int) -> None:
        await self._request("POST", f"/customers/{seg(customer_id)}/unsubscribe")

    async def resubscribe(self, customer_id: int) -> None:
        await self._request("POST", f"/customers/{seg(customer_id)}/resubscribe")

    async def record_promise(self, loan_id: int, promised_date: str, amount: str | None, channel: str) -> dict:
        body = {"promised_date": promised_date, "channel": channel}
        if amount:
            body["amount"] = amount
        return await self._request("POST", f"/loans/{seg(loan_id)}/promises", json=body)

    # ---- handoffs, sessions ----------------------------------------------------------------------
    async def open_handoff(self, conversation: str, channel: str, customer_id: int | None, reason: str,
                           summary: str) -> dict:
        return await self._request("POST", "/handoffs", json={
            "conversation": conversation, "channel": channel, "customer_id": customer_id,
            "reason": reason, "summary": summary})

    async def current_handoff(self, conversation: str) -> dict | None:
        return await self._request("GET", f"/handoffs/by-conversation/{seg(conversation)}")

    async def rate_handoff(self, case_id: int, score: int, comment: str | None) -> dict:
        return await self._request("POST", f"/handoffs/{seg(case_id)}/csat", json={"score": score, "comment": comment})

    async def record_session(self, conversation: str, channel: str, customer_id: int | None) -> None:
        await self._request("POST", "/conversations/sessions",
                            json={"conversation": conversation, "channel": channel, "customer_id": customer_id})

    # ---- repayment-plan requests, early settlement, complaints -----------------------------------
    async def plan_quote(self, loan_id: int, plan_type: str, months: int | None) -> dict:
        params = {"plan_type": plan_type, **({"months": str(months)} if months else {})}
        return await self._request("GET", f"/loans/{seg(loan_id)}/plan-quote", params=params)

    async def submit_plan(self, body: dict) -> dict:
        return await self._request("POST", "/plan-requests", json=body)

    async def plan_request(self, reference: str) -> dict | None:
        return await self._request("GET", f"/plan-requests/{seg(reference)}")

    async def customer_plan_requests(self, customer_id: int) -> list[dict]:
        return await self._request("GET", f"/customers/{seg(customer_id)}/plan-requests") or []

    async def withdraw_plan(self, reference: str, customer_id: int) -> dict:
        return await self._request("POST", f"/plan-requests/{seg(reference)}/withdraw", json={"customer_id": customer_id})

    async def record_settlement(self, loan_id: int, body: dict) -> dict:
        return await self._request("POST", f"/loans/{seg(loan_id)}/settlement-intents", json=body)

    async def open_complaint(self, body: dict) -> dict:
        return await self._request("POST", "/complaints", json=body)

    async def complaint(self, reference: str) -> dict | None:
        return await self._request("GET", f"/complaints/{seg(reference)}")

    async def customer_complaints(self, customer_id: int) -> list[dict]:
        return await self._request("GET", f"/customers/{seg(customer_id)}/complaints") or []

    # ---- proactive outreach ----------------------------------------------------------------------
    async def outreach_notice(self, notice_id: str) -> dict | None:
        return await self._request("GET", f"/outreach/notices/{seg(notice_id)}")


# --------------------------------------------------------------------------- one action run

_run_memo: ContextVar[dict | None] = ContextVar("backend_run_memo", default=None)


def action_run() -> None:
    """Start a new memo of GETs for the rest of the current task (the action server's request
    middleware: each request is its own task, so runs never share one)."""
    _run_memo.set({})


@contextmanager
def one_action_run() -> Iterator[None]:
    """A memo of GETs for the block (tests, scripts)."""
    token = _run_memo.set({})
    try:
        yield
    finally:
        _run_memo.reset(token)


# --------------------------------------------------------------------------- the provider

_client: BackendClient | None = None
_override: Any = None


def backend(timeout: float | None = None) -> BackendClient:
    """The process's client (``timeout``: a view of it with that request timeout, in seconds), or
    the fake a test put in with :func:`override_backend`."""
    global _client
    if _override is not None:
        return _override
    if _client is None:
        from bot.settings import get_settings

        settings = get_settings()
        _client = BackendClient(settings.backend_url, settings.backend_api_key)
    return _client if timeout is None else _client.with_timeout(timeout)


@contextmanager
def override_backend(fake: Any) -> Iterator[Any]:
    """Within the block :func:`backend` returns ``fake`` (tests)."""
    global _override
    previous, _override = _override, fake
    try:
        yield fake
    finally:
        _override = previous


async def close_backend(*_: Any) -> None:
    """Close the process client's session (a Sanic ``after_server_stop`` listener: app, loop)."""
    if _client is not None:
        await _client.close()
