"""Environment for every process, read the same way by the bot and the app side.

Order: .env.example (defaults, committed) < .env (local, not committed) < the real environment.
Relative SQLite paths are made absolute against the project root so every process, whatever its
working directory, opens the same file. Standard library only: both environments import this.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def _absolute_sqlite(url: str) -> str:
    for prefix in ("sqlite:///",):
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            return prefix + str(ROOT / url[len(prefix):])
    return url


def load_env() -> dict[str, str]:
    env = _read_env_file(ROOT / ".env.example")
    env.update(_read_env_file(ROOT / ".env"))
    env.update({k: v for k, v in os.environ.items() if k in env or k.startswith(("RASA_", "BACKEND_", "APP_", "SCHEDULER_", "ACTION_", "DATABASE_", "SMS_", "OTP_", "TWILIO_", "WECHAT_", "WEBCHAT_"))})
    return derive(env)


def derive(env: dict[str, str]) -> dict[str, str]:
    """Values computed from others (absolute paths, tracker dialect, lock-store parts)."""
    for key in ("DATABASE_URL", "RASA_TRACKER_URL"):
        if key in env:
            env[key] = _absolute_sqlite(env[key])
    for key in ("SMS_OUTBOX_PATH",):
        if env.get(key) and not Path(env[key]).is_absolute():
            env[key] = str(ROOT / env[key])
    # Where the backend (console) and the scheduler reach Rasa's HTTP API.
    env["RASA_URL"] = env.get("RASA_URL") or f"http://127.0.0.1:{env.get('RASA_PORT', '5005')}"
    tracker = urlsplit(env.get("RASA_TRACKER_URL", "sqlite://"))
    env["RASA_TRACKER_DIALECT"] = tracker.scheme.split("+")[0] or "sqlite"
    lock = urlsplit(env.get("RASA_LOCK_STORE_URL", "redis://127.0.0.1:6379/1"))
    env["RASA_LOCK_STORE_HOST"] = lock.hostname or "127.0.0.1"
    env["RASA_LOCK_STORE_PORT"] = str(lock.port or 6379)
    env["RASA_LOCK_STORE_DB"] = (lock.path or "/1").strip("/") or "1"
    return env


def apply_env() -> dict[str, str]:
    """Put the merged settings into os.environ (for this process and its children)."""
    env = load_env()
    for key, value in env.items():
        os.environ[key] = value
    if env.get("RASA_TRACKER_DIALECT") == "sqlite":
        Path(env["RASA_TRACKER_URL"].removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return env
