"""Policy texts from config/knowledge_base.yml (one editable file, reviewed by compliance)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

KB_PATH = Path(__file__).resolve().parents[1] / "config" / "knowledge_base.yml"
RULES_PATH = Path(__file__).resolve().parents[1] / "config" / "business.yml"


@lru_cache(maxsize=1)
def _texts() -> dict[str, str]:
    return yaml.safe_load(KB_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def business_rules() -> dict:
    """config/business.yml as plain data: the action server reads the rules the backend enforces."""
    return yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))


def _penalty_multiplier() -> str:
    return str(business_rules()["penalty"]["rate_multiplier"])


def has_kb(key: str) -> bool:
    return key in _texts()


def kb(key: str, **values) -> str:
    multiplier = _penalty_multiplier()
    values.setdefault("penalty_multiplier", multiplier)
    values.setdefault("penalty_markup", f"{(float(multiplier) - 1) * 100:.0f}")
    return _texts()[key].format(**values)
