"""When the suite runs in the app environment (`make test`), run tests/bot in the bot environment.

The NLU helpers import cn2an, jionlp, spaCy and OpenCC, which only .venv-bot has; conftest.py
skips collecting the unit-test modules here, and this test runs them where they can import.
"""
from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT_PY = ROOT / ".venv-bot/bin/python"
HAS_BOT_DEPS = all(importlib.util.find_spec(n) is not None for n in ("cn2an", "jionlp", "opencc", "spacy", "yaml"))


@pytest.mark.skipif(HAS_BOT_DEPS, reason="already running in the bot environment: the unit tests run directly")
def test_bot_unit_tests_pass_in_bot_env():
    if not BOT_PY.exists():
        pytest.fail(f"{BOT_PY} is missing: run `make envs` first")
    proc = subprocess.run(
        [str(BOT_PY), "-m", "pytest", "tests/bot", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
