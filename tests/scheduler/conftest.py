"""Process-level scheduler tests: the backend tests' helpers (fake Rasa, test book) are reused."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
