"""Process settings (environment) and business rules (config/business.yml).

Settings come from the environment so that one code base runs embedded (SQLite) or
scaled out (PostgreSQL) by configuration only; business rules come from a YAML file
that the business edits, never from constants in code.
"""
from __future__ import annotations

import logging
from datetime import time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from bot.settings import absolute_path, absolute_sqlite, read_env_files
from bot.settings import default as env_default
from bot.settings import rasa_url as default_rasa_url

from backend.models.enums import ComplaintCategory, HandoffReason, PlanType, values

ROOT = Path(__file__).resolve().parents[2]

# Development defaults of the personal-data keys (backend.core.crypto); published, like every value below.
DEV_PII_ENCRYPTION_KEY = "bG9hbi1hc3Npc3RhbnQtREVWLU9OTFktcGlpLWtleSE="
DEV_PII_HASH_KEY = "dev-pii-hash-key-published-do-not-use"

# Secrets whose development values are published (in this code and in .env.example): a production
# start must refuse any of them. Setting (environment variable) -> its published values. Lists
# (BACKEND_API_KEYS "name:key" pairs, PII_ENCRYPTION_KEY keys) are published when any part is.
PUBLISHED_DEV_SECRETS: dict[str, tuple[str, ...]] = {
    "BACKEND_API_KEYS": ("dev-actions-key", "dev-scheduler-key"),
    "BACKEND_API_KEY": ("dev-actions-key",),
    "SCHEDULER_API_KEY": ("dev-scheduler-key",),
    "OTP_HASH_SECRET": ("dev-otp-secret",),
    "NLU_REVIEW_HASH_SECRET": ("dev-nlu-review-secret",),
    "WEBCHAT_JWT_SECRET": ("dev-webchat-jwt-secret-change-me",),
    "RASA_API_TOKEN": ("dev-rasa-token",),
    "ACTION_SERVER_TOKEN": ("dev-action-server-token",),
    "WECHAT_TOKEN": ("dev-wechat-token",),
    "WECHAT_APP_SECRET": ("dev-wechat-secret",),
    "WECHAT_AES_KEY": ("bG9hbi1hc3Npc3RhbnQtZGV2LW9ubHktYWVzLWtleSE",),
    "CONSOLE_DEMO_PASSWORD": ("xiaoan-demo-2026",),
    "PII_ENCRYPTION_KEY": (DEV_PII_ENCRYPTION_KEY,),
    "PII_HASH_KEY": (DEV_PII_HASH_KEY,),
}


def published_dev_secrets_in(env: dict[str, str]) -> list[str]:
    """The settings in ``env`` (environment variable -> value) that hold a published development
    secret, in PUBLISHED_DEV_SECRETS order. An unset or empty setting is not reported here."""
    found = []
    for name, published in PUBLISHED_DEV_SECRETS.items():
        value = (env.get(name) or "").strip()
        if not value:
            continue
        parts = {value} | {p.strip() for p in value.split(",")} | {p.strip().partition(":")[2] for p in value.split(",")}
        if parts & set(published):
            found.append(name)
    return found


class Settings(BaseSettings):
    """The app environment's settings (backend, scheduler, backend.cli). Highest first: arguments (by
    variable name), the environment, .env, .env.example (read by bot.settings.read_env_files, the one
    reader of both files, as for the bot's model). Every default is the committed .env.example value (``env_default``),
    except SMS_OUTBOX_SHOW_CODES: false here, true in the file (local demos and tests read codes)."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, InitSettingsSource(settings_cls, init_kwargs=read_env_files())

    database_url: str = Field(default=env_default("DATABASE_URL"), alias="DATABASE_URL")
    # Comma-separated "name:key" pairs; the name is what the audit log records as the actor and picks
    # the key's scopes (API_KEY_PROFILES): an unknown name is refused at start-up.
    backend_api_keys: str = Field(default=env_default("BACKEND_API_KEYS"), alias="BACKEND_API_KEYS")
    business_rules_path: Path = Field(default=env_default("BUSINESS_RULES_PATH"), alias="BUSINESS_RULES_PATH")
    # Key for hashing one-time codes at rest; set a long random value in production.
    otp_hash_secret: str = Field(default=env_default("OTP_HASH_SECRET"), alias="OTP_HASH_SECRET")
    sms_provider: str = Field(default=env_default("SMS_PROVIDER"), alias="SMS_PROVIDER")
    sms_outbox_path: Path = Field(default=env_default("SMS_OUTBOX_PATH"), alias="SMS_OUTBOX_PATH")
    twilio_account_sid: str = Field(default=env_default("TWILIO_ACCOUNT_SID"), alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str = Field(default=env_default("TWILIO_AUTH_TOKEN"), alias="TWILIO_AUTH_TOKEN")
    twilio_from_number: str = Field(default=env_default("TWILIO_FROM_NUMBER"), alias="TWILIO_FROM_NUMBER")
    # Only for tests: where the Twilio client sends its requests instead of api.twilio.com.
    twilio_api_base: str = Field(default=env_default("TWILIO_API_BASE"), alias="TWILIO_API_BASE")
    webchat_jwt_secret: str = Field(default=env_default("WEBCHAT_JWT_SECRET"), alias="WEBCHAT_JWT_SECRET")
    webchat_token_minutes: int = Field(default=env_default("WEBCHAT_TOKEN_MINUTES"), alias="WEBCHAT_TOKEN_MINUTES")
    rasa_public_url: str = Field(default=env_default("RASA_PUBLIC_URL"), alias="RASA_PUBLIC_URL")
    # Rasa's HTTP API as the backend reaches it (console replies, transcripts) and its token.
    # Empty: Rasa on this host at RASA_PORT (bot.settings.rasa_url, the one place this is worked out).
    rasa_url: str = Field(default=env_default("RASA_URL"), alias="RASA_URL")
    rasa_port: int = Field(default=env_default("RASA_PORT"), alias="RASA_PORT")
    rasa_api_token: str = Field(default=env_default("RASA_API_TOKEN"), alias="RASA_API_TOKEN")
    # Staff console session cookie: Secure flag (set true behind HTTPS).
    console_cookie_secure: bool = Field(default=env_default("CONSOLE_COOKIE_SECURE"), alias="CONSOLE_COOKIE_SECURE")
    # The demo staff accounts' password (`backend.cli setup` on an empty database); empty in production.
    console_demo_password: str = Field(default=env_default("CONSOLE_DEMO_PASSWORD"), alias="CONSOLE_DEMO_PASSWORD")
    # `backend.cli create-staff` takes the new account's password from here when set, else asks for it.
    staff_password: str = Field(default=env_default("STAFF_PASSWORD"), alias="STAFF_PASSWORD")
    # Deployment profile (README "Security and privacy"): development or production. Production
    # refuses to start with a published or missing secret (_profile) and makes the cookie Secure.
    app_env: str = Field(default=env_default("APP_ENV"), alias="APP_ENV")
    # ISO date; when set, "today" is this date (demo and tests across processes).
    frozen_date: str | None = Field(default=env_default("APP_FROZEN_DATE"), alias="APP_FROZEN_DATE")
    # Scheduler demo setting: dispatch every N seconds instead of outreach.dispatch_seconds.
    outreach_dispatch_seconds: str = Field(default=env_default("OUTREACH_DISPATCH_SECONDS"), alias="OUTREACH_DISPATCH_SECONDS")
    # The scheduler's dispatchers (threads, each claiming its own batches) and the deliveries each
    # keeps in flight at once (backend.services.outreach.dispatcher.dispatch_due ``concurrency``).
    outreach_dispatchers: int = Field(default=env_default("OUTREACH_DISPATCHERS"), alias="OUTREACH_DISPATCHERS", ge=1)
    outreach_delivery_concurrency: int = Field(default=env_default("OUTREACH_DELIVERY_CONCURRENCY"),
                                               alias="OUTREACH_DELIVERY_CONCURRENCY", ge=1)
    # Demo clock of the whole stack (backend and scheduler; backend.core.clock.Clock): business time
    # starts at this HH:MM of the business date and runs on in real time, never changing the date, so
    # a demo or a test run at night is inside the contact window. Empty: the real time.
    outreach_demo_time: str = Field(default=env_default("OUTREACH_DEMO_TIME"), alias="OUTREACH_DEMO_TIME")
    # The WeChat service-notice template (the channel reads the same variable, credentials.yml):
    # outreach may use WeChat outside its 48-hour window only when this is set and
    # outreach.wechat_template_outside_window is true (effective_rules).
    wechat_template_id: str = Field(default=env_default("WECHAT_TEMPLATE_ID"), alias="WECHAT_TEMPLATE_ID")
    # Key of the keyed hash (HMAC-SHA256) kept instead of conversation ids in the understanding inbox
    # (an SMS conversation id holds a phone number); set a long random value in production.
    nlu_review_hash_secret: str = Field(default=env_default("NLU_REVIEW_HASH_SECRET"), alias="NLU_REVIEW_HASH_SECRET")
    # Personal data at rest (backend.core.crypto): Fernet key(s) encrypting phone and ID numbers and
    # channel ids (comma-separated: the first encrypts, all decrypt), and the HMAC key of their lookup
    # hashes. The defaults are published development secrets (PUBLISHED_DEV_SECRETS): never in production.
    pii_encryption_key: str = Field(default=env_default("PII_ENCRYPTION_KEY"), alias="PII_ENCRYPTION_KEY")
    pii_hash_key: str = Field(default=env_default("PII_HASH_KEY"), alias="PII_HASH_KEY")
    # Development SMS outbox (SMS_PROVIDER=outbox): numbers are written masked (138****5678) and
    # one-time codes as ******, unless this is true (local demos and end-to-end tests read codes there).
    sms_outbox_show_codes: bool = Field(default=False, alias="SMS_OUTBOX_SHOW_CODES")

    @field_validator("database_url")
    @classmethod
    def _absolute_sqlite(cls, value: str) -> str:
        return absolute_sqlite(value)

    @field_validator("sms_outbox_path", "business_rules_path", mode="before")
    @classmethod
    def _absolute_path(cls, value: Any) -> Any:
        return absolute_path(str(value)) if isinstance(value, (str, Path)) else value

    @field_validator("frozen_date", mode="before")
    @classmethod
    def _no_frozen_date(cls, value: Any) -> Any:
        return (value.strip() or None) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _rasa_url(self) -> "Settings":
        self.rasa_url = default_rasa_url(self.rasa_url, self.rasa_port)
        return self

    @field_validator("outreach_demo_time")
    @classmethod
    def _demo_time(cls, value: str) -> str:
        from backend.core.clock import parse_demo_time

        try:
            parse_demo_time(value)
        except ValueError:
            raise ValueError(f'OUTREACH_DEMO_TIME must be empty or a time of day "HH:MM", not {value!r}') from None
        return value.strip()

    @model_validator(mode="after")
    def _profile(self) -> "Settings":
        """APP_ENV=production: refuse to start on a published or missing secret (InsecureConfiguration,
        which names settings, never values); the console session cookie is always Secure."""
        self.app_env = (self.app_env or "development").strip().lower()
        if self.app_env not in ("development", "production"):
            raise InsecureConfiguration(f"backend: APP_ENV={self.app_env!r} is not a profile: "
                                        "use development or production")
        if self.app_env == "production":
            problems = production_problems(self)
            if problems:
                raise InsecureConfiguration("backend: refusing to start with APP_ENV=production:\n"
                                            + "\n".join(f"  - {p}" for p in problems))
            self.console_cookie_secure = True
        return self

    @field_validator("backend_api_keys")
    @classmethod
    def _api_keys(cls, value: str) -> str:
        _parse_api_keys(value)  # fail at start-up, not on the first call
        return value

    def api_keys(self) -> dict[str, str]:
        """Map key -> caller name."""
        return _parse_api_keys(self.backend_api_keys)

    def api_key_scopes(self) -> dict[str, tuple[str, frozenset[str]]]:
        """Map key -> (caller name, the scopes it may use)."""
        return {key: (name, API_KEY_PROFILES[name]) for key, name in self.api_keys().items()}


# The scopes an API route may require (backend.api.deps.scoped) and, per caller name in
# BACKEND_API_KEYS, the scopes its key holds. Staff decisions are never a scope: they need a signed-in
# staff member (the console). tests/backend/test_api_scopes.py holds every route to this table.
API_SCOPES = (
    "identities:read",      # who is behind a channel identity
    "identities:write",     # bind an identity to a verified customer, wrong person
    "channels",             # inbound claims, identity status, SMS opt-out/in and sending
    "accounts:read",        # customers, loans, schedules, payments, overdue, payoff
    "verification",         # one-time codes
    "engagement",           # promises to pay, unsubscribe/resubscribe, conversation sessions
    "handoffs:bot",         # open a handoff, the current case, the rating, the open-case flag
    "complaints:bot",       # file a complaint, read the borrower's tickets and reminder pause
    "plans:bot",            # quote, submit, read and withdraw the borrower's plan requests
    "settlements",          # early-settlement intents
    "outreach:notices",     # read an outreach notice
    "outreach:summary",     # the outreach summary
    "nlu-review:write",     # report a message for the understanding inbox
    "payments:write",       # record a payment (the payment gateway)
    "segments:recompute",   # the daily segment job
    "staff:read",           # staff lists: handoff queue, complaint tickets, plan requests
    "rules:read",           # the business rules the bot side works by (GET /api/v1/bot/rules)
)
_CHANNEL_SCOPES = frozenset({"identities:read", "identities:write", "channels", "rules:read"})
API_KEY_PROFILES: dict[str, frozenset[str]] = {
    # The bot: the action server, and the channel connectors and event broker in the Rasa process,
    # which use the same BACKEND_API_KEY.
    "actions": _CHANNEL_SCOPES | {
        "accounts:read", "verification", "engagement", "handoffs:bot", "complaints:bot", "plans:bot",
        "settlements", "outreach:notices", "nlu-review:write"},
    # The channel connectors alone, should they get a key of their own.
    "channels": _CHANNEL_SCOPES,
    # The scheduler: outreach reads and the daily segment job (scheduler/jobs.py).
    "scheduler": frozenset({"outreach:notices", "outreach:summary", "segments:recompute"}),
    # The payment gateway.
    "payments": frozenset({"payments:write"}),
    # Read-only reporting on staff lists.
    "reports": frozenset({"staff:read", "outreach:summary"}),
}
assert all(set(scopes) <= set(API_SCOPES) for scopes in API_KEY_PROFILES.values())


def _parse_api_keys(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in value.split(","):
        pair = pair.strip()
        if not pair:
            continue
        name, _, key = pair.partition(":")
        name, key = name.strip(), key.strip()
        if not key:
            continue
        if name not in API_KEY_PROFILES:
            raise ValueError(f"BACKEND_API_KEYS: unknown caller name {name!r}; use one of "
                             f"{', '.join(API_KEY_PROFILES)}")
        if key in out:
            raise ValueError("BACKEND_API_KEYS: the same key is given twice")
        out[key] = name
    return out


class InsecureConfiguration(SystemExit):
    """A refusal to start: the process exits with status 1 and this message alone, whoever builds the
    settings (uvicorn's factory, the CLI, the scheduler). Not a ValueError on purpose: pydantic would
    wrap that in a ValidationError that prints every setting's value, secrets included."""


def production_problems(settings: Settings) -> list[str]:
    """The backend's secrets (settings named *_SECRET, *_TOKEN, *_KEY(S), *_PASSWORD) that production
    cannot run with: empty, or a published development value (PUBLISHED_DEV_SECRETS, the field's
    default, .env.example). A secret whose default is empty is optional (Twilio), unless in use. The
    demo accounts' password must be empty (MUST_BE_EMPTY_IN_PRODUCTION, the rule scripts/stack.py keeps)."""
    from bot.settings import MUST_BE_EMPTY_IN_PRODUCTION, SECRET_NAME, published_values, secret_parts

    example = published_values()
    problems = []
    for name, field in Settings.model_fields.items():
        alias = field.alias or name.upper()
        if not SECRET_NAME.search(alias):
            continue
        value = str(getattr(settings, name) or "").strip()
        if alias in MUST_BE_EMPTY_IN_PRODUCTION:
            if value:
                problems.append(f"{alias} must be empty in production (no demo accounts)")
            continue
        default = str(field.default or "")
        required = bool(default) or (alias == "TWILIO_AUTH_TOKEN" and settings.sms_provider == "twilio")
        published = set(PUBLISHED_DEV_SECRETS.get(alias, ())) | secret_parts(default) | secret_parts(example.get(alias, ""))
        if not value:
            if required:
                problems.append(f"{alias} is missing or empty")
        elif secret_parts(value) & published or published_dev_secrets_in({alias: value}):
            problems.append(f"{alias} is (or contains) a published development value")
    return problems


class RuleSection(BaseModel):
    """A part of config/business.yml: every key is known, a misspelt or unknown one fails at start-up
    (extra="forbid") instead of being silently replaced by its default."""

    model_config = ConfigDict(extra="forbid")


class Product(RuleSection):
    code: str
    name: str
    early_settlement_fee_rate: Decimal
    early_settlement_fee_waived_after_instalments: int = 0


# Segment conditions are "<metric>_<operator>" (backend.services.segments.SegmentMetrics).
SEGMENT_METRICS = ("days_past_due", "overdue_episodes_12m", "outstanding_principal")
SEGMENT_OPERATORS = ("gte", "gt", "lte", "lt", "eq")
SEGMENT_FIELDS = ("risk_tier", "value_tier")


class SegmentRule(RuleSection):
    tier: str
    any_of: list[dict[str, int | Decimal]]

    @field_validator("any_of")
    @classmethod
    def _conditions(cls, value: list[dict[str, int | Decimal]]) -> list[dict[str, int | Decimal]]:
        for condition in value:
            for key in condition:
                metric, _, op = key.rpartition("_")
                if metric not in SEGMENT_METRICS or op not in SEGMENT_OPERATORS:
                    raise ValueError(f"unknown segment condition {key!r}: use <metric>_<operator> with a metric "
                                     f"among {', '.join(SEGMENT_METRICS)} and an operator among "
                                     f"{', '.join(SEGMENT_OPERATORS)}")
        return value


class VerificationRules(RuleSection):
    code_ttl_seconds: int = 300
    max_wrong_attempts: int = 5
    lock_minutes: int = 30
    max_mismatches: int = 5
    # How long a conversation that passed the code check counts as verified for the bot.
    verified_minutes: int = Field(default=240, ge=1)


# The reasons the bot may hand a conversation to staff for (backend.models.HandoffReason).
HANDOFF_REASONS = values(HandoffReason)


class StaffedHours(RuleSection):
    start: time = time(9, 0)
    end: time = time(21, 0)
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hh_mm(cls, value: Any) -> Any:
        # Unquoted 09:00 is a base-60 integer to YAML 1.1; refuse it rather than misread it.
        if not isinstance(value, (str, time)):
            raise ValueError('write times as quoted "HH:MM"')
        return value

    @model_validator(mode="after")
    def _check(self) -> "StaffedHours":
        if not self.start < self.end:
            raise ValueError("staffed_hours: start must be before end (no shifts past midnight)")
        if not self.days or not set(self.days) <= set(range(1, 8)):
            raise ValueError("staffed_hours: days must be ISO weekdays 1..7")
        return self


class WaitEstimate(RuleSection):
    history_cases: int = Field(default=20, ge=1)
    default_minutes: int = Field(default=3, ge=1)


class HandoffRules(RuleSection):
    priorities: dict[str, int] = Field(default_factory=lambda: {
        "distress": 1, "complaint_high": 1, "vip_plan": 2, "plan_review": 2,
        "request_human": 3, "repeated_fallback": 3,
    })
    staffed_hours: StaffedHours = StaffedHours()
    first_response_target_minutes: int = Field(default=3, ge=1)
    wait_estimate: WaitEstimate = WaitEstimate()
    # Segments whose repayment-plan questions go to a person (served to the action server, which asks).
    plan_segments: dict[str, list[str]] = Field(default_factory=lambda: {"value_tier": ["vip"], "risk_tier": ["high"]})

    @model_validator(mode="after")
    def _check(self) -> "HandoffRules":
        unknown = set(self.plan_segments) - set(SEGMENT_FIELDS)
        if unknown:
            raise ValueError(f"handoff.plan_segments: unknown segments {sorted(unknown)}; use {', '.join(SEGMENT_FIELDS)}")
        if set(self.priorities) != set(HANDOFF_REASONS):
            raise ValueError(f"handoff.priorities must give exactly these reasons: {', '.join(HANDOFF_REASONS)}")
        if any(not 1 <= p <= 4 for p in self.priorities.values()):
            raise ValueError("handoff.priorities: 1 (urgent) .. 4 (low)")
        return self


class ConsoleRules(RuleSection):
    """Staff console sign-in: session lifetime and the login rate limit."""

    session_idle_minutes: int = Field(default=30, ge=1)
    session_max_hours: int = Field(default=10, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    # Failures on one username from other clients never lock it; each one past the limit only slows
    # further attempts on it (doubling from slowdown_seconds up to slowdown_max_seconds).
    login_slowdown_seconds: float = Field(default=1.0, ge=0)
    login_slowdown_max_seconds: float = Field(default=8.0, ge=0)


class AbuseRules(RuleSection):
    """Borrower-channel limits (applied by channels/guard.py in the Rasa process)."""

    messages_per_minute: int = Field(default=20, ge=1)
    max_message_chars: int = Field(default=1000, ge=1)


class InboundRules(RuleSection):
    """Inbound messages are claimed until Rasa has processed them (backend.services.channels): the
    owner's lease, renewed while it works; a claim older than this is taken over by a retry. The web
    chat shows a message as not delivered when it is not acknowledged this long after its sending."""

    claim_lease_seconds: float = Field(default=10, gt=0, le=300)
    webchat_delivery_seconds: int = Field(default=90, ge=5)


class ScoreBand(RuleSection):
    """One band of a service-quality scale: the score when the value is strictly ``below``, ``at_most``
    or ``at_least`` the threshold (exactly one of the three). Bands are tried top to bottom."""

    score: float = Field(ge=1, le=5)
    below: float | None = None
    at_most: float | None = None
    at_least: float | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> "ScoreBand":
        if sum(t is not None for t in (self.below, self.at_most, self.at_least)) != 1:
            raise ValueError("a score band needs exactly one of below, at_most, at_least")
        return self


class ScoreScale(RuleSection):
    bands: list[ScoreBand]
    otherwise: float = Field(ge=1, le=5)  # when no band matches


SERVICE_QUALITY_COMPONENTS = ("response_time", "resolution_rate", "satisfaction", "complaint_rate")


class ServiceQualityRules(RuleSection):
    """The dashboard's service-quality score (backend.services.dashboard): weights and bands."""

    weights: dict[str, float] = Field(default_factory=lambda: {
        "response_time": 0.30, "resolution_rate": 0.40, "satisfaction": 0.20, "complaint_rate": 0.10,
    })
    # Median first response, in minutes: under 5 -> 5, 5..10 -> 4, over 10 -> 3.
    response_minutes: ScoreScale = ScoreScale(
        bands=[ScoreBand(below=5, score=5), ScoreBand(at_most=10, score=4)], otherwise=3)
    # Share of handoff cases closed: 100% -> 5, 80-99% -> 4, 60-79% -> 3, below 60% -> 2.
    resolution_rate: ScoreScale = ScoreScale(
        bands=[ScoreBand(at_least=1.0, score=5), ScoreBand(at_least=0.8, score=4), ScoreBand(at_least=0.6, score=3)],
        otherwise=2)
    # Complaints per conversation: <= 1% -> 5, <= 3% -> 4, <= 5% -> 3, more -> 2.
    complaint_rate: ScoreScale = ScoreScale(
        bands=[ScoreBand(at_most=0.01, score=5), ScoreBand(at_most=0.03, score=4), ScoreBand(at_most=0.05, score=3)],
        otherwise=2)

    @model_validator(mode="after")
    def _check(self) -> "ServiceQualityRules":
        if set(self.weights) != set(SERVICE_QUALITY_COMPONENTS):
            raise ValueError(f"service_quality.weights must give exactly: {', '.join(SERVICE_QUALITY_COMPONENTS)}")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("service_quality.weights must not be negative")
        if abs(sum(Decimal(str(w)) for w in self.weights.values()) - 1) > Decimal("1e-9"):
            raise ValueError("service_quality.weights must add up to 1.0")
        return self


# Complaint categories (backend.models.ComplaintCategory): 催收方式 / 费用争议 / 服务态度 / 信息错误 / 隐私 / 其他.
COMPLAINT_CATEGORIES = values(ComplaintCategory)


class ComplaintRules(RuleSection):
    """Complaint tickets: the regulatory deadlines, linking, priority and the reminder pause."""

    decision_days: int = Field(default=15, ge=1)  # a decision within this many days of receipt
    max_total_days: int = Field(default=60, ge=1)  # one extension, up to this many days after receipt
    link_window_days: int = Field(default=7, ge=0)  # same borrower and category within this: linked
    high_priority_categories: list[str] = Field(default_factory=lambda: ["collection", "privacy"])
    pause_reminders_categories: list[str] = Field(default_factory=lambda: ["collection"])

    @model_validator(mode="after")
    def _check(self) -> "ComplaintRules":
        if self.max_total_days < self.decision_days:
            raise ValueError("complaints.max_total_days must not be shorter than decision_days")
        for name in ("high_priority_categories", "pause_reminders_categories"):
            unknown = set(getattr(self, name)) - set(COMPLAINT_CATEGORIES)
            if unknown:
                raise ValueError(f"complaints.{name}: unknown categories {sorted(unknown)}; "
                                 f"use {', '.join(COMPLAINT_CATEGORIES)}")
        return self


# Repayment-plan types (backend.models.PlanType) and the parts of a debt a waiver may cover.
PLAN_TYPES = values(PlanType)
WAIVABLE_PARTS = ("penalty_interest", "fees")


class PlanReviewThresholds(RuleSection):
    """A request beyond either threshold goes to staff review instead of the automatic pre-check."""

    outstanding_principal_above: Decimal = Field(default=Decimal("50000"), ge=0)
    days_past_due_above: int = Field(default=90, ge=0)


class RepaymentPlanRules(RuleSection):
    """Repayment-plan (hardship) requests: eligibility, limits and approval (backend.services.plans)."""

    max_total_term_months: int = Field(default=60, ge=1)  # loan start to the plan's last due date
    approved_plans_window_months: int = Field(default=12, ge=0)  # at most max_approved_in_window in it
    max_approved_in_window: int = Field(default=1, ge=1)
    staff_review_thresholds: PlanReviewThresholds = PlanReviewThresholds()
    supervisor_approval_above: Decimal = Field(default=Decimal("30000"), ge=0)
    instalment_min_months: int = Field(default=3, ge=1)
    instalment_max_months: int = Field(default=36, ge=1)
    defer_max_instalments: int = Field(default=6, ge=1)
    waivable: list[str] = Field(default_factory=lambda: ["penalty_interest", "fees"])
    decision_days: int = Field(default=3, ge=1)
    plan_types: list[str] = Field(default_factory=lambda: list(PLAN_TYPES))  # which types borrowers may ask for

    @model_validator(mode="after")
    def _check(self) -> "RepaymentPlanRules":
        if self.instalment_min_months > self.instalment_max_months:
            raise ValueError("repayment_plans.instalment_min_months must not exceed instalment_max_months")
        if self.instalment_max_months > self.max_total_term_months:
            raise ValueError("repayment_plans.instalment_max_months must not exceed max_total_term_months")
        unknown = set(self.waivable) - set(WAIVABLE_PARTS)
        if unknown or not self.waivable:
            raise ValueError(f"repayment_plans.waivable: use one or more of {', '.join(WAIVABLE_PARTS)}")
        unknown = set(self.plan_types) - set(PLAN_TYPES)
        if unknown or not self.plan_types:
            raise ValueError(f"repayment_plans.plan_types: use one or more of {', '.join(PLAN_TYPES)}")
        return self


class EarlySettlementRules(RuleSection):
    """Early settlement (提前结清): how far ahead a borrower may record the date they intend to settle."""

    intent_max_days_ahead: int = Field(default=90, ge=0)


# Kinds of outreach notice (backend.models.OutreachKind); the automated ones an unsubscribe may waive.
OUTREACH_AUTOMATED_KINDS = (
    "due_in_3_days", "due_in_1_day", "due_today", "overdue_1", "overdue_3", "overdue_7", "overdue_15",
    "overdue_30", "hardship_offer", "promise_reminder",
)
OUTREACH_CHANNELS = ("wechat", "sms", "web")


class ContactWindow(RuleSection):
    start: time = time(8, 0)
    end: time = time(21, 0)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hh_mm(cls, value: Any) -> Any:
        if not isinstance(value, (str, time)):  # unquoted 08:00 is a base-60 integer to YAML 1.1
            raise ValueError('write times as quoted "HH:MM"')
        return value

    @model_validator(mode="after")
    def _check(self) -> "ContactWindow":
        if not self.start < self.end:
            raise ValueError("outreach.contact_window: start must be before end")
        return self


class OutreachCaps(RuleSection):
    per_day: int = Field(default=1, ge=0)
    per_week: int = Field(default=3, ge=0)


class ServiceCaps(RuleSection):
    per_day: int = Field(default=3, ge=0)


class HardshipOfferRules(RuleSection):
    min_episodes: int = Field(default=2, ge=1)
    window_days: int = Field(default=183, ge=1)
    cooldown_days: int = Field(default=90, ge=1)
    valid_days: int = Field(default=3, ge=1)


class IdentityCheckRules(RuleSection):
    """Ask 「请问您是王**本人吗？」 before a notice that names a debt, on channels where the number may
    have changed hands. Read by the action server (actions/outreach.py), which asks."""

    channels: list[str] = Field(default_factory=lambda: ["sms"])
    kinds: list[str] = Field(default_factory=lambda: [
        "overdue_1", "overdue_3", "overdue_7", "overdue_15", "overdue_30", "promise_reminder", "hardship_offer"])

    @model_validator(mode="after")
    def _check(self) -> "IdentityCheckRules":
        if not set(self.channels) <= set(OUTREACH_CHANNELS):
            raise ValueError(f"outreach.identity_check.channels: among {', '.join(OUTREACH_CHANNELS)}")
        unknown = set(self.kinds) - set(OUTREACH_AUTOMATED_KINDS)
        if unknown:
            raise ValueError(f"outreach.identity_check.kinds: unknown kinds {sorted(unknown)}")
        return self


class OutreachRules(RuleSection):
    """Proactive outreach (backend.services.outreach): when, how often and where notices go."""

    contact_window: ContactWindow = ContactWindow()
    caps: OutreachCaps = OutreachCaps()
    service_caps: ServiceCaps = ServiceCaps()
    reminder_days_before: list[int] = Field(default_factory=lambda: [3, 1, 0])
    overdue_days_after: list[int] = Field(default_factory=lambda: [1, 3, 7, 15, 30])
    max_delay_days: int = Field(default=3, ge=1)
    hardship_offer: HardshipOfferRules = HardshipOfferRules()
    identity_check: IdentityCheckRules = IdentityCheckRules()
    contract_required_kinds: list[str] = Field(default_factory=lambda: ["overdue_30"])
    channel_order: list[str] = Field(default_factory=lambda: ["wechat", "sms", "web"])
    wechat_window_hours: int = Field(default=48, ge=1)
    wechat_template_outside_window: bool = False
    web_connected_minutes: int = Field(default=15, ge=1)
    no_channel_retry_minutes: int = Field(default=60, ge=1)
    handoff_recheck_minutes: int = Field(default=30, ge=1)
    service_valid_days: int = Field(default=14, ge=1)
    retry_backoff_minutes: list[int] = Field(default_factory=lambda: [1, 5, 30])
    max_attempts: int = Field(default=4, ge=1)
    stale_sending_seconds: int = Field(default=120, ge=1)
    batch_size: int = Field(default=200, ge=1)
    plan_every_minutes: int = Field(default=60, ge=1)
    dispatch_seconds: int = Field(default=30, ge=1)
    misfire_grace_seconds: int = Field(default=300, ge=1)
    lease_ttl_seconds: int = Field(default=90, ge=5)

    @model_validator(mode="after")
    def _check(self) -> "OutreachRules":
        if sorted(set(self.reminder_days_before), reverse=True) != self.reminder_days_before \
                or any(d < 0 for d in self.reminder_days_before):
            raise ValueError("outreach.reminder_days_before: distinct days >= 0, largest first")
        if sorted(set(self.overdue_days_after)) != self.overdue_days_after or any(d < 1 for d in self.overdue_days_after):
            raise ValueError("outreach.overdue_days_after: distinct days >= 1, smallest first")
        # Notice kinds are named after the offsets (due_in_3_days, overdue_7): only these exist.
        if not set(self.reminder_days_before) <= {3, 1, 0} or not set(self.overdue_days_after) <= {1, 3, 7, 15, 30}:
            raise ValueError("outreach: reminder days are among 3, 1, 0 and overdue days among 1, 3, 7, 15, 30")
        unknown = set(self.contract_required_kinds) - set(OUTREACH_AUTOMATED_KINDS)
        if unknown:
            raise ValueError(f"outreach.contract_required_kinds: unknown kinds {sorted(unknown)}")
        if sorted(self.channel_order) != sorted(OUTREACH_CHANNELS):
            raise ValueError(f"outreach.channel_order: each of {', '.join(OUTREACH_CHANNELS)} exactly once")
        if not self.retry_backoff_minutes or any(m < 0 for m in self.retry_backoff_minutes):
            raise ValueError("outreach.retry_backoff_minutes: one or more minutes >= 0")
        return self


class NluReviewRules(RuleSection):
    """The understanding inbox (理解收件箱): which messages go to review. Read by the Rasa side too
    (bot/review_broker.py), which sends them; the backend refuses what does not follow the rule."""

    # Besides every fallback, a message whose top intent scored below this is listed.
    review_below: float = Field(default=0.7, gt=0, le=1)
    # Longer messages are not listed (the bot does not send them, the backend refuses them).
    max_text_chars: int = Field(default=500, ge=1, le=1000)


class RetentionRules(RuleSection):
    """How long borrower free text and contact details are kept (backend.services.retention,
    ``python -m backend.cli anonymise``): conversation texts for ``conversation_days``, closed records
    (complaints, plan requests, settlement intents) for ``closed_record_days`` after they ended."""

    conversation_days: int = Field(default=365, ge=30)
    closed_record_days: int = Field(default=1095, ge=30)

    @model_validator(mode="after")
    def _check(self) -> "RetentionRules":
        if self.closed_record_days < self.conversation_days:
            raise ValueError("retention.closed_record_days must not be shorter than conversation_days")
        return self


class PenaltyRules(RuleSection):
    """Penalty interest (罚息): the contract rate times ``rate_multiplier``, accrued daily."""

    rate_multiplier: Decimal = Field(gt=0)
    day_count_basis: int = Field(gt=0)


class SegmentRules(RuleSection):
    """Customer segments: rules tried top to bottom, the first whose conditions hold wins."""

    risk_tier: list[SegmentRule] = Field(min_length=1)
    value_tier: list[SegmentRule] = Field(min_length=1)


class PromiseToPayRules(RuleSection):
    max_days_ahead: int = Field(default=30, ge=0)


class PaymentCheckRules(RuleSection):
    """「我已经还了」: how far back the bot looks for the payment (served to the action server)."""

    default_days_back: int = Field(default=7, ge=0)
    max_days_back: int = Field(default=90, ge=0)

    @model_validator(mode="after")
    def _check(self) -> "PaymentCheckRules":
        if self.max_days_back < self.default_days_back:
            raise ValueError("payment_check.max_days_back must not be shorter than default_days_back")
        return self


class ConversationFormRules(RuleSection):
    """Chat forms (served to the action server): idle expiry and how often an invalid answer is re-asked."""

    idle_minutes: int = Field(default=30, ge=1)
    max_reasks: int = Field(default=2, ge=0)


class BusinessRules(RuleSection):
    """config/business.yml, section by section as the file is written. Every key is known
    (RuleSection: extra="forbid"): a misspelt key stops the backend at start-up. The backend is the
    only reader of the file; the bot side gets what it needs from GET /api/v1/bot/rules."""

    timezone: str = "Asia/Shanghai"
    products: dict[str, Product] = Field(min_length=1)
    penalty: PenaltyRules
    segments: SegmentRules
    verification: VerificationRules = VerificationRules()
    promise_to_pay: PromiseToPayRules = PromiseToPayRules()
    payment_check: PaymentCheckRules = PaymentCheckRules()
    early_settlement: EarlySettlementRules = EarlySettlementRules()
    handoff: HandoffRules = HandoffRules()
    console: ConsoleRules = ConsoleRules()
    service_quality: ServiceQualityRules = ServiceQualityRules()
    complaints: ComplaintRules = ComplaintRules()
    repayment_plans: RepaymentPlanRules = RepaymentPlanRules()
    conversation_forms: ConversationFormRules = ConversationFormRules()
    outreach: OutreachRules = OutreachRules()
    nlu_review: NluReviewRules = NluReviewRules()
    retention: RetentionRules = RetentionRules()
    abuse: AbuseRules = AbuseRules()
    inbound: InboundRules = InboundRules()

    @field_validator("products", mode="before")
    @classmethod
    def _product_codes(cls, value: Any) -> Any:
        """A product's code is its key in the file."""
        if isinstance(value, dict):
            return {code: {**spec, "code": code} if isinstance(spec, dict) else spec for code, spec in value.items()}
        return value

    @model_validator(mode="after")
    def _check(self) -> "BusinessRules":
        for field, tiers in self.handoff.plan_segments.items():
            known = [r.tier for r in getattr(self.segments, field)]
            if not set(tiers) <= set(known):
                raise ValueError(f"handoff.plan_segments.{field}: tiers among {', '.join(known)}")
        return self

    # Short names the services use.
    @property
    def penalty_rate_multiplier(self) -> Decimal:
        return self.penalty.rate_multiplier

    @property
    def penalty_day_count_basis(self) -> int:
        return self.penalty.day_count_basis

    @property
    def risk_tier_rules(self) -> list[SegmentRule]:
        return self.segments.risk_tier

    @property
    def value_tier_rules(self) -> list[SegmentRule]:
        return self.segments.value_tier

    @property
    def promise_max_days_ahead(self) -> int:
        return self.promise_to_pay.max_days_ahead

    @classmethod
    def load(cls, path: Path) -> "BusinessRules":
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def effective_rules(rules: BusinessRules, settings: Settings) -> BusinessRules:
    """The business rules as this deployment can keep them. WeChat reaches a borrower outside its
    48-hour window only by a template message, so outreach.wechat_template_outside_window holds only
    when WECHAT_TEMPLATE_ID is set too; without it the flag is off here (and a warning says so)."""
    if rules.outreach.wechat_template_outside_window and not settings.wechat_template_id.strip():
        logging.getLogger(__name__).warning(
            "outreach.wechat_template_outside_window is true but WECHAT_TEMPLATE_ID is empty: "
            "outreach uses WeChat only inside its %d-hour window", rules.outreach.wechat_window_hours)
        outreach = rules.outreach.model_copy(update={"wechat_template_outside_window": False})
        return rules.model_copy(update={"outreach": outreach})
    return rules


DOMAIN_PATH = ROOT / "domain.yml"


@lru_cache
def contract_intents(path: Path = DOMAIN_PATH) -> tuple[str, ...]:
    """The intents a borrower's message is classified into: domain.yml's ``intents:`` in their order,
    without the EXTERNAL_ intents the backend and the scheduler trigger. The one list the backend
    checks intent names against (the understanding inbox)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = []
    for entry in raw.get("intents") or []:
        name = next(iter(entry)) if isinstance(entry, dict) else entry
        if isinstance(name, str) and not name.startswith("EXTERNAL_"):
            names.append(name)
    return tuple(names)


@lru_cache
def get_settings() -> Settings:
    return Settings()


@lru_cache
def load_rules(path: Path) -> BusinessRules:
    return BusinessRules.load(path)
