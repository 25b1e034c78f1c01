"""The real stack for the benchmarks: backend, action server and Rasa started by scripts/stack.py's
Stack (as the end-to-end tests do) on free ports. For the delivery benchmark on its database, with
WeChat and SMS pointed at the fake APIs of the channel tests (bench.fakes, its own process)
(:func:`start_stack`); for the turn benchmark in the end-to-end tests' shape, SQLite and the demo
data (:func:`start_turn_stack`); and the memory of processes, read from /proc (VmRSS now, VmHWM the
peak).
"""
from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from bench.fakes import TWILIO_SID, TWILIO_TOKEN
from scripts.stack import APP_PY, BOT_PY, Stack

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- memory

def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])  # kB
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return pids


def memory_mb(pid: int, children: bool = True) -> dict[str, float]:
    """RSS now and peak RSS (VmHWM) of a process, plus (summed) its children if it has any and
    ``children``."""
    rss = hwm = 0
    pids = _tree(pid) if children else [pid]
    for p in pids:
        s = _status(p)
        rss, hwm = rss + s.get("VmRSS", 0), hwm + s.get("VmHWM", 0)
    out = {"rss_mb": round(rss / 1024, 1), "peak_rss_mb": round(hwm / 1024, 1)}
    if len(pids) > 1:
        out["processes"] = len(pids)
    return out


# --------------------------------------------------------------------------- fakes and stack

class Fakes:
    """bench.fakes as a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.fakes"], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.urls = json.loads(self.proc.stdout.readline())

    def dump(self) -> dict:
        self.proc.stdin.write("dump\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def settled(self, quiet: float = 2.0, timeout: float = 60.0) -> dict:
        """What the fakes received, once nothing new arrived for ``quiet`` seconds."""
        last, deadline = self.dump(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.dump()
            if (len(now["wechat"]), len(now["sms"])) == (len(last["wechat"]), len(last["sms"])):
                return now
            last = now
        return last

    def stop(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def channel_settings(fakes: Fakes) -> dict[str, str]:
    """WeChat (a service-notice template set) and SMS (Twilio) on the fakes."""
    return {
        "WECHAT_TOKEN": "bench-wechat-token", "WECHAT_APP_ID": "wxbench000000001", "WECHAT_APP_SECRET": "bench-secret",
        "WECHAT_AES_KEY": base64.b64encode(b"outreach-bench-wechat-aes-key-32").decode().rstrip("="),
        "WECHAT_API_BASE": fakes.urls["wechat"], "WECHAT_TEMPLATE_ID": "TPL-bench-service-notice",
        "WECHAT_REDIS_URL": "",
        "SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_API_BASE": fakes.urls["twilio"],
        "SMS_PUBLIC_URL": "https://bot.example.com/webhooks/sms/webhook",
    }


def start_stack(run_dir: Path, database_url: str, tracker_url: str, day: date, fakes: Fakes) -> Stack:
    """Backend, action server and Rasa (no scheduler: the benchmark is the dispatcher), started and healthy."""
    ports = {name: str(free_port()) for name in ("BACKEND_PORT", "ACTION_PORT", "RASA_PORT")}
    overrides = {
        **ports,
        "BACKEND_URL": f"http://127.0.0.1:{ports['BACKEND_PORT']}",
        "RASA_PUBLIC_URL": f"http://127.0.0.1:{ports['RASA_PORT']}",
        "DATABASE_URL": database_url,
        "RASA_TRACKER_URL": tracker_url,
        "APP_FROZEN_DATE": day.isoformat(),  # the backend's "today" is the benchmark's day,
        "OUTREACH_DEMO_TIME": "10:00",  # at 10:00 like the dispatcher's clock (bench.delivery)
        **channel_settings(fakes),
    }
    stack = Stack.from_env(run_dir, overrides, with_scheduler=False)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    return stack


TURN_API_KEY = "bench-actions-key"


def start_turn_stack(run_dir: Path, count: int = 320, extra: dict[str, str] | None = None) -> Stack:
    """Backend, action server and Rasa as the end-to-end tests run them (tests/e2e/conftest.py
    running_stack): SQLite backend and tracker store in ``run_dir``, ``count`` demo customers, SMS
    to an outbox file, no scheduler; started and healthy. ``extra``: more settings (they win;
    RASA_MODEL_PATH runs another model than the current data's, bot/launch.py)."""
    ports = {name: str(free_port()) for name in ("BACKEND_PORT", "ACTION_PORT", "RASA_PORT")}
    overrides = {
        **ports,
        "BACKEND_URL": f"http://127.0.0.1:{ports['BACKEND_PORT']}",
        "RASA_PUBLIC_URL": f"http://127.0.0.1:{ports['RASA_PORT']}",
        "BACKEND_API_KEYS": f"actions:{TURN_API_KEY}",
        "BACKEND_API_KEY": TURN_API_KEY,
        "SMS_PROVIDER": "outbox",
        "SMS_OUTBOX_PATH": str(run_dir / "sms_outbox.jsonl"),
        "OUTREACH_DEMO_TIME": "10:00",
        "DATABASE_URL": f"sqlite:///{run_dir / 'loan.db'}",
        "RASA_TRACKER_URL": f"sqlite:///{run_dir / 'tracker.db'}",
        **(extra or {}),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack.from_env(run_dir, overrides, with_scheduler=False)
    env = stack._child_env()  # noqa: SLF001 - the environment the services get
    subprocess.run([APP_PY, "-m", "backend.cli", "setup", "--count", str(count)], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    model = overrides.get("RASA_MODEL_PATH") or subprocess.run(
        [BOT_PY, "-m", "bot.launch", "model"], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.strip()
    if not Path(model).exists():
        raise SystemExit(f"no trained model at {model}: run `make model` first")
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    return stack
