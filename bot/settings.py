"""Environment for every process, read the same way by the bot and the app side.

Order: .env.example (defaults, committed) < .env (local, not committed) < the real environment.
Relative SQLite paths are made absolute against the project root so every process, whatever its
working directory, opens the same file. Standard library only: both environments import this.
"""
from __future__ import annotations

import os
import re
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


# --------------------------------------------------------------------------- deployment profile
# APP_ENV picks the profile: development (default: REST channel on 127.0.0.1 for tests and demos,
# the published .env.example secrets) or production (no REST channel, CORS only for CORS_ORIGINS,
# and no process starts with a published or missing secret). The backend checks its own settings
# (backend/core/config.py); this is the bot side's check (Rasa server, action server, stack.py).
PROFILES = ("development", "production")
# A secret is a setting whose name ends like this (new keys, e.g. PII keys, are covered by name).
SECRET_NAME = re.compile(r"(SECRET|TOKEN|KEYS?|PASSWORD)$")
# Secrets that production wants empty rather than changed (demo accounts must not exist there).
MUST_BE_EMPTY_IN_PRODUCTION = ("CONSOLE_DEMO_PASSWORD",)
# The secrets the Rasa server and the action server use (their own check, bot/launch.py); stack.py,
# which starts every process on one host, checks every secret in .env.example.
BOT_SECRETS = ("ACTION_SERVER_TOKEN", "RASA_API_TOKEN", "WEBCHAT_JWT_SECRET", "WECHAT_TOKEN", "WECHAT_APP_SECRET",
               "WECHAT_AES_KEY", "BACKEND_API_KEY", "TWILIO_AUTH_TOKEN")
ANY_INTERFACE = ("", "0.0.0.0", "::", "[::]", "*")


def profile(env: dict[str, str]) -> str:
    return (env.get("APP_ENV") or "development").strip().lower()


def published_values() -> dict[str, str]:
    """The committed development defaults: every value in .env.example is public."""
    return _read_env_file(ROOT / ".env.example")


def secret_parts(value: str) -> set[str]:
    """A secret's parts: "name:key" lists (BACKEND_API_KEYS) are compared key by key."""
    parts = set()
    for item in (i.strip() for i in value.split(",")):
        if item:
            parts.add(item)
            if ":" in item:
                parts.add(item.partition(":")[2].strip())
    return parts - {""}


def production_problems(env: dict[str, str], secrets: tuple[str, ...] | None = None) -> list[str]:
    """Why this environment must not run as production (names only, never values); [] when fine.
    ``secrets``: the settings to check (default: every secret named in .env.example)."""
    problems: list[str] = []
    published = published_values()
    names = secrets if secrets is not None else [k for k in published if SECRET_NAME.search(k)]
    for key in sorted(names):
        public = published.get(key, "")
        value = (env.get(key) or "").strip()
        if key in MUST_BE_EMPTY_IN_PRODUCTION:
            if value:
                problems.append(f"{key} must be empty in production (no demo accounts)")
            continue
        if key in published and not public.strip():
            continue  # optional secret (e.g. TWILIO_AUTH_TOKEN): empty switches the feature off
        if not value:
            problems.append(f"{key} is missing or empty")
        elif secret_parts(value) & secret_parts(public):
            problems.append(f"{key} is (or contains) the published development value from .env.example")
    origins = cors_origins(env)
    if not origins or "*" in origins:
        problems.append("CORS_ORIGINS must list the public origins of the chat page (not empty, not *)")
    webchat = (env.get("WEBCHAT_ALLOWED_ORIGINS") or "").strip()
    if not webchat or "*" in webchat.split(","):
        problems.append("WEBCHAT_ALLOWED_ORIGINS must list the chat page origins (not empty, not *)")
    if (env.get("ACTION_HOST") or "").strip() in ANY_INTERFACE:
        problems.append("ACTION_HOST must be 127.0.0.1 or a private address, not every interface")
    return problems


def profile_problems(env: dict[str, str], secrets: tuple[str, ...] | None = None) -> list[str]:
    name = profile(env)
    if name not in PROFILES:
        return [f"APP_ENV={name!r} is not a profile: use one of {', '.join(PROFILES)}"]
    return production_problems(env, secrets) if name == "production" else []


def preflight(env: dict[str, str], process: str, secrets: tuple[str, ...] | None = None) -> None:
    """Refuse to start (exit status 1, a message naming the settings) on an unsafe configuration."""
    problems = profile_problems(env, secrets)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise SystemExit(f"{process}: refusing to start with APP_ENV={profile(env)}:\n{lines}\n"
                         "Set long random values in .env or the environment (e.g. "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`).")


def cors_origins(env: dict[str, str]) -> list[str]:
    """Origins Rasa answers with CORS (CORS_ORIGINS, comma-separated). Development default: the
    backend's own origin, where the web chat page is served."""
    raw = (env.get("CORS_ORIGINS") or "").strip()
    if raw:
        return [o.strip().rstrip("/") for o in raw.split(",") if o.strip()]
    if profile(env) == "production":
        return []
    port = env.get("BACKEND_PORT", "8000")
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]


def credentials_file(env: dict[str, str]) -> str:
    """Rasa's channels: production has no REST channel (it takes the sender id from the request)."""
    return "credentials.production.yml" if profile(env) == "production" else "credentials.yml"
