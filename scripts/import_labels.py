"""Turns labelled real customer messages into training files, one per source family.

    .venv-bot/bin/python -m scripts.import_labels LABELS_DIR

LABELS_DIR holds the labellers' TSV files (id, intent, text, note; docs/nlu-labeling.md says how they
were labelled) and relabel.tsv (text, intent, reason: consistency decisions taken afterwards, applied
on top); the id prefix names the source (bq-, atec-, thano-, yld-, unionpay-). Written:
data/nlu/real/<family>.yml, examples grouped by intent, entities marked where the rule-based
extractor finds them (bot/nlu/datasets.annotate). Dropped, and counted: SKIP lines, texts with
Rasa markup characters, a text given two intents (within or across sources: nobody could tell),
and texts the hand-written data already has (same intent: redundant; another intent: the
hand-written label stands). The raw corpora stay outside the repository (docs/data-sources.md).
A one-time tool: the files it wrote are maintained by hand since.
"""
from __future__ import annotations

import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from bot.nlu.datasets import HANDWRITTEN, REAL_DIR, annotate, load_examples
from bot.nlu.normalize import normalize

ROOT = Path(__file__).resolve().parents[1]

FAMILIES = {"bq": "bq_webank", "atec": "atec_antfin", "thano": "collection_calls", "yld": "collection_calls",
            "unionpay": "bank_unionpay"}
HEADERS = {
    "bq_webank": "WeBank 微粒贷 customer questions (BQ corpus, training split only). Licence: non-commercial "
                 "research only (HIT Shenzhen / Baidu) — see docs/data-sources.md before any commercial use.",
    "atec_antfin": "Ant Financial 花呗/借呗 customer questions (ATEC 2018 similarity data, training file). "
                   "Licence: none stated — see docs/data-sources.md.",
    "collection_calls": "Replies to outbound collection and due-date reminder call bots (zh-gy/thano_cnn, "
                        "yalong9528/rasa). See docs/data-sources.md.",
    "bank_unionpay": "Questions to a bank card customer-service bot (UnionPay 95516 FAQ data, "
                     "qiu997018209/TensorFlow). Licence: none stated — see docs/data-sources.md.",
}
# The intent contract: domain.yml's intents, without the EXTERNAL_ ones the system sends itself.
INTENTS = {i for i in yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["intents"]
           if isinstance(i, str) and not i.startswith("EXTERNAL_")}
MARKUP = set("[]{}")
# Near-duplicates (templated FAQ lines such as 「X银联客服电话」 for thirty countries) teach one phrasing
# thirty times: within a family and intent, a text whose character bigrams overlap this much with
# one already kept is dropped.
NEAR_DUPLICATE = 0.6


def bigrams(text: str) -> set:
    return {text[i:i + 2] for i in range(len(text) - 1)} or {text}


def near_duplicate(text: str, kept: list) -> bool:
    grams = bigrams(text)
    return any(len(grams & other) / len(grams | other) >= NEAR_DUPLICATE for other in kept)


def read_relabels(directory: Path) -> dict[str, str]:
    """relabel.tsv (text, intent, why): consistency decisions taken after labelling, applied on top."""
    path = directory / "relabel.tsv"
    if not path.exists():
        return {}
    return {text: intent for text, intent, *_ in (line.split("\t") for line in path.read_text(encoding="utf-8").splitlines())}


def read_labels(directory: Path) -> list[tuple[str, str, str]]:
    relabels = read_relabels(directory)
    rows = []
    for path in sorted(directory.glob("*.labels.tsv")):
        with path.open(encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                family = FAMILIES[row["id"].split("-")[0]]
                text = (row["text"] or "").strip()
                rows.append((family, relabels.get(text, row["intent"].strip()), text))
    return rows


def main() -> None:
    rows = read_labels(Path(sys.argv[1]))
    stats: Counter = Counter()
    handwritten = {e.text.strip(): e.intent for e in load_examples() if e.family == HANDWRITTEN}
    labels_of: dict[str, set] = defaultdict(set)
    for family, intent, text in rows:
        if intent in INTENTS and text:
            labels_of[normalize(text).strip()].add(intent)
    kept: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    kept_grams: dict[tuple, list] = defaultdict(list)
    seen: set = set()
    for family, intent, text in rows:
        key = normalize(text).strip()
        if intent == "SKIP":
            stats["skipped by the labeller"] += 1
        elif intent not in INTENTS:
            raise SystemExit(f"unknown intent {intent!r} for {text!r}")
        elif not text or MARKUP & set(text):
            stats["markup characters"] += 1
        elif len(labels_of[key]) > 1:
            stats["two intents for one text"] += 1
        elif key in handwritten:
            stats["already in the hand-written data"] += 1
        elif key in seen:
            stats["repeated"] += 1
        elif near_duplicate(key, kept_grams[family, intent]):
            stats["near-duplicate of a kept text"] += 1
        else:
            seen.add(key)
            kept_grams[family, intent].append(bigrams(key))
            kept[family][intent].append(text)
            stats[f"kept: {family}"] += 1
    REAL_DIR.mkdir(parents=True, exist_ok=True)
    for family, by_intent in sorted(kept.items()):
        lines = ['version: "3.1"', f"# {HEADERS[family]}",
                 "# Made by scripts/import_labels.py from labelled real messages, product names neutralised",
                 "# (docs/nlu-labeling.md, docs/data-sources.md); entities marked by the rule-based extractor.",
                 "# Maintained here: correct a label in this file, keeping the family consistent.",
                 "nlu:"]
        for intent in sorted(by_intent):
            lines += [f"  - intent: {intent}", "    examples: |"]
            lines += [f"      - {annotate(text)}" for text in by_intent[intent]]
        (REAL_DIR / f"{family}.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for key, value in sorted(stats.items()):
        print(f"{key:<36} {value}")


if __name__ == "__main__":
    main()
