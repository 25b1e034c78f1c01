"""The action server's client for the backend API (service key from the environment)."""
from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)


class BackendUnavailable(Exception):
    """The backend could not answer; the bot apologises instead of guessing figures."""


class BackendRefused(Exception):
    """The backend refused the request (4xx) with a message meant for the borrower."""

    def __init__(self, status: int, code: str, message_zh: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message_zh = status, code, message_zh


# The shapes a sender's external id may have per channel (the same as channels/guard.py).
SENDER_SHAPES = {
    "wechat": re.compile(r"[A-Za-z0-9_-]{1,64}"),
    "sms": re.compile(r"\+[1-9]\d{6,14}"),
    "web": re.compile(r"anon-[A-Za-z0-9]{6,64}|s-[A-Za-z0-9_-]{16,64}"),
}


def valid_identity(channel: str, external_id: str) -> bool:
    shape = SENDER_SHAPES.get(channel)
    return bool(shape and isinstance(external_id, str) and shape.fullmatch(external_id))


def seg(value: Any) -> str:
    """One URL path segment, escaped: an id like ``../web/7`` cannot reach another resource."""
    return quote(str(value), safe="")


class BackendClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout: float = 8.0) -> None:
        self.base_url = (base_url or os.environ.get("BACKEND_URL", "http://127.0.0.1:8000")).rstrip("/")
        self.api_key = api_key or os.environ.get("BACKEND_API_KEY", "")
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(self, method: str, path: str, **kwargs) -> Any:
        url = f"{self.base_url}/api/v1{path}"
        try:
            async with aiohttp.ClientSession(timeout=self.timeout, headers={"X-API-Key": self.api_key}) as s:
                async with s.request(method, url, **kwargs) as resp:
                    if resp.status == 404 and method == "GET":
                        return None
                    if resp.status == 204:
                        return {}
                    body = await resp.json(content_type=None)
                    if 400 <= resp.status < 500 and resp.status not in (401, 403):
                        err = (body or {}).get("error", {})
                        raise BackendRefused(resp.status, err.get("code", ""), err.get("message_zh", "请求未能完成"))
                    if resp.status >= 400:
                        # Path only up to the resource kind: identities carry phone numbers.
                        log.warning("backend %s /%s -> %s", method, path.strip("/").split("/")[0], resp.status)
                        raise BackendUnavailable(str(resp.status))
                    return body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("backend unreachable: %s", type(exc).__name__)
            raise BackendUnavailable(type(exc).__name__) from exc

    async def identity(self, channel: str, external_id: str) -> dict | None:
        if not valid_identity(channel, external_id):
            return None  # not a sender any channel produces: no identity behind it
        return await self._request("GET", f"/identities/{seg(channel)}/{seg(external_id)}")

    async def verification_status(self, conversation: str) -> dict:
        """The backend's record of this conversation's code check: {"status": "verified",
        "customer_id": ...} | {"status": "pending", "attempts_left": n} | expired | locked | none."""
        return await self._request("GET", "/verification/status", params={"conversation": conversation}) or {}

    async def customer(self, customer_id: int) -> dict | None:
        return await self._request("GET", f"/customers/{seg(customer_id)}")

    async def loans(self, customer_id: int) -> list[dict]:
        return await self._request("GET", f"/customers/{seg(customer_id)}/loans") or []

    async def schedule(self, loan_id: int) -> list[dict]:
        return await self._request("GET", f"/loans/{seg(loan_id)}/schedule") or []

    async def payments(self, loan_id: int) -> list[dict]:
        return await self._request("GET", f"/loans/{seg(loan_id)}/payments") or []

    async def payoff(self, loan_id: int, day: str | None = None) -> dict:
        return await self._request("GET", f"/loans/{seg(loan_id)}/payoff", params={"date": day} if day else None)

    async def start_verification(self, conversation: str, phone: str, id_last4: str) -> dict:
        return await self._request("POST", "/verification/start",
                                   json={"conversation": conversation, "phone": phone, "id_last4": id_last4})

    async def check_verification(self, conversation: str, code: str) -> dict:
        return await self._request("POST", "/verification/check", json={"conversation": conversation, "code": code})

    async def bind(self, channel: str, external_id: str, customer_id: int) -> dict:
        return await self._request("POST", f"/identities/{seg(channel)}/{seg(external_id)}/bind",
                                   json={"customer_id": customer_id})

    async def mark_wrong_person(self, channel: str, external_id: str) -> dict:
        return await self._request("POST", f"/identities/{seg(channel)}/{seg(external_id)}/wrong-person")

    async def unsubscribe(self, customer_id: int) -> None:
        await self._request("POST", f"/customers/{seg(customer_id)}/unsubscribe")

    async def resubscribe(self, customer_id: int) -> None:
        await self._request("POST", f"/customers/{seg(customer_id)}/resubscribe")

    async def record_promise(self, loan_id: int, promised_date: str, amount: str | None, channel: str) -> dict:
        body = {"promised_date": promised_date, "channel": channel}
        if amount:
            body["amount"] = amount
        return await self._request("POST", f"/loans/{seg(loan_id)}/promises", json=body)

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

    # ---- repayment-plan requests, early settlement, complaints (issue 6 workflows) -------------
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

    # ---- proactive outreach (issue 7) -----------------------------------------------------------
    async def loan(self, loan_id: int) -> dict | None:
        return await self._request("GET", f"/loans/{seg(loan_id)}")

    async def outreach_notice(self, notice_id: str) -> dict | None:
        return await self._request("GET", f"/outreach/notices/{seg(notice_id)}")
