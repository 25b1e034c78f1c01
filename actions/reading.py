"""Reading the borrower's latest message: its text, intent and entities, and the form words.

Shared by every action module (account answers, workflow forms, notices); it imports no other
action module, so any of them may use it without an import circle. Words come from
config/form_words.yml.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import re

import yaml
from rasa_sdk import Tracker

import texts

from bot.nlu.normalize import normalize

WORDS_PATH = Path(__file__).resolve().parents[1] / "config" / "form_words.yml"


@lru_cache(maxsize=1)
def form_words() -> dict:
    return yaml.safe_load(WORDS_PATH.read_text(encoding="utf-8"))


def words(key: str) -> list[str]:
    return form_words()[key]


def message_text(tracker: Tracker) -> str:
    """The borrower's latest message, normalised; empty for a button payload (「/intent{...}」)."""
    text = tracker.latest_message.get("text") or ""
    return "" if text.startswith("/") else normalize(text).strip()


@lru_cache(maxsize=1)
def _a_not_a() -> re.Pattern:
    return re.compile(texts.raw("vocabulary.a_not_a"))


def has_any(text: str, key: str) -> bool:
    """Does the text hold one of the form words ``key``? An A-not-A question is no word of its own:
    「你们是不是把我信息卖给别人了」 asks something, it does not say 「不是」 (it closed a form as a no)."""
    text = _a_not_a().sub("", text)
    return any(w in text for w in words(key))


def latest_intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def entity(tracker: Tracker, name: str) -> str | None:
    """The first ``name`` entity of the latest message; a text value in simplified characters
    (「隱私」 from a synonym learnt on traditional training text reads as 「隐私」)."""
    for ent in tracker.latest_message.get("entities") or []:
        if ent.get("entity") == name:
            value = ent.get("value")
            return normalize(value) if isinstance(value, str) else value
    return None
