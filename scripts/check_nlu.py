"""Checks the NLU training data: examples per intent, duplicates, entity spans on token boundaries.

Run in the bot environment:  .venv-bot/bin/python -m scripts.check_nlu [--min 40]
Exit code 1 if an intent has fewer than --min distinct examples, an example appears under two
intents, or an entity annotation does not start and end on a jieba token boundary.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from bot.nlu.datasets import jieba_with_dictionaries, nlu_files
from bot.nlu.normalize import normalize

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--min", type=int, default=40)
    args = parser.parse_args()
    jieba = jieba_with_dictionaries()
    per_intent: dict[str, list[str]] = defaultdict(list)
    entity_counts: Counter = Counter()
    problems: list[str] = []
    for path in nlu_files():
        td = RasaYAMLReader().read(path)
        for msg in td.intent_examples:
            text = msg.get("text")
            per_intent[msg.get("intent")].append(text)
            norm = normalize(text)
            bounds = {0, len(norm)}
            for word, start, end in jieba.tokenize(norm):
                bounds.update((start, end))
            for ent in msg.get("entities", []):
                entity_counts[ent["entity"]] += 1
                if ent["start"] not in bounds or ent["end"] not in bounds:
                    toks = "/".join(w for w, _, _ in jieba.tokenize(norm))
                    problems.append(f"{path.name}: misaligned {ent['entity']} '{text[ent['start']:ent['end']]}' in '{text}' (tokens: {toks})")
    owner: dict[str, str] = {}
    for intent, texts in per_intent.items():
        for t in texts:
            key = normalize(t).strip()
            if key in owner and owner[key] != intent:
                problems.append(f"'{t}' is under both {owner[key]} and {intent}")
            owner[key] = intent
    for intent, texts in sorted(per_intent.items()):
        distinct = len({normalize(t).strip() for t in texts})
        flag = "" if distinct >= args.min else f"  <-- fewer than {args.min}"
        print(f"{intent:<28} {distinct:>4}{flag}")
        if flag:
            problems.append(f"{intent} has {distinct} distinct examples")
    print("entities:", dict(entity_counts))
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
