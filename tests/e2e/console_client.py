"""A staff member in the console, driven over HTTP like the console page's script does."""
from __future__ import annotations

import re
import time

import httpx


class ConsoleUser:
    def __init__(self, backend_url: str, username: str, password: str) -> None:
        self.http = httpx.Client(base_url=backend_url, timeout=30, follow_redirects=False)
        page = self.http.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = self.http.post("/console/login", data={"username": username, "password": password, "csrf": csrf})
        assert r.status_code == 303, r.text
        self.csrf = re.search(r'data-csrf="([^"]+)"', self.http.get("/console").text).group(1)

    def get(self, path: str) -> dict:
        r = self.http.get(f"/console/api{path}")
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path: str, json=None) -> dict:
        r = self.http.post(f"/console/api{path}", json=json, headers={"X-CSRF-Token": self.csrf})
        assert r.status_code in (200, 201), r.text
        return r.json()

    def wait_for_borrower_text(self, case_id: int, text: str, within: float = 15.0) -> float:
        """Seconds until the borrower's message shows in the transcript (fails after `within`)."""
        started = time.monotonic()
        while True:
            turns = self.get(f"/cases/{case_id}/transcript")["transcript"]
            if any(t["who"] == "borrower" and t["text"] == text for t in turns):
                return time.monotonic() - started
            assert time.monotonic() - started < within, f"{text!r} not in the transcript after {within}s: {turns}"
            time.sleep(0.1)
