"""The NLU data by source family (bot/nlu/datasets.py), the markup of mined examples, and the
cross-source evaluation's arithmetic (scripts/cross_source_eval.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rasa")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

from bot.nlu.datasets import HANDWRITTEN, NLU_DIR, REAL_DIR, REVIEWED, annotate, family_of, load_examples  # noqa: E402
from scripts.cross_source_eval import PAIRS, fallback_mask, scores  # noqa: E402


def test_families_come_from_the_file_a_example_lives_in():
    assert family_of(NLU_DIR / "account.yml") == HANDWRITTEN
    assert family_of(REAL_DIR / "bq_webank.yml") == "bq_webank"
    assert family_of(NLU_DIR / "reviewed.yml") == REVIEWED


def test_every_public_family_is_present_and_documented():
    families = {e.family for e in load_examples()}
    documented = (ROOT / "docs" / "data-sources.md").read_text(encoding="utf-8")
    for family in families - {HANDWRITTEN, REVIEWED}:
        assert f"`{family}`" in documented, f"{family} is not in docs/data-sources.md"
    assert {"bq_webank", "atec_antfin", "collection_calls", "bank_unionpay"} <= families


def test_mined_examples_carry_no_other_lenders_brand():
    """Product names were neutralised (docs/nlu-labeling.md): the intent model must learn the
    question, not the brand; brands are the product entity's job."""
    brands = ("花呗", "借呗", "微粒贷", "白条", "金条", "蚂蚁", "微众")
    leaked = [e.raw for e in load_examples() if e.family not in (HANDWRITTEN, REVIEWED)
              and any(b in e.text for b in brands) and "用" not in e.text]
    assert leaked == []


def test_annotation_marks_what_the_extractor_finds_on_token_boundaries():
    assert annotate("京东白条这期账单是多少") == \
        '京东[白条]{"entity": "product", "value": "other_lender", "role": "elsewhere"}这期账单是多少'
    assert annotate("明天还两千五") == "[明天](date)还[两千五](amount)"
    assert annotate("我在你们这借的钱利息多少", only={"product"}) == \
        '我[在你们这借的]{"entity": "product", "value": "ours"}钱利息多少'


def test_the_paraphrase_pairs_are_not_training_examples():
    known = {e.text.strip() for e in load_examples()}
    from bot.nlu.normalize import normalize

    rows = [line.split("\t") for line in PAIRS.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    assert len(rows) == 600
    assert not [r for r in rows if normalize(r[0]).strip() in known or normalize(r[1]).strip() in known]


def test_scores_split_every_message_into_right_wrong_or_asked():
    gold = np.array(["a", "a", "b", "b", "c"])
    predicted = np.array(["a", "b", "b", "a", "c"])
    asks = np.array([False, False, False, True, True])
    s = scores(gold, predicted, asks)
    assert (s["n"], s["accuracy"], s["wrong"], s["fallback"]) == (5, 0.4, 0.2, 0.4)
    assert s["accuracy"] + s["wrong"] + s["fallback"] == pytest.approx(1.0)


def test_fallback_mask_uses_the_threshold_and_the_ambiguity_margin():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.65, 0.35], [0.62, 0.38]])
    assert fallback_mask(probs, 0.6, 0.1).tolist() == [False, True, False, False]
    assert fallback_mask(probs, 0.6, 0.25).tolist() == [False, True, False, True]
