"""Text normalisation before NLU: traditional -> simplified (OpenCC), full-width -> half-width.

Every step keeps the text's length, so entity offsets annotated on the raw text stay valid.
"""
from __future__ import annotations

from functools import lru_cache

from opencc import OpenCC


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def _halfwidth(ch: str) -> str:
    code = ord(ch)
    if code == 0x3000:
        return " "
    if 0xFF01 <= code <= 0xFF5E and ch not in "，。！？：；（）":
        # Full-width ASCII (digits, letters, symbols) -> ASCII. Chinese punctuation stays, since
        # it carries sentence boundaries the tokenizer and the SMS splitter rely on.
        return chr(code - 0xFEE0)
    return ch


def to_simplified(text: str) -> str:
    converted = _t2s().convert(text)
    if len(converted) == len(text):
        return converted
    # A phrase-level conversion changed the length: convert character by character instead.
    return "".join(c if len(c) == 1 else ch for ch, c in ((ch, _t2s().convert(ch)) for ch in text))


def normalize(text: str) -> str:
    text = "".join(_halfwidth(ch) for ch in text)
    return to_simplified(text)
