"""What every connector asks of the backend: claim an inbound message exactly once, look up or
change a channel identity, send an SMS through the backend's provider."""
from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)


def seg(value: Any) -> str:
    """One URL path segment: ``sms:../web/7`` must not walk to another resource."""
    return quote(str(value), safe="")


class ChannelBackend:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout: float = 8.0) -> None:
        self.base_url = (base_url or os.environ.get("BACKEND_URL", "http://127.0.0.1:8000")).rstrip("/")
        self.api_key = api_key or os.environ.get("BACKEND_API_KEY", "")
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _call(self, method: str, path: str, **kwargs) -> tuple[int, Any]:
        async with aiohttp.ClientSession(timeout=self.timeout, headers={"X-API-Key": self.api_key}) as s:
            async with s.request(method, f"{self.base_url}/api/v1{path}", **kwargs) as resp:
                body = await resp.json(content_type=None) if resp.status != 204 else None
                if resp.status >= 500:
                    log.warning("backend %s /%s -> %s", method, path.strip("/").split("/")[0], resp.status)
                return resp.status, body

    async def claim(self, channel: str, external_id: str, key: str) -> dict:
        """Returns {"first_time": bool, "identity": {...}}; first_time False means a retry."""
        status, body = await self._call("POST", "/channels/inbound",
                                        json={"channel": channel, "external_id": external_id, "key": key})
        if status != 200:
            raise RuntimeError(f"claim failed with {status}")
        return body

    async def identity(self, channel: str, external_id: str) -> dict | None:
        status, body = await self._call("GET", f"/identities/{seg(channel)}/{seg(external_id)}")
        return body if status == 200 else None

    async def set_status(self, channel: str, external_id: str, status: str) -> None:
        await self._call("POST", f"/identities/{seg(channel)}/{seg(external_id)}/status", json={"status": status})

    async def bind(self, channel: str, external_id: str, customer_id: int) -> bool:
        status, _ = await self._call("POST", f"/identities/{seg(channel)}/{seg(external_id)}/bind",
                                     json={"customer_id": customer_id})
        return status == 200

    async def opt_out(self, number: str, opted_out: bool) -> bool:
        """Record STOP (True) or START (False) for an E.164 number; True if the backend stored it."""
        status, _ = await self._call("POST", f"/sms/{seg(number)}/{'opt-out' if opted_out else 'opt-in'}")
        return status == 200

    async def verification_pending(self, conversation: str) -> bool:
        """Does this conversation wait for a one-time code (sent, not yet used, not expired)?"""
        status, body = await self._call("GET", "/verification/status", params={"conversation": conversation})
        return status == 200 and (body or {}).get("status") == "pending"

    async def check_code(self, conversation: str, code: str) -> dict:
        status, body = await self._call("POST", "/verification/check", json={"conversation": conversation, "code": code})
        if status != 200:
            raise RuntimeError(f"code check failed with {status}")
        return body

    async def send_sms(self, to: str, body: str, purpose: str = "reply") -> int | None:
        """Number of segments sent, or None if refused (opted out, bad number)."""
        status, resp = await self._call("POST", "/sms/send", json={"to": to, "body": body, "purpose": purpose})
        return resp["segments"] if status == 202 else None
