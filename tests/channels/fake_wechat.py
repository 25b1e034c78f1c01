"""A fake WeChat API on 127.0.0.1 for the channel tests: answers the token, customer-service
and template endpoints like the real API and records every request it receives."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class FakeWeChat:
    def __init__(self, token_ttl: int = 7200) -> None:
        self.calls: list[Call] = []
        self.token_ttl = token_ttl
        self.errors: dict[str, int] = {}  # openid -> errcode for custom/send (e.g. 45015)
        self._tokens = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/cgi-bin/"

    def start(self) -> "FakeWeChat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what the tests read -------------------------------------------------------------

    def requests(self, path: str | None = None, touser: str | None = None) -> list[Call]:
        with self._lock:
            calls = list(self.calls)
        return [c for c in calls if (path is None or c.path.endswith(path))
                and (touser is None or (isinstance(c.body, dict) and c.body.get("touser") == touser))]

    def texts_to(self, openid: str) -> list[str]:
        return [c.body["text"]["content"] for c in self.requests("message/custom/send", openid)]

    def wait_for(self, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"the fake WeChat API did not see that within {timeout:.0f}s; it saw {self.calls!r}")

    # --- the server ----------------------------------------------------------------------

    def _answer(self, call: Call) -> dict[str, Any]:
        if call.path == "/cgi-bin/token":
            if call.query.get("grant_type") != "client_credential" or not call.query.get("appid"):
                return {"errcode": 40002, "errmsg": "invalid grant_type"}
            with self._lock:
                self._tokens += 1
                n = self._tokens
            return {"access_token": f"FAKE_TOKEN_{n}", "expires_in": self.token_ttl}
        if not call.query.get("access_token", "").startswith("FAKE_TOKEN_"):
            return {"errcode": 40001, "errmsg": "invalid credential"}
        if call.path == "/cgi-bin/message/custom/send":
            err = self.errors.get((call.body or {}).get("touser", ""))
            if err:
                return {"errcode": err, "errmsg": "refused by the fake"}
            return {"errcode": 0, "errmsg": "ok"}
        if call.path == "/cgi-bin/message/template/send":
            return {"errcode": 0, "errmsg": "ok", "msgid": 200228332}
        return {"errcode": 40066, "errmsg": "invalid url"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw.decode("utf-8")) if raw else None
                except ValueError:
                    body = raw
                call = Call(self.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}, body)
                with fake._lock:
                    fake.calls.append(call)
                payload = json.dumps(fake._answer(call), ensure_ascii=False).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
