"""The real services for end-to-end tests: backend, action server and Rasa on free ports,
with their own SQLite databases in a temporary folder (never the developer's var/)."""
from __future__ import annotations

import json
import socket
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

from scripts.stack import APP_PY, BOT_PY, Stack  # noqa: E402


def reachable(port: int) -> bool:
    """Is a server (PostgreSQL, Redis) listening on 127.0.0.1:port? The scale-out tests skip otherwise."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False

API_KEY = "e2e-actions-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningStack:
    env: dict[str, str]
    rasa_url: str
    backend_url: str
    _web_senders: dict[int, str] = field(default_factory=dict)
    processes: Stack | None = None  # the running services (fault tests kill and restart one)

    def web_sender(self, customer_id: int) -> str:
        """The sender id of a signed-in web chat conversation of this customer ("web:s-<random>",
        opened by the backend as /webchat/login/verify would; never the customer number). One per
        customer for the stack's life, as "web:<customer id>" was before."""
        if customer_id not in self._web_senders:
            r = self.backend_post("/webchat/sessions", json={"customer_id": customer_id})
            r.raise_for_status()
            self._web_senders[customer_id] = r.json()["sender_id"]
        return self._web_senders[customer_id]

    def say(self, sender: str, text: str) -> list[dict]:
        r = httpx.post(f"{self.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
        r.raise_for_status()
        return r.json()

    def texts(self, sender: str, text: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(sender, text))

    def backend(self, path: str, **kw) -> httpx.Response:
        return httpx.get(f"{self.backend_url}/api/v1{path}", headers={"X-API-Key": API_KEY}, timeout=30, **kw)

    def backend_post(self, path: str, **kw) -> httpx.Response:
        return httpx.post(f"{self.backend_url}/api/v1{path}", headers={"X-API-Key": API_KEY}, timeout=30, **kw)

    def db(self):
        """The stack's database, personal numbers shown decrypted (tests/e2e/pii_db.py)."""

        from pii_db import connect

        return connect(self.env["DATABASE_URL"].removeprefix("sqlite:///"), self.env)

    def last_sms(self) -> dict:
        import json

        lines = Path(self.env["SMS_OUTBOX_PATH"]).read_text(encoding="utf-8").splitlines()
        return json.loads(lines[-1])


def running_stack(run_dir: Path, databases: dict[str, str]):
    """Start backend, action server and Rasa on free ports with the given databases; yields a RunningStack."""
    ports = {name: str(free_port()) for name in ("BACKEND_PORT", "ACTION_PORT", "RASA_PORT")}
    overrides = {
        **ports,
        "BACKEND_URL": f"http://127.0.0.1:{ports['BACKEND_PORT']}",
        "RASA_PUBLIC_URL": f"http://127.0.0.1:{ports['RASA_PORT']}",
        "BACKEND_API_KEYS": f"actions:{API_KEY},payments:e2e-payments-key",  # payments: the tests' gateway
        "BACKEND_API_KEY": API_KEY,
        "SMS_PROVIDER": "outbox",
        "SMS_OUTBOX_PATH": str(run_dir / "sms_outbox.jsonl"),
        "SMS_OUTBOX_SHOW_CODES": "true",  # the tests read codes and numbers from the outbox (last_sms)
        "OUTREACH_DEMO_TIME": "10:00",  # backend and scheduler at 10:00 today: inside the contact window at any hour
        **databases,  # the caller's settings win (databases, SMS provider, channel fakes)
    }
    s = Stack.from_env(run_dir, overrides, with_scheduler=False)
    env = s._child_env()
    subprocess.run([APP_PY, "-m", "backend.cli", "setup", "--count", "320"], cwd=ROOT, env=env, check=True)
    model = subprocess.run([BOT_PY, "-m", "bot.launch", "model"], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    if not Path(model).exists():
        pytest.fail(f"no trained model at {model}: `make test` trains it first")
    try:
        s.start()
        yield RunningStack(s.env, f"http://127.0.0.1:{ports['RASA_PORT']}", overrides["BACKEND_URL"], processes=s)
    finally:
        s.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> RunningStack:
    run_dir = tmp_path_factory.mktemp("stack")
    yield from running_stack(run_dir, {
        "DATABASE_URL": f"sqlite:///{run_dir / 'loan.db'}",
        "RASA_TRACKER_URL": f"sqlite:///{run_dir / 'tracker.db'}",
    })


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (no browser download)."""
    import shutil

    from playwright.sync_api import sync_playwright

    from webchat_page import CHROMIUM_ARGS

    exe = shutil.which("chromium")
    if not exe:
        pytest.fail("Debian's chromium is required (make test installs it): apt-get install chromium fonts-noto-cjk")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


# --------------------------------------------------------------------------- outreach notices

def plan_notice(stack: RunningStack, cid: int, loan_id: int, kind: str = "overdue_7") -> str:
    """An outreach notice row as the planner writes it (the scheduler is not running here)."""
    notice_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    with stack.db() as conn:
        conn.execute(
            "INSERT INTO outreach_notices (notice_id, customer_id, loan_id, instalment_seq, kind, dedupe_key, service, "
            "priority, planned_on, planned_for, next_attempt_at, expires_at, status, attempts, payload, created_at) "
            "VALUES (?, ?, ?, NULL, ?, ?, 0, 5, ?, ?, ?, ?, 'planned', 0, ?, ?)",
            (notice_id, cid, loan_id, kind, f"e2e-{notice_id}", now.date().isoformat(), now.isoformat(),
             now.isoformat(), (now + timedelta(days=3)).isoformat(), json.dumps({}), now.isoformat()))
    return notice_id


def trigger(stack: RunningStack, sender: str, notice_id: str) -> str:
    """Deliver the notice in the conversation now, as the backend words and sends it (no contact rules:
    tests/e2e/deliver_notice.py); what the borrower reads."""
    out = subprocess.run([APP_PY, "-m", "tests.e2e.deliver_notice", notice_id, sender], cwd=ROOT, env=stack.env,
                         check=True, capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])["text"]


# --------------------------------------------------------------------------- the scaled shape

@dataclass
class ScaledRunningStack(RunningStack):
    """A running scaled stack (scripts/scaled.py): rasa_url is nginx's front; ``stack`` gives the
    processes (rasa-1, rasa-2, actions-1, ...), ``nginx_dir`` nginx's logs."""

    stack: Stack | None = None
    nginx_dir: Path | None = None
    rasa_ports: list[str] = field(default_factory=list)
    started_in: float = 0.0


def running_scaled_stack(run_dir: Path, database_url: str, tracker_url: str, redis_url: str, shape=None,
                         customers: int = 320, settings: dict[str, str] | None = None):
    """The production shape on free ports (PostgreSQL and Redis given, nginx started here): two Rasa
    replicas and two action servers behind nginx, the backend with two workers; yields a
    ScaledRunningStack. No scheduler (tests plan and deliver notices themselves). ``customers``: demo
    customers loaded; ``settings``: more overrides."""
    import time

    from scripts.scaled import Shape, prepare, scaled_overrides, scaled_stack

    shape = shape or Shape(schedulers=0)
    ports = {name: str(free_port()) for name in ("BACKEND_PORT", "ACTION_PORT", "RASA_PORT")}
    rasa_ports = [str(free_port()) for _ in range(shape.rasa)]
    action_ports = [str(free_port()) for _ in range(shape.actions)]
    overrides = {
        **ports,
        "BACKEND_URL": f"http://127.0.0.1:{ports['BACKEND_PORT']}",
        "BACKEND_API_KEYS": f"actions:{API_KEY},payments:e2e-payments-key",
        "BACKEND_API_KEY": API_KEY,
        "SMS_PROVIDER": "outbox",
        "SMS_OUTBOX_PATH": str(run_dir / "sms_outbox.jsonl"),
        "SMS_OUTBOX_SHOW_CODES": "true",
        "OUTREACH_DEMO_TIME": "10:00",
        **scaled_overrides(database_url, tracker_url, redis_url, ports["RASA_PORT"]),
        **(settings or {}),
    }
    s = scaled_stack(run_dir, overrides, shape, rasa_ports, action_ports)
    model = subprocess.run([BOT_PY, "-m", "bot.launch", "model"], cwd=ROOT, env=s._child_env(), check=True,
                           capture_output=True, text=True).stdout.strip()
    if not Path(model).exists():
        pytest.fail(f"no trained model at {model}: `make test` trains it first")
    started = time.monotonic()
    try:
        s.start(prepare=lambda: prepare(s, count=customers))
        yield ScaledRunningStack(s.env, f"http://127.0.0.1:{ports['RASA_PORT']}", overrides["BACKEND_URL"],
                                 stack=s, nginx_dir=run_dir / "nginx", rasa_ports=rasa_ports,
                                 started_in=time.monotonic() - started)
    finally:
        s.stop()
