"""The bot environment's settings model (bot.settings.BotSettings on pydantic 1.10) and its clock:
.env.example < .env < the environment < arguments, read again on every get_settings()."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import bot.settings as bot_settings
from bot import clock
from bot.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_then_env_then_the_environment(tmp_path, monkeypatch):
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    (tmp_path / ".env.example").write_text(example.replace("BACKEND_URL=http://127.0.0.1:8000",
                                                           "BACKEND_URL=http://example-default:8000"), encoding="utf-8")
    monkeypatch.setattr(bot_settings, "EXAMPLE", tmp_path / ".env.example")
    monkeypatch.setattr(bot_settings, "LOCAL", tmp_path / ".env")
    for name in ("BACKEND_URL", "BACKEND_API_KEY", "RASA_PORT", "RASA_URL", "LOAN_ASSISTANT_CACHE"):
        monkeypatch.delenv(name, raising=False)
    assert get_settings().backend_url == "http://example-default:8000"
    (tmp_path / ".env").write_text("BACKEND_URL=http://local:8000\nRASA_PORT=5105\n", encoding="utf-8")
    assert get_settings().backend_url == "http://local:8000"
    assert get_settings().rasa_url == "http://127.0.0.1:5105"
    assert get_settings().sms_webhook_url == "http://127.0.0.1:5105/webhooks/sms/webhook"
    monkeypatch.setenv("BACKEND_URL", "http://from-env:8000")
    monkeypatch.setenv("LOAN_ASSISTANT_CACHE", str(tmp_path / "cache"))
    settings = get_settings()
    assert settings.backend_url == "http://from-env:8000" and settings.cache_dir == tmp_path / "cache"
    assert get_settings(backend_url="http://arg:8000").backend_url == "http://arg:8000"
    assert settings.backend_api_key == "dev-actions-key"


def test_the_bot_clock_follows_app_frozen_date(monkeypatch):
    monkeypatch.setenv("APP_FROZEN_DATE", "2026-12-07")
    assert clock.today() == date(2026, 12, 7) and clock.now().tzinfo is not None
    monkeypatch.setenv("APP_FROZEN_DATE", "")
    assert get_settings().app_frozen_date is None and clock.today() == clock.now().date()
