"""The business rules the bot side works by in tests without a backend: tests/data/bot_rules.json,
exactly what GET /api/v1/bot/rules serves for the shipped config/business.yml
(tests/backend/test_bot_rules.py keeps the two equal)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from bot import rules

SNAPSHOT = Path(__file__).resolve().parent / "data" / "bot_rules.json"


def snapshot() -> dict:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def served_rules() -> Iterator[dict]:
    """The body of an autouse fixture: bot.rules works by the snapshot, never asking a backend."""
    with rules.override(snapshot()) as data:
        yield data
