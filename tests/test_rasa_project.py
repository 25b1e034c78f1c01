"""The Rasa project's data, domain and config are consistent (rasa data validate)."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rasa_data_validate():
    proc = subprocess.run(
        [str(ROOT / ".venv-bot/bin/python"), "-m", "rasa", "data", "validate", "--fail-on-warnings"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
