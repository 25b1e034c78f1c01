"""Unit tests for bot/nlu/entities.py: ``extract(text, now)`` on the phrasings borrowers use.

``now`` is Monday 2026-11-23 10:00 Asia/Shanghai (see conftest.py), so every date is fixed.
Each entity is checked on 20+ phrasings: the exact normalised value and the exact span text.
Cases marked ``xfail(strict=True)`` document behaviour believed wrong: they fail today, and once
the extractor is fixed they XPASS, which fails the run so the marker gets removed.
"""
from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.nlu.entities import LEXICON_DIR, Entity, extract
from bot.nlu.normalize import normalize

SHANGHAI = ZoneInfo("Asia/Shanghai")


def check_spans(text: str, ents: list[Entity]) -> None:
    """The invariants every result must satisfy: exact spans, text order, no overlaps."""
    for e in ents:
        assert 0 <= e.start < e.end <= len(text), e
        assert text[e.start:e.end] == e.text, e
        assert isinstance(e.value, str) and e.value, e
    assert [e.start for e in ents] == sorted(e.start for e in ents)
    for a, b in zip(ents, ents[1:]):
        assert a.end <= b.start, f"{a} overlaps {b}"


def run(text: str, now: datetime) -> list[Entity]:
    ents = extract(text, now)
    check_spans(text, ents)
    return ents


def of(ents: list[Entity], name: str) -> list[Entity]:
    return [e for e in ents if e.entity == name]


def only(text: str, now: datetime, name: str) -> Entity:
    found = of(run(text, now), name)
    assert len(found) == 1, f"{text!r}: expected one {name}, got {found}"
    return found[0]


def xfail(*values, reason: str):
    return pytest.param(*values, marks=pytest.mark.xfail(strict=True, reason=reason))


# ---- amount -------------------------------------------------------------------------------------

AMOUNTS = [
    # (message, span, value)
    ("两千五", "两千五", "2500.00"),
    ("下周五先还两千五", "两千五", "2500.00"),
    ("2.5k", "2.5k", "2500.00"),
    ("我先还2.5k吧", "2.5k", "2500.00"),
    ("三万块", "三万块", "30000.00"),
    ("我还欠你们三万块", "三万块", "30000.00"),
    ("先还一百五", "一百五", "150.00"),
    ("这个月只能还五百块钱", "五百块钱", "500.00"),
    ("能先还1.5万吗", "1.5万", "15000.00"),
    ("今天转了3000元", "3000元", "3000.00"),
    ("欠款两万五千", "两万五千", "25000.00"),
    ("当时借了一万两千", "一万两千", "12000.00"),
    ("借了2w", "2w", "20000.00"),
    ("能借3W吗", "3W", "30000.00"),
    ("先还10k", "10k", "10000.00"),
    ("凑了20K给你们", "20K", "20000.00"),
    ("还款50000", "50000", "50000.00"),
    ("月供降到800行不行", "800", "800.00"),
    ("我想还800", "800", "800.00"),
    ("还二百五十元", "二百五十元", "250.00"),
    ("还一千零五十", "一千零五十", "1050.00"),
    ("今天还了5000.50元", "5000.50元", "5000.50"),
    ("已转账叁仟伍佰元", "叁仟伍佰元", "3500.00"),
    ("一共三万五千块钱", "三万五千块钱", "35000.00"),
    ("先还0.5万", "0.5万", "5000.00"),
    ("我先还5千块", "5千块", "5000.00"),
    ("还¥3000", "3000", "3000.00"),
    ("就剩100元钱了", "100元钱", "100.00"),
    ("还差一千二", "一千二", "1200.00"),
    ("我现在能凑两千", "两千", "2000.00"),
    ("今天还了99元", "99元", "99.00"),
    ("借款100000元", "100000元", "100000.00"),
    ("150000元", "150000元", "150000.00"),  # six digits followed by a unit: money, not a code
    ("1234元", "1234元", "1234.00"),  # four digits followed by a unit: money, not an ID tail
    ("欠了两千五百块", "两千五百块", "2500.00"),
    ("我欠了886", "886", "886.00"),  # with money context 886 is money
    ("欠了1万2", "1万2", "12000.00"),
    ("还1,500元", "1,500元", "1500.00"),
    ("转了12,345.60元", "12,345.60元", "12345.60"),
]


@pytest.mark.parametrize("text,span,value", AMOUNTS)
def test_amount(text, span, value, now):
    ent = only(text, now, "amount")
    assert (ent.text, ent.value) == (span, value)


@pytest.mark.parametrize("text", [
    "886",
    "好的886",
    "第3期",
    "第3期还多少钱",
    "15号",
    "还款日是15号",
    "第120期还款",
    "催了100次还不够",
    "2026年12月1日还款",
    "利率是15%还多少",
    "CP20261122-0007",
    "还款单号 CP20261122-0007 还没处理",
    "还款工单CP20261122-0007怎么样了",  # reference glued to Chinese text (fixed: was 20261122.00 + 7.00)
    "还款编号是cp20261122-0007",
    "RP20261122-0012 这笔还款",
    "我手机号是13812345678,还款失败了",
    "手机13912345678还不上钱",
    "验证码123456",
    "身份证后四位1234，还款用的",
    "我有1234个问题",
    "分12期还",
    "两百",  # bare Chinese number without any money word in the message
])
def test_no_amount(text, now):
    assert of(run(text, now), "amount") == []


def test_amount_after_normalize_full_width(now):
    text = normalize("先還３０００元")
    ent = only(text, now, "amount")
    assert (ent.text, ent.value) == ("3000元", "3000.00")


@pytest.mark.parametrize("text,span,value", [
    ("身份证后四位123x，欠款5000元", "5000元", "5000.00"),
    ("验证码是123456，我要还150000元", "150000元", "150000.00"),
])
def test_amount_next_to_other_numbers(text, span, value, now):
    ent = only(text, now, "amount")
    assert (ent.text, ent.value) == (span, value)


# ---- date ---------------------------------------------------------------------------------------

DATES = [
    # (message, span, ISO date) with now = Monday 2026-11-23
    ("明天", "明天", "2026-11-24"),
    ("明天能还吗", "明天", "2026-11-24"),
    ("后天下午还3000", "后天", "2026-11-25"),
    ("大后天", "大后天", "2026-11-26"),
    ("今天就还", "今天", "2026-11-23"),
    ("昨天已经还了", "昨天", "2026-11-22"),
    ("前天转的账", "前天", "2026-11-21"),
    ("大前天", "大前天", "2026-11-20"),
    ("明儿还", "明儿", "2026-11-24"),
    ("今儿个先还一半", "今儿", "2026-11-23"),
    ("昨儿还了", "昨儿", "2026-11-22"),
    ("下周五先还两千五", "下周五", "2026-12-04"),
    ("周五", "周五", "2026-11-27"),
    ("星期五还", "星期五", "2026-11-27"),
    ("礼拜五", "礼拜五", "2026-11-27"),
    ("这周五", "这周五", "2026-11-27"),
    ("本周五", "本周五", "2026-11-27"),
    ("这个礼拜五", "这个礼拜五", "2026-11-27"),
    ("周六", "周六", "2026-11-28"),
    ("周日", "周日", "2026-11-29"),
    ("礼拜天", "礼拜天", "2026-11-29"),
    ("下周一", "下周一", "2026-11-30"),
    ("下个星期一", "下个星期一", "2026-11-30"),
    ("下星期三", "下星期三", "2026-12-02"),
    ("下周日", "下周日", "2026-12-06"),
    ("下下周五", "下下周五", "2026-12-11"),
    ("上周五就还了", "上周五", "2026-11-20"),
    ("上礼拜五", "上礼拜五", "2026-11-20"),
    ("上个星期三", "上个星期三", "2026-11-18"),
    ("下个月15号", "下个月15号", "2026-12-15"),
    ("下月15号", "下月15号", "2026-12-15"),
    ("下个月31号", "下个月31号", "2026-12-31"),
    ("3月20日", "3月20日", "2027-03-20"),  # March said in November: next March
    ("3月20号还", "3月20号", "2027-03-20"),
    ("三月二十号", "三月二十号", "2027-03-20"),
    ("1月5日", "1月5日", "2027-01-05"),
    ("12月1日", "12月1日", "2026-12-01"),
    ("我12月1日之前还清", "12月1日", "2026-12-01"),
    ("十二月十五号", "十二月十五号", "2026-12-15"),
    ("十一月三十号", "十一月三十号", "2026-11-30"),
    ("2026年12月1日还款", "2026年12月1日", "2026-12-01"),
    ("15号", "15号", "2026-12-15"),  # the 15th said on the 23rd: next month
    ("还款日是15号", "15号", "2026-12-15"),
    ("十五号", "十五号", "2026-12-15"),
    ("十五日", "十五日", "2026-12-15"),
    ("1号", "1号", "2026-12-01"),
    ("20号左右", "20号", "2026-12-20"),
    ("24号", "24号", "2026-11-24"),
    ("二十五号", "二十五号", "2026-11-25"),
    ("30号", "30号", "2026-11-30"),
    ("三十号", "三十号", "2026-11-30"),
    ("这个月30号", "这个月30号", "2026-11-30"),
    ("月底", "月底", "2026-11-30"),
    ("我月底还", "月底", "2026-11-30"),
    ("这个月底", "这个月底", "2026-11-30"),
    ("本月底", "本月底", "2026-11-30"),
    ("下个月底", "下个月底", "2026-12-31"),
    ("下个月底前还清", "下个月底", "2026-12-31"),
    ("下月底", "下月底", "2026-12-31"),
    ("下下月底", "下下月底", "2027-01-31"),
    ("月初", "月初", "2026-12-01"),  # said on the 23rd: the start of next month
    ("下个月初还", "下个月初", "2026-12-01"),
    ("这周末", "这周末", "2026-11-29"),
    ("这周末能还", "这周末", "2026-11-29"),
    ("周末", "周末", "2026-11-29"),
    ("下周末", "下周末", "2026-12-06"),
    ("下个周末", "下个周末", "2026-12-06"),
    ("月中", "月中", "2026-12-15"),
    ("下个月中旬还", "下个月中旬", "2026-12-15"),
    ("下月中", "下月中", "2026-12-15"),
    ("中旬还", "中旬", "2026-12-15"),
    # A past month stays in the past (「上个月」 is a payment already made or a date in a dispute).
    ("上个月中旬就转过去了", "上个月中旬", "2026-10-15"),
    ("上个月15号还的", "上个月15号", "2026-10-15"),
    ("上个月底还的", "上个月底", "2026-10-31"),
    ("上月初扣的款", "上月初", "2026-10-01"),
    xfail("下下个月15号", "下下个月15号", "2027-01-15",
          reason="JioNLP cannot parse 「下下个月15号」: no date at all"),
]


@pytest.mark.parametrize("text,span,value", DATES)
def test_date(text, span, value, now):
    ent = only(text, now, "date")
    assert (ent.text, ent.value) == (span, value)


@pytest.mark.parametrize("text,value", [
    ("明年1月5日", "2027-01-05"),
    ("今年12月20日", "2026-12-20"),
    xfail("明年12月1日", "2027-12-01",
          reason="「明年」 is not part of the date pattern: 「12月1日」 alone gives 2026-12-01, a year early"),
])
def test_date_with_year_word(text, value, now):
    assert only(text, now, "date").value == value


@pytest.mark.parametrize("text", ["年底", "到底什么时候能好", "初", "下个月", "我想问一下"])
def test_no_date(text, now):
    assert of(run(text, now), "date") == []


@pytest.fixture
def host_tz(request):
    """Run the test with the process time zone set to ``request.param`` (jionlp reads it)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize("host_tz", ["UTC", "America/Los_Angeles", "Asia/Shanghai"], indirect=True)
@pytest.mark.parametrize("hour", [1, 10, 23])
@pytest.mark.parametrize("text,value", [("明天", "2026-11-24"), ("下周五", "2026-12-04"), ("周日", "2026-11-29")])
def test_date_uses_shanghai_wall_clock_not_host_timezone(host_tz, hour, text, value):
    # Regression: jionlp got now.timestamp(), which it reads in the *host* time zone. On a UTC
    # server between 00:00 and 08:00 Shanghai time 「明天」 came out as today.
    now = datetime(2026, 11, 23, hour, 0, tzinfo=SHANGHAI)
    assert only(text, now, "date").value == value


# ---- months -------------------------------------------------------------------------------------

MONTHS = [
    ("分12期", "12期", "12"),
    ("我想分12期还", "12期", "12"),
    ("延期三个月", "三个月", "3"),
    ("能不能延期三个月", "三个月", "3"),
    ("6个月", "6个月", "6"),
    ("延长6个月", "6个月", "6"),
    ("分二十四期", "二十四期", "24"),
    ("分二十四期可以吗", "二十四期", "24"),
    ("十二期", "十二期", "12"),
    ("分3期", "3期", "3"),
    ("分三期", "三期", "3"),
    ("36期", "36期", "36"),
    ("三十六期", "三十六期", "36"),
    ("延两个月", "两个月", "2"),
    ("延期1个月", "1个月", "1"),
    ("宽限一个月", "一个月", "1"),
    ("缓两个月再还", "两个月", "2"),
    ("分6个月还", "6个月", "6"),
    ("分十期", "十期", "10"),
    ("24个月", "24个月", "24"),
    ("分十八期", "十八期", "18"),
    ("延后9个月", "9个月", "9"),
    ("两期", "两期", "2"),
    ("分一期", "一期", "1"),
    ("延一期", "一期", "1"),
    ("一百二十期", "一百二十期", "120"),
    ("1500块分3期", "3期", "3"),
    ("我借了3万分12期每期2500", "12期", "12"),
]


@pytest.mark.parametrize("text,span,value", MONTHS)
def test_months(text, span, value, now):
    ent = only(text, now, "months")
    assert (ent.text, ent.value) == (span, value)


@pytest.mark.parametrize("text", [
    "第3期",
    "第3期还多少钱",
    "第三期",
    "第十二期",
    "下一期",
    "下一期什么时候还",
    "上一期",
    "上一期已经还了",
    "这一期",
    "一期",
    "本期",
    "0期",
    "200期",  # over 120: not a plausible term
    "1.5个月",  # not a whole number
    "这个月和下个月",
    "下个月15号",
    "半年",
    xfail("下一个月15号还", reason="「下一个月」 means next month, but 「一个月」 is read as months=1"),
    xfail("第三个月才能还", reason="「第三个月」 names a month, but 「三个月」 is read as months=3"),
])
def test_no_months(text, now):
    assert of(run(text, now), "months") == []


# ---- phone --------------------------------------------------------------------------------------

PHONES = [
    ("13812345678", "13812345678"),
    ("13012345678", "13012345678"),
    ("13112345678", "13112345678"),
    ("14712345678", "14712345678"),
    ("15912345678", "15912345678"),
    ("16612345678", "16612345678"),
    ("17712345678", "17712345678"),
    ("18600001111", "18600001111"),
    ("19912345678", "19912345678"),
    ("我的手机13812345678", "13812345678"),
    ("手机号：17712345678", "17712345678"),
    ("手机号:15012345678", "15012345678"),
    ("换号了，新号19912345678", "19912345678"),
    ("我的号码是 18600001111 ", "18600001111"),
    (" 13512345678 ", "13512345678"),
    ("我手机号是 13912345678 ，还不上钱", "13912345678"),
    ("我手机号是13812345678,还款失败了", "13812345678"),
    ("电话+86 13812345678", "13812345678"),
    ("打18812345678找我", "18812345678"),
    ("联系电话（15212345678）", "15212345678"),
    ("身份证尾号是1234，手机号13812345678", "13812345678"),
    ("还款金额3000，手机13712345678，验证码123456", "13712345678"),
]


@pytest.mark.parametrize("text,value", PHONES)
def test_phone(text, value, now):
    ent = only(text, now, "phone")
    assert ent.value == value == ent.text


def test_two_phones(now):
    ents = of(run("我的手机号是13812345678和13912345678", now), "phone")
    assert [e.value for e in ents] == ["13812345678", "13912345678"]


def test_phone_after_normalize_full_width(now):
    ent = only(normalize("手機號１３８１２３４５６７８"), now, "phone")
    assert ent.value == "13812345678"


@pytest.mark.parametrize("text", [
    "12345678901",  # second digit 2: not a mobile number
    "10086",
    "1381234567",  # 10 digits
    "138123456789",  # 12 digits
    "0138123456789",
    "8613812345678",
])
def test_no_phone(text, now):
    assert of(run(text, now), "phone") == []


def test_phone_with_glued_country_code(now):
    assert only("我的电话+8613812345678", now, "phone").value == "13812345678"


# ---- id_last4 -----------------------------------------------------------------------------------

ID_LAST4 = [
    ("身份证后四位1234", "1234", "1234"),
    ("身份证后四位是123x", "123x", "123X"),
    ("身份证后四位是123X", "123X", "123X"),
    ("身份证末四位是000x", "000x", "000X"),
    ("后4位123X", "123X", "123X"),
    ("后四位是4567", "4567", "4567"),
    ("末4位是8888", "8888", "8888"),
    ("证件号末四位 4321", "4321", "4321"),
    ("证件末4位0021", "0021", "0021"),
    ("我身份证最后四位是9876", "9876", "9876"),
    ("最后四位5566", "5566", "5566"),
    ("尾号0012", "0012", "0012"),
    ("尾号是1234的卡", "1234", "1234"),
    ("身份证是 7788 结尾", "7788", "7788"),
    ("1234", "1234", "1234"),  # a bare 4-digit reply
    (" 1234 ", "1234", "1234"),
    ("1234。", "1234", "1234"),
    ("0000", "0000", "0000"),
    ("123x", "123x", "123X"),
    ("123X", "123X", "123X"),
    ("身份证尾号是1234，手机号13812345678", "1234", "1234"),
    ("后四位是1234，验证码是567890", "1234", "1234"),
]


@pytest.mark.parametrize("text,span,value", ID_LAST4)
def test_id_last4(text, span, value, now):
    ent = only(text, now, "id_last4")
    assert (ent.text, ent.value) == (span, value)


def test_id_last4_after_normalize_full_width(now):
    ent = only(normalize("身份證後四位１２３ｘ"), now, "id_last4")
    assert (ent.text, ent.value) == ("123x", "123X")


@pytest.mark.parametrize("text", [
    "我有1234个问题",  # no ID cue and not a bare reply
    "12345",
    "我的卡号尾号是12345",
    "身份证号11010119900307123X",  # the whole ID number, not the last four
    "1234元",
    "还1234块",
    "我欠1234",
    "123456",
])
def test_no_id_last4(text, now):
    assert of(run(text, now), "id_last4") == []


# ---- otp_code -----------------------------------------------------------------------------------

OTP = [
    ("123456", "123456"),
    (" 246810 ", "246810"),
    ("000123", "000123"),
    ("验证码123456", "123456"),
    ("验证码是 654321", "654321"),
    ("验证码为135790", "135790"),
    ("校验码：000123", "000123"),
    ("动态码 987654", "987654"),
    ("短信码112233", "112233"),
    ("码是445566", "445566"),
    ("收到的码是778899", "778899"),
    ("我收到了，是123456", "123456"),
    ("是 314159 吗", "314159"),
    ("刚收到短信，验证码：271828。", "271828"),
    ("验证码123456，请帮我还款", "123456"),
    ("还款金额3000，手机13812345678，验证码123456", "123456"),
    ("后四位是1234，验证码是567890", "567890"),
    ("你们发的验证码是999999", "999999"),
    ("好的 111111", "111111"),
    ("验证码？ 202611", "202611"),
    ("输入了800800还是不对", "800800"),
]


@pytest.mark.parametrize("text,value", OTP)
def test_otp_code(text, value, now):
    ent = only(text, now, "otp_code")
    assert ent.value == value == ent.text


def test_otp_code_after_normalize_full_width(now):
    assert only(normalize("驗證碼：１２３４５６"), now, "otp_code").value == "123456"


@pytest.mark.parametrize("text", [
    "150000元",
    "150000块",
    "借了150000元",
    "欠 150000 元",
    "1234567",
    "验证码12345",
    "123456789012",
    "abc123456",
    "123456abc",
    "验证码 123 456",
    "13812345678",
])
def test_no_otp_code(text, now):
    assert of(run(text, now), "otp_code") == []


# ---- plan_type and complaint_category (lexicon words) ---------------------------------------------

PLAN_TYPES = [
    ("我想分期还款", "分期", "分期"),
    ("能不能再分期", "再分期", "分期"),
    ("有没有个性化分期", "个性化分期", "分期"),
    ("申请停息挂账", "停息挂账", "分期"),
    ("可以分几期", "分几期", "分期"),
    ("我想分批还", "分批还", "分期"),
    ("能分几次还吗", "分几次还", "分期"),
    ("想申请延期", "延期", "延期"),
    ("可以展期吗", "展期", "延期"),
    ("还款日能延后吗", "延后", "延期"),
    ("推迟几天", "推迟", "延期"),
    ("能不能缓一缓", "缓一缓", "延期"),
    ("给我宽限几天", "宽限", "延期"),
    ("有宽限期吗", "宽限期", "延期"),
    ("我想晚点还", "晚点还", "延期"),
    ("申请延迟还款", "延迟还款", "延期"),
    ("往后推一推", "往后推", "延期"),
    ("往后挪几天", "往后挪", "延期"),
    ("可以缓还吗", "缓还", "延期"),
    ("能减免吗", "减免", "减免"),
    ("能免息吗", "免息", "减免"),
    ("免罚息可以吗", "免罚息", "减免"),
    ("能减息吗", "减息", "减免"),
    ("让我少还点", "少还点", "减免"),
    ("把利息免掉吧", "免掉", "减免"),
    ("罚息能免除吗", "免除", "减免"),
    ("能打个折吗", "打个折", "减免"),
]


@pytest.mark.parametrize("text,span,value", PLAN_TYPES)
def test_plan_type(text, span, value, now):
    ent = only(text, now, "plan_type")
    assert (ent.text, ent.value) == (span, value)


def test_plan_type_with_months(now):
    ents = run("能不能延期三个月", now)
    assert [(e.entity, e.text, e.value) for e in ents] == [
        ("plan_type", "延期", "延期"), ("months", "三个月", "3")]


def test_two_plan_types(now):
    assert [e.value for e in of(run("分期延期都不行", now), "plan_type")] == ["分期", "延期"]


def test_plan_type_after_normalize_traditional(now):
    ent = only(normalize("我想申請延期三個月"), now, "plan_type")
    assert (ent.text, ent.value) == ("延期", "延期")


COMPLAINTS = [
    ("我要投诉你们暴力催收", "暴力催收", "催收方式"),
    ("催收太过分了", "催收", "催收方式"),
    ("天天骚扰我", "骚扰", "催收方式"),
    ("你们爆通讯录", "爆通讯录", "催收方式"),
    ("威胁我家人", "威胁", "催收方式"),
    ("骚扰电话不停", "骚扰电话", "催收方式"),
    ("电话轰炸", "电话轰炸", "催收方式"),
    ("说要上门催收", "上门催收", "催收方式"),
    ("打电话骂人", "骂人", "催收方式"),
    ("客服态度差", "态度差", "服务态度"),
    ("态度恶劣", "态度恶劣", "服务态度"),
    ("服务态度太差了", "服务态度", "服务态度"),
    ("发消息不理人", "不理人", "服务态度"),
    ("态度不好", "态度不好", "服务态度"),
    ("你们服务太差", "服务太差", "服务态度"),
    ("爱答不理的", "爱答不理", "服务态度"),
    ("总是敷衍我", "敷衍", "服务态度"),
    ("乱收费", "乱收费", "费用争议"),
    ("多扣了我的钱", "多扣", "费用争议"),
    ("多收了我的钱", "多收", "费用争议"),
    ("扣错了", "扣错", "费用争议"),
    ("收费不合理", "收费不合理", "费用争议"),
    ("这是砍头息", "砍头息", "费用争议"),
    ("乱扣费", "乱扣费", "费用争议"),
    ("乱扣钱", "乱扣钱", "费用争议"),
    ("重复扣款了", "重复扣款", "费用争议"),
    ("我的信息错误", "信息错误", "信息错误"),
    ("还款记录错误", "记录错误", "信息错误"),
    ("征信记录错了", "征信记录错", "信息错误"),
    ("信息有误", "信息有误", "信息错误"),
    ("我的身份被冒用了", "冒用", "信息错误"),
    ("被人盗用了", "盗用", "信息错误"),
    ("我的信息泄露了", "泄露", "隐私"),
    ("侵犯隐私", "隐私", "隐私"),
    ("你们怎么会有我通讯录", "通讯录", "隐私"),
]


@pytest.mark.parametrize("text,span,value", COMPLAINTS)
def test_complaint_category(text, span, value, now):
    ent = only(text, now, "complaint_category")
    assert (ent.text, ent.value) == (span, value)


@pytest.mark.parametrize("text,expected", [
    ("催收员恐吓我", [("催收", "催收方式"), ("恐吓", "催收方式")]),
    ("催收员辱骂我", [("催收", "催收方式"), ("辱骂", "催收方式")]),
    ("暴力催收还爆通讯录", [("暴力催收", "催收方式"), ("爆通讯录", "催收方式")]),
    ("泄露个人信息", [("泄露", "隐私"), ("个人信息", "隐私")]),
])
def test_several_complaint_words(text, expected, now):
    assert [(e.text, e.value) for e in of(run(text, now), "complaint_category")] == expected


def _lexicon_rows() -> list[tuple[str, str, str]]:
    rows = []
    for path in sorted(Path(LEXICON_DIR).glob("*.yml")):
        for value, words in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            rows += [(path.stem, str(value), w) for w in words or []]
    return rows


def test_lexicon_words_are_unique():
    words = [w for _, _, w in _lexicon_rows()]
    assert sorted({w for w in words if words.count(w) > 1}) == []


@pytest.mark.parametrize("entity,value,word", _lexicon_rows())
def test_every_lexicon_word_maps_to_its_value(entity, value, word, now):
    ents = run(word, now)
    assert [(e.entity, e.text, e.value) for e in ents if e.entity == entity] == [(entity, word, value)]


# ---- invariants over every phrasing above ----------------------------------------------------------

def _all_texts() -> list[str]:
    texts = []
    for table in (AMOUNTS, DATES, MONTHS, PHONES, ID_LAST4, OTP, PLAN_TYPES, COMPLAINTS):
        for row in table:
            values = row.values if hasattr(row, "values") else row
            texts.append(values[0])
    return texts + [
        "下周五先还两千五，剩下的分12期，手机13812345678，验证码123456，身份证后四位123X",
        "你们暴力催收还乱收费，我要投诉！下个月15号之前给我减免",
        "还款工单CP20261122-0007，3月20日还了1.5万，延期三个月",
        "",
        "   ",
        "，。！？",
    ]


def test_spans_index_text_and_never_overlap(now):
    for text in _all_texts():
        check_spans(text, extract(text, now))


def test_combined_message(now):
    text = "下周五先还两千五，剩下的分12期，手机13812345678，验证码123456，身份证后四位123X"
    assert [(e.entity, e.text, e.value) for e in run(text, now)] == [
        ("date", "下周五", "2026-12-04"),
        ("amount", "两千五", "2500.00"),
        ("months", "12期", "12"),
        ("phone", "13812345678", "13812345678"),
        ("otp_code", "123456", "123456"),
        ("id_last4", "123X", "123X"),
    ]


def test_extract_defaults_now_to_current_time():
    assert [e.entity for e in extract("明天还两千五")] == ["date", "amount"]


@pytest.mark.parametrize("text, value", [
    ("CP20261122-0007", "CP20261122-0007"),
    ("投诉编号cp20261122-0007怎么样了", "CP20261122-0007"),
    ("帮我查一下RP20261123-0001", "RP20261123-0001"),
    ("申请号 rp20261123-0042 批了吗", "RP20261123-0042"),
])
def test_reference(text, value, now):
    assert only(text, now, "reference").value == value


@pytest.mark.parametrize("text, value", [
    ("2026年11月20日", "2026-11-20"),  # an explicit year is kept even in the past
    ("2027年3月5号", "2027-03-05"),
    ("26年12月1日还", "2026-12-01"),
])
def test_date_with_a_year(text, value, now):
    assert only(text, now, "date").value == value
