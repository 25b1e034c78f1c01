"""What every connector asks of the backend: claim an inbound message exactly once, look up or
change a channel identity, send an SMS through the backend's provider."""
from __future__ import annotations

import logging
import os
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


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
        status, body = await self._call("GET", f"/identities/{channel}/{external_id}")
        return body if status == 200 else None

    async def set_status(self, channel: str, external_id: str, status: str) -> None:
        await self._call("POST", f"/identities/{channel}/{external_id}/status", json={"status": status})

    async def bind(self, channel: str, external_id: str, customer_id: int) -> bool:
        status, _ = await self._call("POST", f"/identities/{channel}/{external_id}/bind",
                                     json={"customer_id": customer_id})
        return status == 200

    async def opt_out(self, number: str, opted_out: bool) -> bool:
        """Record STOP (True) or START (False) for an E.164 number; True if the backend stored it."""
        status, _ = await self._call("POST", f"/sms/{number}/{'opt-out' if opted_out else 'opt-in'}")
        return status == 200

    async def send_sms(self, to: str, body: str, purpose: str = "reply") -> int | None:
        """Number of segments sent, or None if refused (opted out, bad number)."""
        status, resp = await self._call("POST", "/sms/send", json={"to": to, "body": body, "purpose": purpose})
        return resp["segments"] if status == 202 else None
