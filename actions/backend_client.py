"""The action server's client for the backend API (service key from the environment)."""
from __future__ import annotations

import logging
import os
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


class BackendUnavailable(Exception):
    """The backend could not answer; the bot apologises instead of guessing figures."""


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
                    if resp.status == 404:
                        return None
                    if resp.status >= 400:
                        log.warning("backend %s %s -> %s", method, path.split("?")[0], resp.status)
                        raise BackendUnavailable(f"{resp.status}")
                    return await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("backend unreachable: %s", type(exc).__name__)
            raise BackendUnavailable(type(exc).__name__) from exc

    async def identity(self, channel: str, external_id: str) -> dict | None:
        return await self._request("GET", f"/identities/{channel}/{external_id}")

    async def loans(self, customer_id: int) -> list[dict]:
        return await self._request("GET", f"/customers/{customer_id}/loans") or []
