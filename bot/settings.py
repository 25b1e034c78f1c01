"""Settings of every process, read the same way on both sides: .env.example (the committed
defaults, every value public) < .env (local, not committed) < the real environment.

One settings model per environment, both fed by the one file reader here (``read_env_files``):

* the bot environment (Rasa server, action server, channel connectors; pydantic 1.10):
  ``BotSettings``, a pydantic ``BaseSettings`` whose sources are its arguments, then the environment,
  then the two files; ``get_settings()`` gives it. Nothing on the Rasa side reads os.environ itself;
* the app environment (backend, scheduler; pydantic 2): ``backend.core.config.Settings``
  (pydantic-settings) with the same three sources in the same order.

Why a standard-library reader shared by both models rather than each library's own dotenv support:
the bot environment has no python-dotenv (pydantic 1's ``env_file`` needs it; Rasa pins what it
can have), and one reader means one reading of the files (comments, blank lines, ``KEY=value``
without quotes) on both sides. This module stays importable from both environments: the model is
pydantic 1's ``BaseSettings`` (``pydantic.v1`` under pydantic 2, which ships it), and the functions
that work on a plain dict (``load_env``, ``derive``, ``apply_env``, the production-profile checks)
are standard library: scripts/stack.py (app environment) hands the merged dict to the processes it
starts, and Rasa itself reads a few values from the process environment (``apply_env``: endpoints
and credentials files interpolate ``${...}``).

Defaults live in .env.example only: a field here has no default of its own (a missing key there is
an error at start-up), and tests/backend/test_settings.py holds both models to the file.
Relative SQLite paths and file paths are made absolute against the project root so every process,
whatever its working directory, opens the same file.
"""
from __future__ import annotations

import os
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

try:  # pydantic 2 (the app environment: scripts/stack.py and the backend import this module)
    from pydantic.v1 import BaseSettings, validator
except ImportError:  # pydantic 1.10 (the bot environment)
    from pydantic import BaseSettings, validator  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / ".env.example"
LOCAL = ROOT / ".env"


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


@lru_cache(maxsize=8)
def _read_env_file_cached(path: Path, mtime_ns: int) -> tuple[tuple[str, str], ...]:
    return tuple(_read_env_file(path).items())


def read_env_files() -> dict[str, str]:
    """The file layers, in order: .env.example, then .env over it (each read again once changed)."""
    values: dict[str, str] = {}
    for path in (EXAMPLE, LOCAL):
        if path.exists():
            values.update(_read_env_file_cached(path, path.stat().st_mtime_ns))
    return values


def absolute_sqlite(url: str) -> str:
    """A SQLite URL with a relative path made absolute against the project root."""
    for prefix in ("sqlite:///",):
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            return prefix + str(ROOT / url[len(prefix):])
    return url


def default(name: str) -> str:
    """The committed default of a setting: its value in .env.example (KeyError if it has none)."""
    return dict(_read_env_file_cached(EXAMPLE, EXAMPLE.stat().st_mtime_ns))[name]


def absolute_path(value: str) -> str:
    """A file path as every process sees it: relative paths are relative to the project root."""
    return value if not value or Path(value).is_absolute() else str(ROOT / value)


def rasa_url(configured: str | None, rasa_port: str | int | None) -> str:
    """Where the backend, the scheduler and the outbox worker reach Rasa's HTTP API: RASA_URL, or
    (empty) Rasa on this host at RASA_PORT. The one place this default is worked out."""
    return (configured or "").strip() or f"http://127.0.0.1:{rasa_port or 5005}"


def lock_store_parts(url: str | None) -> tuple[str, int, str]:
    """Host, port and database number of the Redis lock store (endpoints.scale.yml interpolates them)."""
    lock = urlsplit(url or "redis://127.0.0.1:6379/1")
    return lock.hostname or "127.0.0.1", lock.port or 6379, (lock.path or "/1").strip("/") or "1"


def merged_env() -> dict[str, str]:
    """.env.example < .env < the environment, as given (no derived values)."""
    env = read_env_files()
    env.update({k: v for k, v in os.environ.items() if k in env or k.startswith(("RASA_", "BACKEND_", "APP_", "SCHEDULER_", "ACTION_", "DATABASE_", "SMS_", "OTP_", "TWILIO_", "WECHAT_", "WEBCHAT_",
                                                                                        "OPENBLAS_", "OMP_", "MKL_"))})
    return env


def load_env() -> dict[str, str]:
    return derive(merged_env())


def derive(env: dict[str, str]) -> dict[str, str]:
    """Values computed from others (absolute paths, Rasa's URL, tracker dialect, lock-store parts)."""
    for key in ("DATABASE_URL", "RASA_TRACKER_URL"):
        if key in env:
            env[key] = absolute_sqlite(env[key])
    for key in ("SMS_OUTBOX_PATH", "BUSINESS_RULES_PATH"):
        if env.get(key):
            env[key] = absolute_path(env[key])
    env["RASA_URL"] = rasa_url(env.get("RASA_URL"), env.get("RASA_PORT"))
    tracker = urlsplit(env.get("RASA_TRACKER_URL", "sqlite://"))
    env["RASA_TRACKER_DIALECT"] = tracker.scheme.split("+")[0] or "sqlite"
    host, port, db = lock_store_parts(env.get("RASA_LOCK_STORE_URL"))
    env["RASA_LOCK_STORE_HOST"], env["RASA_LOCK_STORE_PORT"], env["RASA_LOCK_STORE_DB"] = host, str(port), db
    return env


def apply_env() -> dict[str, str]:
    """Put the merged settings into os.environ (for this process and its children)."""
    env = load_env()
    for key, value in env.items():
        os.environ[key] = value
    if env.get("RASA_TRACKER_DIALECT") == "sqlite":
        Path(env["RASA_TRACKER_URL"].removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return env


# --------------------------------------------------------------------------- the bot's settings model

def _files_source(settings: BaseSettings) -> dict[str, Any]:
    return {key.lower(): value for key, value in read_env_files().items()}


class BotSettings(BaseSettings):
    """The Rasa side's settings (Rasa server with its channel connectors, action server): field
    ``x`` is the variable ``X``. No defaults here: .env.example has them all."""

    app_env: str
    cors_origins: str
    backend_port: int
    rasa_port: int
    action_port: int
    action_host: str
    action_server_token: str
    # The backend, as the action server and the connectors reach it.
    backend_url: str
    backend_api_key: str
    rasa_api_token: str
    rasa_url: str
    rasa_endpoints: str
    rasa_tracker_url: str
    rasa_lock_store_url: str
    # Shared store of the channel guard's counters (empty: the Redis lock store when endpoints use one).
    redis_url: str
    app_frozen_date: Optional[date]
    webchat_allowed_origins: str
    webchat_jwt_secret: str
    wechat_template_id: str
    wechat_template_url: str
    wechat_redis_url: str
    twilio_auth_token: str
    sms_public_url: str
    loan_assistant_cache: str

    class Config:
        case_sensitive = False
        extra = "ignore"

        @classmethod
        def customise_sources(cls, init_settings, env_settings, file_secret_settings):
            return init_settings, env_settings, _files_source

    @validator("app_frozen_date", pre=True)
    def _empty_date(cls, value: Any) -> Any:
        return value or None

    @validator("rasa_tracker_url")
    def _absolute(cls, value: str) -> str:
        return absolute_sqlite(value)

    @validator("rasa_url")
    def _rasa_url(cls, value: str, values: dict[str, Any]) -> str:
        return rasa_url(value, values.get("rasa_port"))

    @property
    def cache_dir(self) -> Path:
        """Trained models and the encoder's files (LOAN_ASSISTANT_CACHE; empty: ~/.cache/loan-assistant)."""
        return Path(self.loan_assistant_cache) if self.loan_assistant_cache else Path.home() / ".cache" / "loan-assistant"

    @property
    def sms_webhook_url(self) -> str:
        """The exact URL Twilio signs inbound SMS with (SMS_PUBLIC_URL; empty: Rasa on this host)."""
        return self.sms_public_url or f"http://127.0.0.1:{self.rasa_port}/webhooks/sms/webhook"


def get_settings(**overrides: Any) -> BotSettings:
    """The bot's settings as they are now: arguments (by field name) win over the environment, the
    environment over .env, .env over .env.example. Built on each call (the files are read again only
    once changed), so a test's monkeypatched environment is seen at once."""
    return BotSettings(**overrides)


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
