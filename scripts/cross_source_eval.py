"""Generalisation, not memorisation: hold out one source family of the NLU data at a time, train the
pipeline's intent model on the others, and score the held-out family as the running assistant
would answer it (FallbackClassifier's thresholds applied). Also the paraphrase check: positive
question pairs of the public corpora must get the same intent.

    .venv-bot/bin/python -m scripts.cross_source_eval            # -> reports/nlu/cross_source.{json,md}
    .venv-bot/bin/python -m scripts.cross_source_eval --sweep    # + a threshold sweep on the pooled rows
    .venv-bot/bin/python -m scripts.cross_source_eval --errors bq # the held-out misses of one family

Per family: accuracy = answered and right / all, wrong = answered and wrong / all, fallback = asked
to rephrase / all (the three add up to 1), macro-F1 over the family's intents (a fallback counts as
a miss). `make eval` runs it after Rasa's cross-validation.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import yaml
from sklearn.metrics import f1_score

from bot.nlu import encoder
from bot.nlu.datasets import HANDWRITTEN, REVIEWED, load_examples
from bot.nlu.linear_intent import (
    IntentModel, LinearIntentClassifier, calibrated_confidences, calibrated_temperature)
from bot.nlu.normalize import normalize

ROOT = Path(__file__).resolve().parents[1]

PAIRS = ROOT / "tests" / "nlu" / "paraphrase_pairs.tsv"
OUT = ROOT / "reports" / "nlu"


def pipeline() -> list:
    return yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))["pipeline"]


def step(name: str) -> dict:
    return next(s for s in pipeline() if s["name"].endswith(name))


def intent_config() -> dict:
    return {**LinearIntentClassifier.get_default_config(), **step("LinearIntentClassifier")}


def uses_encoder() -> bool:
    return any(s["name"].endswith("E5Featurizer") for s in pipeline())


def fallback_mask(probs: np.ndarray, threshold: float, ambiguity: float) -> np.ndarray:
    ordered = np.sort(probs, axis=1)[:, ::-1]
    return (ordered[:, 0] < threshold) | (ordered[:, 0] - ordered[:, 1] < ambiguity)


def scores(gold: np.ndarray, predicted: np.ndarray, asks: np.ndarray) -> dict:
    right = (predicted == gold) & ~asks
    answered = np.where(asks, "nlu_fallback", predicted)
    labels = sorted(set(gold))
    return {"n": int(len(gold)), "accuracy": float(right.mean()),
            "wrong": float((~asks & (predicted != gold)).mean()), "fallback": float(asks.mean()),
            "macro_f1": float(f1_score(gold, answered, labels=labels, average="macro", zero_division=0))}


class Data:
    def __init__(self, use_dense: bool) -> None:
        self.examples = load_examples()
        self.texts = np.array([e.text for e in self.examples], dtype=object)
        self.labels = np.array([e.intent for e in self.examples])
        self.families = np.array([e.family for e in self.examples])
        self.dense = encoder.cached_vectors(list(self.texts)) if use_dense else None

    def rows(self, mask: np.ndarray):
        return list(self.texts[mask]), (None if self.dense is None else self.dense[mask]), self.labels[mask]


def fit(config: dict, texts, dense, labels):
    temperature = calibrated_temperature(texts, dense, labels, config)
    return IntentModel(config).fit(texts, dense, labels), temperature


def held_out(data: Data, config: dict, family: str):
    """Train on every other family, return the held-out family's gold labels and probabilities."""
    test = data.families == family
    model, temperature = fit(config, *data.rows(~test))
    texts, dense, gold = data.rows(test)
    probs = calibrated_confidences(model, temperature, texts, dense)
    return gold, model.classes_, probs, texts


def paraphrase_check(model, temperature, classes, use_dense: bool, thresholds: dict) -> dict:
    """Both sides of each positive pair get the same answer (the same intent, or both a fallback)."""
    if not PAIRS.exists():
        return {}
    pairs = [line.split("\t")[:2] for line in PAIRS.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    left = [normalize(a) for a, _ in pairs]
    right = [normalize(b) for _, b in pairs]
    answers = []
    for side in (left, right):
        dense = encoder.cached_vectors(side) if use_dense else None
        probs = calibrated_confidences(model, temperature, side, dense)
        asks = fallback_mask(probs, thresholds["threshold"], thresholds["ambiguity_threshold"])
        answers.append(np.where(asks, "nlu_fallback", classes[probs.argmax(1)]))
    same = answers[0] == answers[1]
    both_answered = (answers[0] != "nlu_fallback") & (answers[1] != "nlu_fallback")
    return {"pairs": len(pairs), "same_answer": float(same.mean()),
            "both_answered": float(both_answered.mean()),
            "same_intent_when_both_answered": float(same[both_answered].mean()) if both_answered.any() else 0.0,
            "disagreements": [(a, b, x, y) for a, b, x, y, s in zip(left, right, answers[0], answers[1], same)
                              if not s][:40]}


def cross_validation(data: Data, config: dict) -> dict:
    """5-fold cross-validated intent macro-F1 (argmax, no fallback) on all the data and on the
    hand-written family alone (the measure of earlier sessions), for comparison with Rasa's run."""
    from sklearn.model_selection import StratifiedKFold

    out = {}
    for name, mask in (("all", np.ones(len(data.labels), dtype=bool)), (HANDWRITTEN, data.families == HANDWRITTEN)):
        texts, dense, labels = data.rows(mask)
        texts = np.array(texts, dtype=object)
        predicted = np.empty(len(labels), dtype=object)
        for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(texts, labels):
            model = IntentModel(config).fit(list(texts[train]), None if dense is None else dense[train], labels[train])
            predicted[test] = model.classes_[model.decisions(list(texts[test]),
                                                              None if dense is None else dense[test]).argmax(1)]
        out[name] = {"n": int(mask.sum()), "macro_f1": float(f1_score(labels, predicted, average="macro")),
                     "accuracy": float((predicted == labels).mean())}
    return out


def markdown(report: dict) -> str:
    rows = ["| held-out family | messages | accuracy | wrong answers | asked to rephrase | macro-F1 |",
            "|---|---|---|---|---|---|"]
    for family, s in report["families"].items():
        rows.append(f"| {family} | {s['n']} | {s['accuracy']:.3f} | {s['wrong']:.1%} | {s['fallback']:.1%} | "
                    f"{s['macro_f1']:.3f} |")
    p = report["pooled_public"]
    rows.append(f"| all public families (pooled) | {p['n']} | {p['accuracy']:.3f} | {p['wrong']:.1%} | "
                f"{p['fallback']:.1%} | {p['macro_f1']:.3f} |")
    text = "\n".join(rows)
    if report.get("cross_validation"):
        text += "\n\n5-fold cross-validation (intent macro-F1): " + ", ".join(
            f"{name} {v['macro_f1']:.3f} ({v['n']} examples)" for name, v in report["cross_validation"].items())
    if report.get("paraphrase"):
        q = report["paraphrase"]
        text += (f"\n\nParaphrase check ({q['pairs']} positive pairs of the public corpora' training splits): the same "
                 f"answer for both sides {q['same_answer']:.1%}; both answered {q['both_answered']:.1%}, and then the same "
                 f"intent {q['same_intent_when_both_answered']:.1%}.\n")
    return text


def sweep(pooled: list) -> list:
    gold = np.concatenate([g for g, _, _ in pooled])
    probs = np.concatenate([p for _, _, p in pooled])
    predicted = np.concatenate([c[p.argmax(1)] for _, c, p in pooled])
    out = []
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        for ambiguity in (0.0, 0.1, 0.2, 0.3):
            s = scores(gold, predicted, fallback_mask(probs, threshold, ambiguity))
            out.append({"threshold": threshold, "ambiguity_threshold": ambiguity, **s})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sweep", action="store_true", help="also sweep the fallback thresholds")
    parser.add_argument("--errors", metavar="FAMILY", help="print the held-out misses of this family")
    parser.add_argument("--no-dense", action="store_true", help="evaluate without the encoder features")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override intent classifier settings, e.g. dense_weight=2 C=1")
    args = parser.parse_args()
    config = intent_config()
    for item in args.set:
        key, value = item.split("=", 1)
        config[key] = yaml.safe_load(value)
    thresholds = step("FallbackClassifier")
    use_dense = uses_encoder() and not args.no_dense
    data = Data(use_dense)
    families = [f for f in sorted(set(data.families)) if f not in (HANDWRITTEN, REVIEWED)]
    report = {"config": {k: v for k, v in config.items() if k != "name"}, "encoder": use_dense,
              "thresholds": {k: thresholds[k] for k in ("threshold", "ambiguity_threshold")},
              "examples": dict(Counter(data.families)), "families": {}}
    pooled = []
    # The hand-written family is not held out: it is the only one with most of the contract's intents
    # (greetings, identity answers, promises, forms), so without it there is nothing to answer with.
    for family in families:
        gold, classes, probs, texts = held_out(data, config, family)
        asks = fallback_mask(probs, thresholds["threshold"], thresholds["ambiguity_threshold"])
        predicted = classes[probs.argmax(1)]
        report["families"][family] = scores(gold, predicted, asks)
        pooled.append((gold, classes, probs))
        if args.errors == family:
            for t, g, p, a, pr in sorted(zip(texts, gold, predicted, asks, probs.max(1)), key=lambda r: (r[1], r[2])):
                if p != g:
                    print(f"  {g:<26} -> {p:<26} {pr:.2f} {'(asks)' if a else 'WRONG'}  {t}")
        print(family, report["families"][family], flush=True)
    if pooled:
        gold = np.concatenate([g for g, _, _ in pooled])
        probs = np.concatenate([p for _, _, p in pooled])
        predicted = np.concatenate([c[p.argmax(1)] for _, c, p in pooled])
        report["pooled_public"] = scores(gold, predicted,
                                         fallback_mask(probs, thresholds["threshold"], thresholds["ambiguity_threshold"]))
        if args.sweep:
            report["sweep"] = sweep(pooled)
            for row in report["sweep"]:
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
    report["cross_validation"] = cross_validation(data, config)
    model, temperature = fit(config, *data.rows(np.ones(len(data.labels), dtype=bool)))
    report["paraphrase"] = paraphrase_check(model, temperature, model.classes_, use_dense, thresholds)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cross_source.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    (OUT / "cross_source.md").write_text(markdown(report) if pooled else "no public family yet\n", encoding="utf-8")
    print(markdown(report) if pooled else "no public family yet")


if __name__ == "__main__":
    main()
