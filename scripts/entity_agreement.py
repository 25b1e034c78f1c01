"""How well the rule-based extractor agrees with the annotations in data/nlu (span + type).

    .venv-bot/bin/python -m scripts.entity_agreement [-v]
"""
from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from bot.nlu.entities import SHANGHAI, extract
from bot.nlu.normalize import normalize

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    verbose = "-v" in sys.argv
    now = datetime(2026, 11, 23, 10, tzinfo=SHANGHAI)
    tp, fp, fn = Counter(), Counter(), Counter()
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for msg in RasaYAMLReader().read(path).intent_examples:
            text = normalize(msg.get("text"))
            gold = {(e["entity"], e["start"], e["end"]) for e in msg.get("entities", [])}
            pred = {(e.entity, e.start, e.end) for e in extract(text, now)}
            for g in gold & pred:
                tp[g[0]] += 1
            for p in pred - gold:
                fp[p[0]] += 1
                if verbose:
                    print(f"FP {p[0]:<18} '{text[p[1]:p[2]]}' in {text}")
            for g in gold - pred:
                fn[g[0]] += 1
                if verbose:
                    print(f"FN {g[0]:<18} '{text[g[1]:g[2]]}' in {text}")
    total = Counter()
    for name in sorted(set(tp) | set(fp) | set(fn)):
        p = tp[name] / max(tp[name] + fp[name], 1)
        r = tp[name] / max(tp[name] + fn[name], 1)
        f = 2 * p * r / max(p + r, 1e-9)
        print(f"{name:<20} P={p:.3f} R={r:.3f} F1={f:.3f}  (tp={tp[name]} fp={fp[name]} fn={fn[name]})")
        total.update(tp=tp[name], fp=fp[name], fn=fn[name])
    p = total["tp"] / max(total["tp"] + total["fp"], 1)
    r = total["tp"] / max(total["tp"] + total["fn"], 1)
    print(f"{'micro':<20} P={p:.3f} R={r:.3f} F1={2 * p * r / max(p + r, 1e-9):.3f}")


if __name__ == "__main__":
    main()
