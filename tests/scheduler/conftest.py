"""Process-level scheduler tests: the backend tests' helpers (fake Rasa, test book) are reused."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (str(ROOT), str(ROOT / "tests" / "backend")):
    if p not in sys.path:
        sys.path.insert(0, p)
