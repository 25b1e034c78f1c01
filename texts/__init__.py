"""The text catalogue: everything a borrower reads, in one place a compliance review can read.

Files ``texts/zh/<part>.yml`` hold nested mappings of Chinese texts with ``{placeholders}``; a text's
key is ``<part>.<path>`` (e.g. ``verification.code_sent``). Both environments import this module
(standard library and PyYAML only): the action server, the channel connectors, the backend (decision
notices, outreach, refusals shown to borrowers, Chinese labels of enums staff see).

The Rasa domain's ``responses`` stay in domain.yml (Rasa reads them there); ``everything()`` adds
them, so the wording check (tests/bot/test_outreach_wording.py) and a review see the whole catalogue.

One part is not read by borrowers: ``vocabulary`` (texts/zh/vocabulary.yml), the words and patterns
the code matches in their messages (``words(key)`` for a list, ``raw(key)`` for a pattern);
``everything()`` leaves it out. No Chinese string stays in actions/ or channels/
(tests/bot/test_no_chinese_literals.py, which also checks that every key named in code exists and
gets its placeholders).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from string import Formatter
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEXTS = Path(__file__).resolve().parent / "zh"


def _flatten(prefix: str, node: Any, out: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):  # YAML 1.1 reads a bare on/off/yes/no key as a boolean
                raise ValueError(f"texts: key {key!r} under {prefix or 'the top'} is not a name (quote it)")
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out)
    elif isinstance(node, str):
        out[prefix] = node.strip()
    elif isinstance(node, list) and all(isinstance(v, str) for v in node):
        for i, value in enumerate(node):
            out[f"{prefix}.{i}"] = value.strip()
    else:
        raise ValueError(f"texts: {prefix} is neither a text nor a mapping of texts")


@lru_cache(maxsize=1)
def catalogue() -> dict[str, str]:
    """Every catalogue text by key (files texts/zh/*.yml; the file name is the key's first part)."""
    out: dict[str, str] = {}
    for path in sorted(TEXTS.glob("*.yml")):
        _flatten(path.stem, yaml.safe_load(path.read_text(encoding="utf-8")) or {}, out)
    return out


def has(key: str) -> bool:
    return key in catalogue()


def raw(key: str) -> str:
    """The text with its placeholders unfilled (KeyError names a missing key)."""
    try:
        return catalogue()[key]
    except KeyError:
        raise KeyError(f"texts: no text {key!r} in texts/zh/") from None


def text(key: str, **values: Any) -> str:
    """The text for ``key`` with its placeholders filled; a missing value is an error, not a gap."""
    return raw(key).format(**values)


def placeholders(key: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in Formatter().parse(raw(key)) if name}


def section(prefix: str) -> dict[str, str]:
    """The texts under ``prefix.`` by their remaining key (e.g. labels of one enum)."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in catalogue().items() if k.startswith(prefix + ".")}


def words(key: str) -> list[str]:
    """A list of words (``vocabulary.<name>``: what the code matches in messages), in file order."""
    found = list(section(key).values())
    if not found:
        raise KeyError(f"texts: no words {key!r} in texts/zh/")
    return found


def groups(prefix: str) -> dict[str, dict[str, str]]:
    """The entries under ``prefix.`` by their id, each a mapping of its fields, in file order
    (e.g. ``groups("canned")`` → ``{"greeting": {"title": ..., "text": ...}, ...}``)."""
    out: dict[str, dict[str, str]] = {}
    for key, value in section(prefix).items():
        entry, _, field = key.partition(".")
        out.setdefault(entry, {})[field] = value
    return out


def label(enum: str, value: Any) -> str:
    """The Chinese label staff see for an enum value (``labels.<enum>.<value>``); the value itself
    when the catalogue has none (never an error in a page)."""
    return catalogue().get(f"labels.{enum}.{value}", str(value))


@lru_cache(maxsize=1)
def domain_responses() -> dict[str, list[str]]:
    """The Rasa domain's response texts (domain.yml ``responses``) by response name."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8")) or {}
    out: dict[str, list[str]] = {}
    for name, variants in (domain.get("responses") or {}).items():
        out[name] = [v["text"] for v in variants if isinstance(v, dict) and v.get("text")]
        for v in variants:
            for b in (v.get("buttons") or []) if isinstance(v, dict) else []:
                out[name].append(b.get("title", ""))
    return out


VOCABULARY = "vocabulary"  # the part of words matched in messages: nothing a borrower reads


def everything() -> dict[str, str]:
    """The whole catalogue as a reviewer reads it: catalogue texts and domain responses (the
    recognition vocabulary left out)."""
    out = {k: v for k, v in catalogue().items() if not k.startswith(VOCABULARY + ".")}
    for name, variants in domain_responses().items():
        for i, t in enumerate(variants):
            out[f"domain.{name}.{i}"] = t
    return out
