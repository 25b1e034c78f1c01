"""The production profile (APP_ENV=production), end to end: the real backend, action server and Rasa
on free ports with generated secrets, probed the way an attacker on the same host would.

Also what `make run-production-check` runs. Each test names the finding it closes:
* Rasa's REST channel (sender id taken from the request) is gone: 404;
* the action server listens on 127.0.0.1 only and answers 401 without Rasa's token (Rasa has it);
* a web chat token signed with the published secret is refused;
* CORS only for CORS_ORIGINS (Rasa), none at all from the backend;
* security headers on the chat and console pages, Secure console cookies;
* no process starts with a published or missing secret (backend, action server, Rasa, stack.py).
"""
from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

import httpx
import jwt
import pytest

from bot.settings import MUST_BE_EMPTY_IN_PRODUCTION, SECRET_NAME, published_values
from scripts.stack import APP_PY, BOT_PY, ROOT, Stack

from .conftest import free_port, running_stack

pytestmark = pytest.mark.e2e

PAGE_ORIGIN = "https://chat.example.test"  # where the chat page would be served
FOREIGN_ORIGIN = "https://attacker.example"
PUBLISHED = published_values()


def random_key() -> str:
    """32 random bytes, urlsafe base64: also a valid Fernet key (PII_ENCRYPTION_KEY)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def generated_secrets() -> dict[str, str]:
    """A fresh, non-published value for every secret in .env.example and in the backend settings."""
    from backend.core.config import Settings

    names = {k for k, v in PUBLISHED.items() if SECRET_NAME.search(k) and v}
    names |= {f.alias for f in Settings.model_fields.values() if f.alias and SECRET_NAME.search(f.alias)}
    out = {name: random_key() for name in names}
    actions_key, scheduler_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    out.update({
        "BACKEND_API_KEYS": f"actions:{actions_key},scheduler:{scheduler_key}",
        "BACKEND_API_KEY": actions_key,
        "SCHEDULER_API_KEY": scheduler_key,
        "WECHAT_AES_KEY": base64.b64encode(os.urandom(32)).decode().rstrip("="),  # 43 characters
        "TWILIO_AUTH_TOKEN": "",  # optional: no inbound SMS is accepted without it
    })
    for name in MUST_BE_EMPTY_IN_PRODUCTION:
        out[name] = ""
    return out


def production_overrides(run_dir: Path) -> dict[str, str]:
    return {
        "APP_ENV": "production",
        "CORS_ORIGINS": PAGE_ORIGIN,
        "WEBCHAT_ALLOWED_ORIGINS": PAGE_ORIGIN,
        "ACTION_HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{run_dir / 'loan.db'}",
        "RASA_TRACKER_URL": f"sqlite:///{run_dir / 'tracker.db'}",
        **generated_secrets(),
    }


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("prodstack")
    yield from running_stack(run_dir, production_overrides(run_dir))


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


# --------------------------------------------------------------------------- Rasa's channels

REST_CHANNELS = ("rest", "rasa.core.channels.rest.RestInput", "rasa.core.channels.RestInput")


def is_rest(key: str) -> bool:
    return key in REST_CHANNELS or key.startswith("channels.rest.")


def test_production_channels_are_the_development_ones_without_rest():
    """credentials.production.yml is credentials.yml minus the REST channel: no drift (no stack)."""
    import yaml

    dev = yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8"))
    production = yaml.safe_load((ROOT / "credentials.production.yml").read_text(encoding="utf-8"))
    assert any(is_rest(k) for k in dev)
    assert not any(is_rest(k) for k in production)
    assert production == {k: v for k, v in dev.items() if not is_rest(k)}


def test_rest_channel_is_off(prod):
    """The finding: {"sender": "web:5", ...} on the REST channel answered as customer 5."""
    r = httpx.post(f"{prod.rasa_url}/webhooks/rest/webhook", json={"sender": "web:5", "message": "我还欠多少钱"},
                   timeout=30)
    assert r.status_code == 404
    assert httpx.get(f"{prod.rasa_url}/webhooks/rest/", timeout=30).status_code == 404
    # The authenticated channels are there.
    assert httpx.get(f"{prod.rasa_url}/webhooks/socketio/", timeout=30).status_code == 200


def test_rasa_http_api_refuses_the_published_token(prod):
    body = {"text": "我还欠多少钱", "sender": "user"}
    for params in ({}, {"token": PUBLISHED["RASA_API_TOKEN"]}):
        r = httpx.post(f"{prod.rasa_url}/conversations/web:5/messages", params=params, json=body, timeout=30)
        assert r.status_code == 401, params


# --------------------------------------------------------------------------- the action server

def listening_addresses(port_no: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) of sockets listening on the port."""
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port_no:
                found.add(address)
    return found


def refused(host: str, port_no: int) -> bool:
    try:
        socket.create_connection((host, port_no), timeout=2).close()
        return False
    except OSError:
        return True


def test_action_server_listens_on_loopback_only(prod):
    for name in ("ACTION_PORT", "RASA_PORT", "BACKEND_PORT"):
        p = int(prod.env[name])
        assert not refused("127.0.0.1", p)
        # Bound to 0.0.0.0 it would answer on 127.0.0.2 too (Linux routes 127/8 to lo).
        assert refused("127.0.0.2", p), f"{name} answers on another address than 127.0.0.1"
        addresses = listening_addresses(p)
        if addresses:  # Linux
            assert addresses == {"0100007F"}, (name, addresses)


def test_action_server_answers_401_without_the_token(prod):
    base = prod.env["ACTION_SERVER_URL"].removesuffix("/webhook")
    call = {"next_action": "action_answer_balance", "sender_id": "web:5", "version": "3.6.2",
            "tracker": {"sender_id": "web:5", "slots": {"customer_id": 5, "verified": True}, "events": [],
                        "latest_message": {}}, "domain": {}}
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200  # readiness only
    for headers in ({}, {"Authorization": f"Bearer {PUBLISHED['ACTION_SERVER_TOKEN']}"},
                    {"Authorization": "Basic Og=="}, {"Authorization": prod.env["ACTION_SERVER_TOKEN"]}):
        r = httpx.post(f"{base}/webhook", json=call, headers=headers, timeout=10)
        assert r.status_code == 401, headers
        assert "5" not in r.text.replace("401", "")
        assert httpx.get(f"{base}/actions", headers=headers, timeout=10).status_code == 401
    ok = httpx.get(f"{base}/actions", headers={"Authorization": f"Bearer {prod.env['ACTION_SERVER_TOKEN']}"},
                   timeout=10)
    assert ok.status_code == 200 and {"name": "action_answer_balance"} in ok.json()


def test_rasa_reaches_the_action_server_with_its_token(prod):
    """A new conversation runs action_session_start, then a custom action: both on the action server."""
    conversation = f"{prod.rasa_url}/conversations/prod-check-{secrets.token_hex(4)}"
    auth = {"token": prod.env["RASA_API_TOKEN"]}
    r = httpx.post(f"{conversation}/tracker/events", params=auth, json={"event": "action", "name": "action_listen"},
                   timeout=60)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{conversation}/execute", params=auth, json={"name": "action_out_of_scope"}, timeout=60)
    assert r.status_code == 200, r.text
    assert any("回答不了" in (m.get("text") or "") for m in r.json()["messages"])


def test_no_secret_on_any_command_line(prod):
    """Other users of the host read every command line (ps): secrets go by environment only."""
    generated = [v for k, v in prod.env.items() if SECRET_NAME.search(k) and len(v) >= 20]
    assert generated
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        assert not any(secret in text for secret in generated), f"a secret on {cmdline}'s command line"


# --------------------------------------------------------------------------- web chat tokens

async def _session(url: str, auth: dict | None) -> str | None:
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
    client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
    try:
        await client.connect(url, auth=auth, transports=["websocket"], socketio_path="/socket.io")
    except socketio.exceptions.ConnectionError:
        return None
    await client.emit("session_request", {"session_id": None})
    try:
        return await asyncio.wait_for(confirmed, 10)
    finally:
        await client.disconnect()


def test_web_chat_token_signed_with_the_published_secret_is_refused(prod):
    sender = f"web:s-{secrets.token_hex(12)}"  # the shape of a signed-in sender (channels/webchat.py)
    now = int(time.time())
    claims = {"sub": sender, "customer_id": 5, "iat": now, "exp": now + 600}
    forged = jwt.encode(claims, PUBLISHED["WEBCHAT_JWT_SECRET"], algorithm="HS256")
    real = jwt.encode(claims, prod.env["WEBCHAT_JWT_SECRET"], algorithm="HS256")
    assert asyncio.run(_session(prod.rasa_url, {"token": forged})) is None
    assert asyncio.run(_session(prod.rasa_url, {"token": real})) == sender


# --------------------------------------------------------------------------- CORS

def test_cors_only_for_the_configured_origins(prod):
    def acao(method: str, url: str, origin: str) -> str | None:
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        return httpx.request(method, url, headers=headers, timeout=30).headers.get("access-control-allow-origin")

    for method, path in (("GET", "/"), ("OPTIONS", "/conversations/web:5/messages"), ("GET", "/version")):
        assert acao(method, prod.rasa_url + path, FOREIGN_ORIGIN) is None, path
    assert acao("GET", prod.rasa_url + "/", PAGE_ORIGIN) == PAGE_ORIGIN
    # socket.io (the web chat) refuses a foreign page outright.
    polling = f"{prod.rasa_url}/socket.io/?EIO=4&transport=polling"
    r = httpx.get(polling, headers={"Origin": FOREIGN_ORIGIN}, timeout=30)
    assert r.status_code == 400 and r.headers.get("access-control-allow-origin") is None
    assert httpx.get(polling, headers={"Origin": PAGE_ORIGIN}, timeout=30).status_code == 200
    # The backend sends no CORS headers at all.
    for method, path in (("GET", "/health"), ("OPTIONS", "/api/v1/customers/5"), ("POST", "/webchat/login/start")):
        assert acao(method, prod.backend_url + path, FOREIGN_ORIGIN) is None, path


# --------------------------------------------------------------------------- pages and cookies

def test_security_headers_on_chat_and_console_pages(prod):
    for path in ("/chat", "/console/login", "/console", "/static/chat.js", "/health"):
        h = httpx.get(prod.backend_url + path, timeout=30).headers
        csp = h.get("content-security-policy", "")
        assert "script-src 'self';" in csp and "style-src 'self';" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert h.get("x-frame-options") == "DENY"
        assert h.get("x-content-type-options") == "nosniff"
        assert h.get("referrer-policy") == "no-referrer"
        assert h.get("strict-transport-security", "").startswith("max-age=")
    page = httpx.get(prod.backend_url + "/chat", timeout=30)
    assert f"ws://127.0.0.1:{prod.env['RASA_PORT']}" in page.headers["content-security-policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), "inline script: the CSP would block it"


def test_console_cookies_are_secure(prod):
    password = secrets.token_urlsafe(18)
    env = {**os.environ, **prod.env, "PYTHONPATH": str(ROOT), "STAFF_PASSWORD": password}
    subprocess.run([APP_PY, "-m", "backend.cli", "create-staff", "prodcheck", "--name", "检查", "--role", "supervisor"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    with httpx.Client(base_url=prod.backend_url, timeout=30, follow_redirects=False) as http:
        page = http.get("/console/login")
        assert all("Secure" in c for c in page.headers.get_list("set-cookie"))
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        # httpx, like a browser, keeps Secure cookies off plain http: send the CSRF cookie by hand.
        r = http.post("/console/login", data={"username": "prodcheck", "password": password, "csrf": csrf},
                      headers={"Cookie": f"console_login_csrf={csrf}"})
    assert r.status_code == 303, r.text
    session = [c for c in r.headers.get_list("set-cookie") if not c.startswith("console_login_csrf=")]
    assert session and all(re.search(r";\s*Secure", c) and "HttpOnly" in c for c in session), session


# --------------------------------------------------------------------------- refusing to start

def start_once(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)


def test_no_process_starts_with_a_published_or_missing_secret(prod):
    base = {**prod.env, "BACKEND_PORT": str(free_port()), "ACTION_PORT": str(free_port()),
            "RASA_PORT": str(free_port())}
    backend = [APP_PY, "-m", "uvicorn", "--factory", "backend.main:create_app", "--host", "127.0.0.1",
               "--port", base["BACKEND_PORT"]]
    actions = [BOT_PY, "-m", "bot.launch", "actions"]
    rasa = [BOT_PY, "-m", "bot.launch", "rasa"]
    cases = [
        (backend, "WEBCHAT_JWT_SECRET", PUBLISHED["WEBCHAT_JWT_SECRET"]),
        (backend, "RASA_API_TOKEN", ""),
        (backend, "BACKEND_API_KEYS", f"actions:{prod.env['BACKEND_API_KEY']},scheduler:dev-scheduler-key"),
        (backend, "OTP_HASH_SECRET", PUBLISHED["OTP_HASH_SECRET"]),
        (actions, "ACTION_SERVER_TOKEN", PUBLISHED["ACTION_SERVER_TOKEN"]),
        (actions, "BACKEND_API_KEY", PUBLISHED["BACKEND_API_KEY"]),
        (actions, "ACTION_HOST", "0.0.0.0"),
        (rasa, "WEBCHAT_JWT_SECRET", PUBLISHED["WEBCHAT_JWT_SECRET"]),
        (rasa, "RASA_API_TOKEN", PUBLISHED["RASA_API_TOKEN"]),
        (rasa, "WECHAT_TOKEN", PUBLISHED["WECHAT_TOKEN"]),
        (rasa, "ACTION_SERVER_TOKEN", ""),
        (rasa, "CORS_ORIGINS", "*"),
        (rasa, "APP_ENV", "prod"),  # a typo is refused, never read as development
        (backend, "APP_ENV", "prod"),
    ]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: start_once(case[0], {**base, case[1]: case[2]}), cases))
    for (argv, name, value), done in zip(cases, results):
        output = done.stdout + done.stderr
        assert done.returncode != 0, (argv[-1], name, output[-2000:])
        assert name in output and ("refusing" in output or "not a profile" in output), (argv[-1], name, output[-2000:])
        for secret in ("WEBCHAT_JWT_SECRET", "RASA_API_TOKEN", "ACTION_SERVER_TOKEN", "BACKEND_API_KEY"):
            assert prod.env[secret] not in output  # the message names settings, never values
    # stack.py (make run) checks every secret before it starts anything.
    for name, value in (("CONSOLE_DEMO_PASSWORD", PUBLISHED["CONSOLE_DEMO_PASSWORD"]),
                        ("NLU_REVIEW_HASH_SECRET", PUBLISHED["NLU_REVIEW_HASH_SECRET"]),
                        ("SCHEDULER_API_KEY", "")):
        stack = Stack.from_env(Path(prod.env["SMS_OUTBOX_PATH"]).parent / "refused", {**base, name: value})
        with pytest.raises(SystemExit, match=name):
            stack.start()
        assert not stack.procs
