"""Shared fixtures for the bot's pure-function unit tests (bot/nlu/entities.py, bot/nlu/normalize.py).

These tests need the bot environment (cn2an, jionlp, spaCy, OpenCC): `make test` runs this folder
with ``.venv-bot/bin/python`` and the rest of the suite with the app environment. Should the app
environment's pytest reach this folder anyway (a bare ``.venv-app/bin/python -m pytest``), the
unit-test modules are not collected rather than failing on imports.
"""
from __future__ import annotations

import importlib.util
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests import rules_snapshot

BOT_DEPS = ("cn2an", "jionlp", "opencc", "spacy", "yaml")
HAS_BOT_DEPS = all(importlib.util.find_spec(name) is not None for name in BOT_DEPS)

if not HAS_BOT_DEPS:
    collect_ignore_glob = ["test_entities*.py", "test_normalize*.py"]

# Monday 2026-11-23, 10:00 in Shanghai: every relative date in the tests is computed from here.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(autouse=True)
def served_rules():
    """bot/rules.py works by tests/data/bot_rules.json (what the backend serves for the shipped
    config/business.yml): no backend runs here."""
    yield from rules_snapshot.served_rules()


@pytest.fixture
def now() -> datetime:
    return NOW
