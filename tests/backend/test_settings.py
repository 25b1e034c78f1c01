"""One settings model per environment (bot.settings.BotSettings, backend.core.config.Settings), both
reading .env.example < .env < the environment; the defaults in .env.example only; no process reads
os.environ but these two modules; one daily-window rule (backend.core.clock.DailyWindow)."""
from __future__ import annotations

import ast
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import bot.settings as bot_settings
from backend.core.clock import DailyWindow, earliest_send, in_window, next_window_start
from backend.core.config import Settings, load_rules
from bot.settings import BotSettings, derive, get_settings, published_values

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("actions", "bot", "channels", "backend", "scheduler", "scripts", "texts", "bench")

# Where the process environment may be touched outside the two settings modules, and why.
ENVIRON_ALLOWED = {
    # The settings modules themselves: the merge of .env.example, .env and the environment, and
    # apply_env, which hands the merged values to Rasa (endpoints/credentials interpolate ${...}).
    "bot/settings.py": "the bot's settings model and the stdlib merge both models use",
    "backend/core/config.py": "the app's settings model",
    # Not a setting: stack.py starts the services with the whole process environment (PATH, HOME,
    # locale, virtualenv) plus the merged settings.
    "scripts/stack.py": "passes the process environment on to the services it starts",
}
# A write, not a read: rasa_sdk 3.6 takes the action server's bind address only from SANIC_HOST
# (rasa_sdk.endpoint.run: os.environ.get("SANIC_HOST", "0.0.0.0")); it has no argument for it.
# bot/launch.py: the BLAS thread counts of the Rasa and action servers must be in the environment
# before NumPy is first imported (OpenBLAS reads them only from there).
ENVIRON_WRITES_ALLOWED = {"actions/auth_middleware.py", "bot/launch.py"}


def environ_uses(tree: ast.AST) -> list[tuple[int, bool]]:
    """(line, is_write) for every use of os.environ / os.getenv / from os import environ|getenv."""
    found: list[tuple[int, bool]] = []
    writes = {id(t.value) for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete))
              for t in (node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target])
              if isinstance(t, ast.Subscript)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv") \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            found.append((node.lineno, id(node) in writes))
        elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(a.name in ("environ", "environb", "getenv") for a in node.names):
            found.append((node.lineno, False))
    return found


def test_no_process_reads_the_environment_outside_the_settings_modules():
    offending = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")) if (ROOT / top).is_dir() else []:
            rel = path.relative_to(ROOT).as_posix()
            if rel in ENVIRON_ALLOWED:
                continue
            for line, is_write in environ_uses(ast.parse(path.read_text(encoding="utf-8"))):
                if not (is_write and rel in ENVIRON_WRITES_ALLOWED):
                    offending.append(f"{rel}:{line}")
    assert not offending, f"read settings through bot.settings.get_settings() or backend.core.config: {offending}"


def test_the_scan_sees_reads_and_tells_writes():
    tree = ast.parse("import os\nfrom os import getenv\na = os.environ.get('X')\nb = os.getenv('Y')\n"
                     "os.environ['Z'] = '1'\nc = dict(os.environ)\n")
    assert sorted(environ_uses(tree)) == [(2, False), (3, False), (4, False), (5, True), (6, False)]


# --------------------------------------------------------------------------- defaults in one place

def test_every_setting_has_its_default_in_env_example():
    example = published_values()
    missing = [f.alias for f in Settings.model_fields.values() if f.alias not in example]
    missing += [name.upper() for name in BotSettings.__fields__ if name.upper() not in example]
    assert not missing, f"add to .env.example (the one place of defaults): {missing}"


def test_the_backend_defaults_are_the_env_example_values():
    example = published_values()
    for name, field in Settings.model_fields.items():
        if field.alias == "SMS_OUTBOX_SHOW_CODES":  # false in code (the safe default), true in the file
            assert field.default is False and example["SMS_OUTBOX_SHOW_CODES"] == "true"
            continue
        assert str(field.default) == example[field.alias], field.alias
    # The bot's model has no defaults of its own (APP_FROZEN_DATE is optional: empty means today).
    assert all(f.required for f in BotSettings.__fields__.values() if f.name != "app_frozen_date")


def test_the_backend_started_as_the_readme_says_accepts_the_scheduler_and_the_actions_key():
    settings = Settings()
    example = published_values()
    callers = settings.api_keys()
    assert callers[example["SCHEDULER_API_KEY"]] == "scheduler"
    assert callers[example["BACKEND_API_KEY"]] == "actions"


# --------------------------------------------------------------------------- sources and derived values

@pytest.fixture
def files(tmp_path, monkeypatch):
    """A project with its own .env.example and .env (the real ones stay untouched)."""
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    (tmp_path / ".env.example").write_text(example.replace("WEBCHAT_TOKEN_MINUTES=30", "WEBCHAT_TOKEN_MINUTES=31")
                                           .replace("RASA_PORT=5005", "RASA_PORT=5105"), encoding="utf-8")
    (tmp_path / ".env").write_text("# local\nRASA_PORT=5205\nSMS_PUBLIC_URL=https://sms.example/hook\n", encoding="utf-8")
    monkeypatch.setattr(bot_settings, "EXAMPLE", tmp_path / ".env.example")
    monkeypatch.setattr(bot_settings, "LOCAL", tmp_path / ".env")
    for name in ("RASA_PORT", "RASA_URL", "WEBCHAT_TOKEN_MINUTES", "SMS_PUBLIC_URL", "APP_FROZEN_DATE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_both_models_read_env_example_then_env_then_the_environment(files, monkeypatch):
    assert Settings().webchat_token_minutes == 31  # .env.example
    assert Settings().rasa_port == get_settings().rasa_port == 5205  # .env over .env.example
    assert get_settings().sms_webhook_url == "https://sms.example/hook"
    monkeypatch.setenv("RASA_PORT", "5305")  # the environment over .env
    assert Settings().rasa_port == get_settings().rasa_port == 5305
    assert Settings(RASA_PORT="5405").rasa_port == get_settings(rasa_port=5405).rasa_port == 5405  # arguments first
    monkeypatch.setenv("APP_FROZEN_DATE", "2026-12-07")
    assert get_settings().app_frozen_date == date(2026, 12, 7) and Settings().frozen_date == "2026-12-07"


def test_rasa_url_is_worked_out_in_one_place(files, monkeypatch):
    monkeypatch.setenv("RASA_PORT", "5999")
    expected = "http://127.0.0.1:5999"
    assert Settings().rasa_url == get_settings().rasa_url == bot_settings.load_env()["RASA_URL"] == expected
    monkeypatch.setenv("RASA_URL", "http://rasa.internal:5005")
    assert Settings().rasa_url == get_settings().rasa_url == "http://rasa.internal:5005"


def test_relative_paths_are_made_absolute_against_the_project_root():
    settings = Settings(DATABASE_URL="sqlite:///var/x.db", SMS_OUTBOX_PATH="var/o.jsonl")
    assert settings.database_url == f"sqlite:///{ROOT / 'var' / 'x.db'}"
    assert settings.sms_outbox_path == ROOT / "var" / "o.jsonl"
    assert settings.business_rules_path == ROOT / "config" / "business.yml"
    assert get_settings(rasa_tracker_url="sqlite:///t.db").rasa_tracker_url == f"sqlite:///{ROOT / 't.db'}"
    env = derive({"DATABASE_URL": "sqlite:///var/x.db", "RASA_TRACKER_URL": "postgresql://h/db",
                  "RASA_LOCK_STORE_URL": "redis://cache:6380/4", "RASA_PORT": "5005"})
    assert env["DATABASE_URL"] == settings.database_url and env["RASA_TRACKER_DIALECT"] == "postgresql"
    assert (env["RASA_LOCK_STORE_HOST"], env["RASA_LOCK_STORE_PORT"], env["RASA_LOCK_STORE_DB"]) == ("cache", "6380", "4")


# --------------------------------------------------------------------------- one daily-window rule

RULES = load_rules(ROOT / "config" / "business.yml")


def test_the_daily_window_is_in_the_configured_timezone():
    tz = ZoneInfo(RULES.timezone)
    contact = DailyWindow.contact(RULES)
    assert contact.tz == tz and (contact.start, contact.end) == (RULES.outreach.contact_window.start,
                                                                  RULES.outreach.contact_window.end)
    other = RULES.model_copy(update={"timezone": "Europe/Berlin"})
    assert DailyWindow.contact(other).tz == ZoneInfo("Europe/Berlin")
    assert DailyWindow.staffed(other).tz == ZoneInfo("Europe/Berlin")


def test_outreach_and_handoff_use_the_same_window_rule():
    from backend.services import handoff

    tz = ZoneInfo(RULES.timezone)
    staffed = DailyWindow.staffed(RULES)
    cfg = RULES.outreach
    for hour in range(24):
        moment = datetime(2026, 12, 7, hour, 30, tzinfo=tz)
        assert handoff.is_staffed(RULES, moment) == staffed.contains(moment)
        assert handoff.next_staffed_at(RULES, moment) == staffed.next_start(moment)
        assert in_window(cfg, tz, moment) == DailyWindow.contact(RULES).contains(moment)
        assert next_window_start(cfg, tz, moment) == DailyWindow.contact(RULES).next_start(moment)
        assert earliest_send(cfg, tz, moment) == DailyWindow.contact(RULES).earliest(moment)
    naive = datetime(2026, 12, 7, 7, 0)  # SQLite's naive wall time: in the business timezone
    assert DailyWindow.contact(RULES).earliest(naive) == datetime.combine(date(2026, 12, 7), cfg.contact_window.start, tzinfo=tz)


def test_a_window_closed_on_some_days():
    tz = ZoneInfo("Asia/Shanghai")
    weekdays = DailyWindow(time(9), time(18), tz, (1, 2, 3, 4, 5))
    friday_evening = datetime(2026, 12, 11, 19, 0, tzinfo=tz)
    assert weekdays.on(date(2026, 12, 12)) is None
    assert weekdays.next_start(friday_evening) == datetime(2026, 12, 14, 9, 0, tzinfo=tz)
    assert weekdays.seconds_inside(friday_evening, datetime(2026, 12, 14, 10, 0, tzinfo=tz)) == 3600
