"""The NLU training data by source family, for the checks and the evaluations.

- ``handwritten``: data/nlu/*.yml, written by the team (docs/nlu-guidelines.md);
- one family per file under data/nlu/real/: real customer messages mined from a public corpus and
  labelled onto our contract (docs/nlu-labeling.md, sources in docs/data-sources.md);
- ``reviewed``: data/nlu/reviewed.yml, live messages a supervisor confirmed in the console's
  understanding inbox (exported by ``backend.cli export-nlu-review``).

Rasa trains on all of them (it reads data/ recursively); the cross-source evaluation holds out one
family at a time (scripts/cross_source_eval.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, List, Optional

from bot.nlu.normalize import normalize

ROOT = Path(__file__).resolve().parents[2]
NLU_DIR = ROOT / "data" / "nlu"
REAL_DIR = NLU_DIR / "real"
HANDWRITTEN = "handwritten"
REVIEWED = "reviewed"


@dataclass(frozen=True)
class Example:
    text: str  # normalised as the pipeline sees it (OpenCC t2s, half-width)
    raw: str
    intent: str
    family: str
    path: Path


def family_of(path: Path) -> str:
    if path.parent == REAL_DIR:
        return path.stem
    if path.name == "reviewed.yml":
        return REVIEWED
    return HANDWRITTEN


def nlu_files(root: Path = NLU_DIR) -> List[Path]:
    return sorted(root.rglob("*.yml"))


def read_file(path: Path) -> Iterator[Example]:
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    family = family_of(path)
    for message in RasaYAMLReader().read(path).intent_examples:
        raw = message.get("text")
        yield Example(normalize(raw), raw, message.get("intent"), family, path)


def load_examples(root: Path = NLU_DIR) -> List[Example]:
    return [example for path in nlu_files(root) for example in read_file(path)]


@lru_cache(maxsize=1)
def jieba_with_dictionaries():
    """jieba with the project's user dictionaries (bot/dictionary), as the tokenizer loads them."""
    import jieba

    for path in sorted((ROOT / "bot" / "dictionary").glob("*")):
        jieba.load_userdict(str(path))
    return jieba


def _token_bounds(text: str) -> set:
    jieba = jieba_with_dictionaries()
    bounds = {0, len(text)}
    for _, start, end in jieba.tokenize(text):
        bounds.update((start, end))
    return bounds


def annotate(raw: str, only: Optional[set] = None) -> str:
    """The example in Rasa's markup, entities marked where the rule-based extractor finds them
    (spans widened to jieba token boundaries, as the pipeline does). For data we did not write by
    hand (real customer messages): it keeps the entity evaluation from counting those as misses;
    entity quality is measured on the hand-annotated examples."""
    from bot.nlu.entities import extract

    text = normalize(raw)
    bounds = sorted(_token_bounds(text))
    out, cursor = [], 0
    for ent in extract(text):
        if only is not None and ent.entity not in only:
            continue
        start = max(b for b in bounds if b <= ent.start)
        end = min(b for b in bounds if b >= ent.end)
        if start < cursor:
            continue
        out.append(raw[cursor:start])
        span = raw[start:end]
        if ent.role:
            out.append(f'[{span}]{{"entity": "{ent.entity}", "value": "{ent.value}", "role": "{ent.role}"}}')
        elif ent.entity == "product":
            out.append(f'[{span}]{{"entity": "{ent.entity}", "value": "{ent.value}"}}')
        else:
            out.append(f"[{span}]({ent.entity})")
        cursor = end
    out.append(raw[cursor:])
    return "".join(out)
