"""tests/channels: the connectors' unit tests (test_guard.py) work by the rules the backend serves for
the shipped config/business.yml (tests/data/bot_rules.json); the end-to-end modules here start a real
backend, which the Rasa process asks."""
from __future__ import annotations

import pytest

from tests import rules_snapshot


@pytest.fixture(autouse=True)
def served_rules():
    yield from rules_snapshot.served_rules()
