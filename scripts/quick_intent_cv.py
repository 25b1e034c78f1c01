"""A fast proxy for `make eval` while writing training data (seconds, not minutes): 5-fold
cross-validated macro-F1 of the pipeline's own intent model (bot/nlu/linear_intent.py, with the
encoder's vectors from the on-disk cache when config.yml has the E5Featurizer) on the
normalised text, the worst intents and the most frequent confusions. `make eval` runs the whole
Rasa pipeline and gives the reported numbers.

    .venv-bot/bin/python -m scripts.quick_intent_cv                      # summary
    .venv-bot/bin/python -m scripts.quick_intent_cv --errors deny affirm  # every miss touching these
    .venv-bot/bin/python -m scripts.quick_intent_cv --fallback   # + how often the fallback would ask
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from sklearn.metrics import classification_report, f1_score
from sklearn.model_selection import StratifiedKFold

import numpy as np
import yaml

from bot.nlu import encoder
from bot.nlu.datasets import load_examples
from bot.nlu.linear_intent import (
    IntentModel, LinearIntentClassifier, calibrated_confidences, calibrated_temperature)

ROOT = Path(__file__).resolve().parents[1]


def pipeline_step(name: str) -> dict:
    """A pipeline component's settings as config.yml has them."""
    steps = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))["pipeline"]
    return next(s for s in steps if s["name"].endswith(name))


def pipeline_config() -> dict:
    """The intent classifier's settings, defaults included."""
    return {**LinearIntentClassifier.get_default_config(), **pipeline_step("LinearIntentClassifier")}


def rows(dense, index):
    return None if dense is None else dense[index]


def cross_val_predict(texts: list, dense, labels: list, config: dict) -> np.ndarray:
    x, y = np.array(texts, dtype=object), np.array(labels)
    pred = np.empty(len(y), dtype=object)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        model = IntentModel(config).fit(list(x[train]), rows(dense, train), y[train])
        pred[test] = model.classes_[model.decisions(list(x[test]), rows(dense, test)).argmax(1)]
    return pred


def fallback_rates(texts: list, dense, labels: list, config: dict, thresholds: dict) -> str:
    """Held-out confidences as the pipeline computes them (the temperature fitted inside each
    training fold), against FallbackClassifier's threshold and ambiguity threshold."""
    x, y = np.array(texts, dtype=object), np.array(labels)
    top, margin, right = [], [], []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        temperature = calibrated_temperature(list(x[train]), rows(dense, train), y[train], config)
        model = IntentModel(config).fit(list(x[train]), rows(dense, train), y[train])
        probs = calibrated_confidences(model, temperature, list(x[test]), rows(dense, test))
        ordered = np.sort(probs, axis=1)[:, ::-1]
        top += list(ordered[:, 0])
        margin += list(ordered[:, 0] - ordered[:, 1])
        right += list(model.classes_[probs.argmax(1)] == y[test])
    ok = np.array(right)
    asks = (np.array(top) < thresholds["threshold"]) | (np.array(margin) < thresholds["ambiguity_threshold"])
    return (f"fallback: asks to rephrase {asks.mean():.1%} of held-out messages; answers the rest "
            f"{ok[~asks].mean():.1%} right; wrong answers {(~ok & ~asks).mean():.1%} of all messages")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--errors", nargs="*", metavar="INTENT",
                        help="list the misclassified examples whose true or predicted intent is one of these")
    parser.add_argument("--fallback", action="store_true",
                        help="also measure how often FallbackClassifier would ask to rephrase (~1 min)")
    args = parser.parse_args()
    examples = load_examples()
    texts, labels = [e.text for e in examples], [e.intent for e in examples]
    uses_encoder = any(s["name"].endswith("E5Featurizer")
                       for s in yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))["pipeline"])
    dense = encoder.cached_vectors(texts) if uses_encoder else None
    pred = cross_val_predict(texts, dense, labels, pipeline_config())
    report = classification_report(labels, pred, output_dict=True, zero_division=0)
    worst = sorted((v["f1-score"], k) for k, v in report.items() if k in set(labels))[:10]
    print(f"examples {len(texts)}, macro-F1 {f1_score(labels, pred, average='macro'):.3f}")
    for f1, intent in worst:
        print(f"  {intent:<28} F1 {f1:.3f}")
    confusions = Counter((a, b) for a, b in zip(labels, pred) if a != b)
    print("most confused (true -> predicted):")
    for (a, b), n in confusions.most_common(12):
        print(f"  {n:>3}  {a} -> {b}")
    if args.fallback:
        print(fallback_rates(texts, dense, labels, pipeline_config(), pipeline_step("FallbackClassifier")))
    if args.errors:
        wanted = set(args.errors)
        print("misclassified (true -> predicted):")
        for text, gold, guess in sorted(zip(texts, labels, pred), key=lambda row: (row[1], row[2])):
            if gold != guess and {gold, guess} & wanted:
                print(f"  {gold:<26} -> {guess:<26} {text}")


if __name__ == "__main__":
    main()
