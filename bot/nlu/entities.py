"""Rule-based extraction and normalisation of the entities the loan assistant needs.

Spans come from rules (regular expressions for number-shaped entities, spaCy's PhraseMatcher on a
blank ``zh`` pipeline for lexicon words); values are normalised with well-kept libraries:
cn2an for Chinese numerals (「两千五」 -> 2500), JioNLP for relative dates (「下周五」), wrapped
where it falls short (it returns past dates for 「3月20日」 in November and cannot read 「月底」).

``extract(text, now)`` is the pure function (unit-tested); ``LoanEntityExtractor`` is the Rasa
component that runs it on each message and snaps spans to the tokenizer's tokens.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import cn2an
import yaml

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEXICON_DIR = Path(__file__).with_name("lexicon")

CN = "零〇一二两三四五六七八九十百千万壹贰叁肆伍陆柒捌玖拾佰仟"
NUM = rf"(?:\d+(?:\.\d+)?|[{CN}]+)"
DAYNUM = r"(?:[0-3]?\d|[一二三四五六七八九十]{1,3})"
WEEKDAY = "一二三四五六日天1234567"

# 「13812345678」, also 「138 1234 5678」「138-1234-5678」「+86-138…」 (grouped 3-4-4); the value is the 11 digits.
RE_PHONE = re.compile(r"(?:(?<=\+86)|(?<=\+86[ -])|(?<![\d-]))1[3-9]\d(?:[ -]?\d{4}){2}(?![\d-])")
RE_OTP = re.compile(r"(?<![\dA-Za-z])\d{6}(?![\dA-Za-z])")
RE_ID4 = re.compile(r"(?<![\dA-Za-z])\d{3}[\dXx](?![\dA-Za-z])")
ID_CONTEXT = re.compile(r"身份证|证件|后四位|后4位|末四位|末4位|尾号|最后四位")
RE_DATE = re.compile(
    "|".join([
        rf"(?:20)?\d{{2}}年{DAYNUM}月{DAYNUM}[号日]?",  # an explicit year is kept, past or not
        rf"(?:下下?个?月|上个?月|这个?月|本月|当月)?{DAYNUM}[号日]",
        rf"{DAYNUM}月{DAYNUM}[号日]?",
        # 「月中」「中旬」 alone, or 「中」 right after a month word (「下个月中」「上月中旬」).
        r"(?:下下?个?月|上个?月|这个?月|本月|下月)?(?:月底|月初|月中旬|月中|中旬|底|初|中)"
        r"(?<![^月]底)(?<![^月]初)(?<![^月]中)",
        r"大后天|后天|明天|今天|明儿|今儿|大前天|前天|昨天|昨儿",
        rf"(?:[上下]{{1,2}}个?|这个?|本)?(?:周|星期|礼拜)[{WEEKDAY}](?!气)",  # not 「这周天气」
        r"(?:下个?|这个?|本)?周末",
        # 「三天后」「过两天」「10天以后」: counted from today.
        r"(?:过)?(?:\d{1,2}|[一二两三四五六七八九十]{1,3})天(?:以后|之后|后)|过(?:两|三|几)天",
    ])
)
RE_MONTHS = re.compile(rf"({NUM})(个月|期)")
RE_REFERENCE = re.compile(r"(?i)(?<![A-Za-z0-9])(?:CP|RP)\d{8}-\d{4}")
MONEY_UNIT_AFTER = re.compile(r"\s*(元|块|万|千)")
MONEY_CONTEXT = re.compile(r"还|钱|元|块|转|付|扣|存|额|欠|交|凑|借|贷|万|千|月供|降到")
# Arabic numbers may carry thousands separators (「1,500元」) or a Chinese tail (「1万2」 = 12000).
AMOUNT_NUM = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?[万千]\d(?![\d.])|{NUM})"
RE_AMOUNT = re.compile(rf"({AMOUNT_NUM})(块钱|块|元钱|元|万块钱|万块|万元|万|千块|千元|千|[kKwW])?")


@dataclass(frozen=True)
class Entity:
    entity: str
    start: int
    end: int
    text: str
    value: str
    role: str | None = None


# ---- values -----------------------------------------------------------------------------------

def _number(s: str) -> Decimal:
    return Decimal(str(cn2an.cn2an(s, "smart")))


def amount_value(number: str, unit: str | None) -> Decimal | None:
    try:
        value = _number(number.replace(",", ""))
    except ValueError:
        return None
    unit = (unit or "").lower()
    if unit.startswith(("万", "w")):
        value *= 10000
    elif unit.startswith(("千", "k")):
        value *= 1000
    return value.quantize(Decimal("0.01"))


def _month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def _next_month(d: date, n: int = 1) -> tuple[int, int]:
    idx = d.month - 1 + n
    return d.year + idx // 12, idx % 12 + 1


@lru_cache(maxsize=1)
def _jio():
    import jionlp  # heavy import: only when a date needs it

    return jionlp


def date_value(expr: str, now: datetime) -> date | None:
    """ISO date for a day expression, relative to ``now`` in Asia/Shanghai, preferring the future."""
    today = now.astimezone(SHANGHAI).date()
    offset = (2 if expr.startswith("下下") else 1 if expr.startswith(("下个月", "下月"))
              else -1 if expr.startswith(("上个月", "上月")) else 0)
    if any(w in expr for w in ("月底", "月初", "月中", "中旬")) or expr in ("下个月", "下月", "下下个月"):
        y, m = _next_month(today, offset)
        if "月底" in expr:
            return _month_end(y, m)
        if "月中" in expr or "中旬" in expr:
            if offset == 0 and today.day > 15:
                y, m = _next_month(today, 1)
            return date(y, m, 15)
        if "月初" in expr and offset == 0 and today.day > 5:
            y, m = _next_month(today, 1)
        return date(y, m, 1) if offset or "月初" in expr else None
    after = re.fullmatch(r"过?(\d{1,2}|[一二两三四五六七八九十]{1,3})天(?:以后|之后|后)?", expr)
    if after:  # 「三天后」「过两天」
        try:
            return today + timedelta(days=int(cn2an.cn2an(after.group(1), "smart")))
        except ValueError:
            return None
    if expr == "过几天":
        return None  # not a day: the form asks which one
    if expr in ("明儿", "明早", "明晚"):
        return today + timedelta(days=1)
    if expr == "昨儿":
        return today - timedelta(days=1)
    if expr in ("今儿", "今晚"):
        return today
    try:
        parsed = _jio().parse_time(expr, time_base=now.astimezone(SHANGHAI))  # wall-clock fields, not the host TZ
        d = date.fromisoformat(parsed["time"][0][:10])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    explicit_month = re.search(r"\d月|[一二三四五六七八九十]月", expr) and not expr.startswith(("下", "这", "本"))
    if "年" in expr:
        return d
    if d < today:
        if explicit_month:  # 「3月20日」 said in November means next March
            d = d.replace(year=d.year + 1)
        elif re.fullmatch(rf"{DAYNUM}[号日]", expr):  # 「15号」 said on the 23rd means next month
            y, m = _next_month(today, 1)
            d = date(y, m, min(d.day, calendar.monthrange(y, m)[1]))
    return d


def months_value(match: re.Match, before: str) -> int | None:
    if match.group(2) == "期" and (before.endswith("第") or match.group(1) == "一" and not before.endswith(("分", "延"))):
        return None  # 「第3期」「下一期」 name an instalment, not a number of months
    try:
        value = _number(match.group(1))
    except ValueError:
        return None
    return int(value) if value == value.to_integral_value() and 0 < value <= 120 else None


# ---- lexicon words (spaCy PhraseMatcher) -------------------------------------------------------

@lru_cache(maxsize=1)
def _lexicon():
    import spacy
    from spacy.matcher import PhraseMatcher

    # A blank zh pipeline segments by character: no model download, independent of jieba's state.
    nlp = spacy.blank("zh")
    matcher = PhraseMatcher(nlp.vocab)
    canonical: dict[str, tuple[str, str]] = {}
    for path in sorted(LEXICON_DIR.glob("*.yml")):
        entity = path.stem
        for value, words in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            for word in words or []:
                canonical[word] = (entity, str(value))
    for word in canonical:
        matcher.add(word, [nlp.make_doc(word)])
    return nlp, matcher, canonical


def _lexicon_entities(text: str) -> list[Entity]:
    nlp, matcher, canonical = _lexicon()
    doc = nlp.make_doc(text)
    found = []
    for match_id, s, e in matcher(doc):
        span = doc[s:e]
        entity, value = canonical[nlp.vocab.strings[match_id]]
        found.append(Entity(entity, span.start_char, span.end_char, span.text, value))
    return found


# ---- extraction ---------------------------------------------------------------------------------

def _free(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    return all(end <= s or start >= e for s, e in taken)


def extract(text: str, now: datetime | None = None) -> list[Entity]:
    """All entities in ``text`` (already normalised), non-overlapping, in text order."""
    now = now or datetime.now(SHANGHAI)
    out: list[Entity] = []
    taken: list[tuple[int, int]] = []

    def add(name: str, m_start: int, m_end: int, value) -> None:
        if value is None or not _free(taken, m_start, m_end):
            return
        taken.append((m_start, m_end))
        out.append(Entity(name, m_start, m_end, text[m_start:m_end], str(value)))

    bare = re.sub(r"[\s，。,.!！?？:：]", "", text)
    for m in RE_REFERENCE.finditer(text):  # ticket references (not amounts or codes)
        add("reference", m.start(), m.end(), m.group(0).upper())
    for m in RE_PHONE.finditer(text):
        add("phone", m.start(), m.end(), re.sub(r"[ -]", "", m.group(0)))
    for m in RE_OTP.finditer(text):
        # Six digits are a code unless a money unit follows (「150000元」 is an amount).
        if not MONEY_UNIT_AFTER.match(text[m.end():]):
            add("otp_code", m.start(), m.end(), m.group(0))
    if ID_CONTEXT.search(text) or re.fullmatch(r"\d{3}[\dXx]", bare):
        for m in RE_ID4.finditer(text):
            if not MONEY_UNIT_AFTER.match(text[m.end():]):
                add("id_last4", m.start(), m.end(), m.group(0).upper())
    for m in RE_DATE.finditer(text):
        d = date_value(m.group(0), now)
        add("date", m.start(), m.end(), d.isoformat() if d else None)
    for m in RE_MONTHS.finditer(text):
        add("months", m.start(), m.end(), months_value(m, text[:m.start()]))
    for m in RE_AMOUNT.finditer(text):
        number, unit = m.group(1), m.group(2)
        is_cn = not number[0].isdigit()
        # A bare number is money only if it looks like money: 3+ digits, or 百/千/万 in Chinese.
        digits = number.replace(",", "").split(".")[0]
        if not unit and not (len(digits) >= 3 and not is_cn or re.search("[百千万佰仟]", number)):
            continue
        if not unit and not MONEY_CONTEXT.search(text):
            continue  # 「886」 is goodbye slang, not money
        if text[m.end():m.end() + 1] in ("号", "日", "期", "月", "天", "年", "%", "个", "点", "次", "位"):
            continue
        add("amount", m.start(), m.end(), amount_value(number, unit))
    for ent in sorted(_lexicon_entities(text), key=lambda e: (e.start, e.start - e.end)):  # leftmost, then longest
        if ent.entity == "product" and PAID_WITH.search(text[:ent.start]):
            continue  # 「用花呗还款」: the way to pay us, not what the message is about
        add(ent.entity, ent.start, ent.end, ent.value)
    return sorted(_product_roles(out), key=lambda e: e.start)


# 「用信用卡还」「拿花呗还你们」「通过白条付」「支持信用卡还款吗」: a product right after one of these is a
# payment instrument.
PAID_WITH = re.compile(r"(?:用|拿|通过|从|走|支持|可以刷)(?:我的|我)?$")
ELSEWHERE = "elsewhere"


def _product_roles(entities: list[Entity]) -> list[Entity]:
    """A message that names products, none of them ours, is about something elsewhere: its product
    mentions get the role ``elsewhere`` (the dialogue answers those as a policy). Once our own
    product is named too (「花呗逾期会影响在你们这借的吗」) the message is about us: no role."""
    products = [e for e in entities if e.entity == "product"]
    if not products or any(e.value == "ours" for e in products):
        return entities
    return [replace(e, role=ELSEWHERE) if e.entity == "product" else e for e in entities]
