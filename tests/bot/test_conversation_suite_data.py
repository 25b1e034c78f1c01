"""The conversation acceptance suite (tests/e2e/conversations/*.yml) is well-formed and held out:
no message a borrower says in it is an NLU training example (after the pipeline's normalisation),
so the suite measures understanding of new wording, not recall of the training data."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

pytest.importorskip("opencc")  # the bot environment (bot.nlu.normalize)

from bot.nlu.normalize import normalize  # noqa: E402
from tests.e2e.conversations import suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NLU_DIR = ROOT / "data" / "nlu"
# Rasa entity markup: [text](entity), [text]{"entity": ...}, [text]{...}(…) → text
_ENTITY = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})+")


def plain(example: str) -> str:
    return _ENTITY.sub(r"\1", example)


def training_examples() -> dict[str, Path]:
    """Every intent example under data/nlu (recursively), as plain normalised text -> file."""
    found: dict[str, Path] = {}
    for path in sorted(NLU_DIR.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            if not isinstance(block, dict) or "intent" not in block:
                continue
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    found.setdefault(normalize(plain(line[2:].strip())).strip(), path)
    return found


def test_the_entity_markup_is_stripped():
    assert plain('我想[明天](date)还[两千]{"entity": "amount", "value": "2000"}块') == "我想明天还两千块"
    assert plain("[分12期](plan_type)") == "分12期"


def test_the_training_data_is_read():
    examples = training_examples()
    assert len(examples) > 3000, len(examples)
    assert normalize("转人工") in examples


def test_scenarios_are_well_formed():
    scenarios = suite.load()
    problems = suite.validate(scenarios)
    assert not problems, "\n".join(problems)


def test_there_are_enough_scenarios_in_every_theme():
    scenarios = suite.load()
    assert len(scenarios) >= 80, len(scenarios)
    themes = Counter(sc["theme"] for sc in scenarios)
    assert len(themes) >= 5 and min(themes.values()) >= 5, themes


def test_no_message_is_a_training_example():
    examples = training_examples()
    clashes = [f"{sid}: 「{say}」 is in {examples[key].relative_to(ROOT)}"
               for sid, say in suite.says(suite.load())
               if (key := normalize(say).strip()) in examples]
    assert not clashes, "\n".join(clashes)


def test_every_scenario_asserts_a_record_or_what_must_not_be_said():
    """A conversation that checks nothing proves nothing."""
    record_keys = {"complaint", "plan", "promises", "settlement_intent", "handoff", "unsubscribed",
                   "identity_status", "no_figures", "no_debt"}
    loose = [sc["id"] for sc in suite.load() if not record_keys & set(sc["expect"])]
    assert not loose, loose
