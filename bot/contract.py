"""The backend's enums and phone pattern as the bot side reads them: config/contract.json, written by
``python -m backend.cli contract`` from backend/models/enums.py (tests/backend/test_contract.py keeps
the committed file in step). The bot never spells these values out itself.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

CONTRACT_FILE = Path(__file__).resolve().parents[1] / "config" / "contract.json"


@lru_cache(maxsize=1)
def contract() -> dict[str, Any]:
    return json.loads(CONTRACT_FILE.read_text(encoding="utf-8"))


def values(enum: str) -> tuple[str, ...]:
    """The values of one backend enum (e.g. ``values("channel")`` -> ("wechat", "sms", "web"))."""
    return tuple(contract()["enums"][enum])


def live(enum: str) -> tuple[str, ...]:
    """The statuses of a request still waiting for a decision (``plan_status``, ``complaint_status``)."""
    return tuple(contract()["live"][enum])


@lru_cache(maxsize=1)
def _phone() -> re.Pattern[str]:
    return re.compile(contract()["phone_pattern"])


def is_mobile(number: str) -> bool:
    """A mainland mobile number as the backend accepts it (optionally +86)."""
    return _phone().fullmatch(number) is not None
