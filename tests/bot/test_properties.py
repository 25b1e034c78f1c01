"""Property tests (Hypothesis) for the entity normalisers: bot/nlu/entities.py and bot/nlu/normalize.py.

These need the bot environment (cn2an, jionlp, OpenCC) and Hypothesis. Hypothesis is in the app lock
only (and its locked 6.170 needs Python 3.11), so `make test`'s bot step skips this module until a
Hypothesis release for Python 3.10 is added to requirements/bot.in (e.g. hypothesis>=6.100,<6.140).
Run by hand with any Hypothesis on the path:

    PYTHONPATH=<dir with hypothesis 6.139> .venv-bot/bin/python -m pytest tests/bot/test_properties.py -q

Every property runs at most 100 examples; business "now" is Monday 2026-11-23 10:00 Shanghai.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

pytest.importorskip("cn2an", reason="bot environment only (cn2an, jionlp, OpenCC)")
pytest.importorskip("opencc", reason="bot environment only")
hypothesis = pytest.importorskip("hypothesis", reason="Hypothesis is not installed in this environment")

import cn2an  # noqa: E402
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bot.nlu.entities import amount_value, date_value, extract  # noqa: E402
from bot.nlu.normalize import normalize  # noqa: E402

from .conftest import NOW  # noqa: E402

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AMOUNTS = st.integers(min_value=1, max_value=10**7)


def values(text: str, entity: str) -> list[str]:
    return [e.value for e in extract(text, NOW) if e.entity == entity]


def cents(n: int) -> str:
    return str(Decimal(n).quantize(Decimal("0.01")))


# --------------------------------------------------------------------------- amounts

@FAST
@given(AMOUNTS)
@example(1)
@example(10)
@example(10**7)
@example(10001)
def test_cn2an_round_trip_is_exact(n):
    """Any amount written in Chinese numerals (an2cn) reads back as the same number, as a bare
    value and inside a sentence."""
    chinese = cn2an.an2cn(n)
    assert amount_value(chinese, "元") == Decimal(n)
    assert values(f"我想还{chinese}元", "amount") == [cents(n)]


@FAST
@given(AMOUNTS, st.sampled_from(["元", "块", "块钱", "元钱"]), st.booleans(), st.sampled_from(["还", "我转了", "欠"]))
@example(1500, "元", True, "还")
@example(999, "块", False, "还")
def test_arabic_amount_with_or_without_separators(n, unit, separators, verb):
    written = f"{n:,}" if separators else str(n)
    assert values(f"{verb}{written}{unit}", "amount") == [cents(n)]


@FAST
@given(st.integers(min_value=1, max_value=1000), st.sampled_from(["万", "万元", "万块"]))
def test_amount_in_wan(n, unit):
    assert values(f"还{n}{unit}", "amount") == [cents(n * 10000)]


# --------------------------------------------------------------------------- dates

@FAST
@given(st.integers(min_value=1, max_value=90), st.sampled_from(["日", "号", ""]))
@example(38, "日")
@example(39, "日")
@example(90, "号")
def test_month_day_within_90_days_is_that_day(days, suffix):
    target = NOW.date() + timedelta(days=days)
    expr = f"{target.month}月{target.day}{suffix}"
    assert date_value(expr, NOW) == target
    assert values(f"我{expr}还款", "date") == [target.isoformat()]


@FAST
@given(st.integers(min_value=0, max_value=99), st.integers(min_value=0, max_value=99), st.sampled_from(["日", "号"]))
def test_any_month_day_pair_never_raises(month, day, suffix):
    """Impossible dates (13月40日, 2月30日) give no date or a date, never an exception."""
    result = date_value(f"{month}月{day}{suffix}", NOW)
    assert result is None or result.isoformat()
    extract(f"{month}月{day}{suffix}还", NOW)


# --------------------------------------------------------------------------- phones

MOBILE = st.builds(lambda second, rest: f"1{second}{rest:09d}", st.sampled_from("3456789"),
                   st.integers(min_value=0, max_value=10**9 - 1))


@FAST
@given(MOBILE, st.sampled_from(["", "+86", "+86 "]), st.sampled_from(["", "我的手机号是", "手机："]))
def test_phone_with_country_code_normalises_to_eleven_digits(number, prefix, lead):
    assert values(f"{lead}{prefix}{number}", "phone") == [number]


@FAST
@given(MOBILE, st.sampled_from([" ", "-"]), st.sampled_from(["", "+86 ", "+86-"]))
def test_phone_with_spaces_or_dashes_normalises_to_eleven_digits(number, sep, prefix):
    grouped = sep.join((number[:3], number[3:7], number[7:]))
    assert values(f"{prefix}{grouped}", "phone") == [number]


# --------------------------------------------------------------------------- normalize()

@FAST
@given(st.text(max_size=200))
@example("還款１２３４５元，謝謝！")
@example("\u3000ＡＢＣ")
def test_normalize_keeps_the_length(text):
    assert len(normalize(text)) == len(text)


@FAST
@given(st.text(alphabet=st.characters(min_codepoint=0xFF10, max_codepoint=0xFF19), min_size=1, max_size=20))
def test_full_width_digits_become_ascii(text):
    assert normalize(text) == "".join(chr(ord(ch) - 0xFEE0) for ch in text)


@FAST
@given(st.text(max_size=120))
def test_extract_never_raises_and_spans_match_the_text(text):
    text = normalize(text)
    for e in extract(text, NOW):
        assert text[e.start:e.end] == e.text
