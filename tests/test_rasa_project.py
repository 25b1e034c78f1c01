"""The Rasa project's data, domain and config are consistent (rasa data validate)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_rasa_data_validate():
    proc = subprocess.run(
        [str(ROOT / ".venv-bot/bin/python"), "-m", "rasa", "data", "validate", "--fail-on-warnings"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize("stories", ["tests/test_stories.yml", "tests/test_understanding_stories.yml"])
def test_conversation_stories_predict_without_errors(tmp_path, stories):
    """Every test story in the file, through the trained model (NLU and dialogue)."""
    model = subprocess.run([str(ROOT / ".venv-bot/bin/python"), "-m", "bot.launch", "model"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    proc = subprocess.run(
        [str(ROOT / ".venv-bot/bin/python"), "-m", "rasa", "test", "core", "--model", model,
         "--stories", stories, "--fail-on-prediction-errors", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    failed = (tmp_path / "failed_test_stories.yml")
    detail = failed.read_text(encoding="utf-8")[:6000] if failed.exists() else ""
    assert proc.returncode == 0, detail or (proc.stdout[-3000:] + proc.stderr[-3000:])
