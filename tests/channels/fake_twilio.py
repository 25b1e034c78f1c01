"""A fake Twilio REST API on 127.0.0.1 for tests: the backend's real twilio client is pointed at it
with TWILIO_API_BASE. It accepts POST /2010-04-01/Accounts/{sid}/Messages.json the way Twilio does
(form-encoded To, From, Body; HTTP basic auth with the account SID and auth token), answers 201 with
a realistic message resource (sid SM..., status "queued") and records every request.

    with FakeTwilio(account_sid, auth_token) as fake:
        ...  # TWILIO_API_BASE=fake.url
        fake.wait_for(lambda msgs: ..., timeout=30)
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs

MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-zA-Z]+)/Messages\.json$")


@dataclass
class Request:
    method: str
    path: str
    account_sid: str | None
    authorized: bool
    form: dict[str, str]
    status: int
    at: float = field(default_factory=time.monotonic)

    @property
    def to(self) -> str | None:
        return self.form.get("To")

    @property
    def body(self) -> str | None:
        return self.form.get("Body")


class FakeTwilio:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-twilio", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeTwilio":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # What the tests read -------------------------------------------------------------------

    def messages(self, to: str | None = None) -> list[Request]:
        """Accepted message creations (201), optionally only those to one number, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.status == 201 and (to is None or r.to == to)]

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def wait_for(self, predicate: Callable[[list[Request]], bool], timeout: float = 30.0) -> list[Request]:
        """Wait until predicate(accepted messages) is true; returns them (fails the test on timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                accepted = [r for r in self.requests if r.status == 201]
                if predicate(accepted):
                    return accepted
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake Twilio: condition not met within {timeout:.0f}s "
                                         f"({len(accepted)} messages received)")
                self._changed.wait(left)

    # The server ----------------------------------------------------------------------------

    def _record(self, request: Request) -> None:
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep numbers and texts out of the test output
                pass

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Twilio-Request-Id", "RQ" + uuid.uuid4().hex)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self, account_sid: str) -> bool:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return False
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return False
                return user == account_sid == fake.account_sid and password == fake.auth_token

            def do_GET(self) -> None:
                fake._record(Request("GET", self.path, None, False, {}, 404))
                self._reply(404, {"code": 20404, "message": "The requested resource was not found",
                                  "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                m = MESSAGES.match(self.path.split("?")[0])
                if not m:
                    fake._record(Request("POST", self.path, None, False, form, 404))
                    return self._reply(404, {"code": 20404, "message": "The requested resource was not found",
                                             "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})
                sid = m.group(1)
                authorized = self._authorized(sid)
                if not authorized:
                    fake._record(Request("POST", self.path, sid, False, form, 401))
                    return self._reply(401, {"code": 20003, "message": "Authenticate",
                                             "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
                if not form.get("To") or not (form.get("Body") or form.get("MediaUrl")):
                    fake._record(Request("POST", self.path, sid, True, form, 400))
                    return self._reply(400, {"code": 21602, "message": "Message body is required.",
                                             "more_info": "https://www.twilio.com/docs/errors/21602", "status": 400})
                fake._record(Request("POST", self.path, sid, True, form, 201))
                now = format_datetime(datetime.now(timezone.utc), usegmt=True).replace("GMT", "+0000")
                msg_sid = "SM" + uuid.uuid4().hex
                body = form["Body"]
                ucs2 = any(ord(c) > 0x7F for c in body)
                self._reply(201, {
                    "account_sid": sid, "api_version": "2010-04-01", "body": body,
                    "date_created": now, "date_sent": None, "date_updated": now,
                    "direction": "outbound-api", "error_code": None, "error_message": None,
                    "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
                    "num_media": "0", "num_segments": str(max(1, -(-len(body) // (70 if ucs2 else 160)))),
                    "price": None, "price_unit": "USD", "sid": msg_sid, "status": "queued",
                    "subresource_uris": {"media": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}/Media.json"},
                    "to": form["To"], "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}.json",
                })

        return Handler
