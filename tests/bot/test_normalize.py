"""Unit tests for bot/nlu/normalize.py: traditional -> simplified, full-width -> half-width,
Chinese punctuation kept, and the text's length always preserved (entity offsets rely on it)."""
from __future__ import annotations

import pytest

from bot.nlu import normalize as normalize_module
from bot.nlu.normalize import normalize, to_simplified


@pytest.mark.parametrize("raw,expected", [
    ("我還欠多少錢", "我还欠多少钱"),
    ("我要還款，謝謝！", "我要还款，谢谢！"),
    ("請問逾期會怎樣？", "请问逾期会怎样？"),
    ("你們這樣催收是違法的", "你们这样催收是违法的"),
    ("我想申請延期三個月", "我想申请延期三个月"),
    ("後天還錢", "后天还钱"),
    ("下週五", "下周五"),
    ("能不能減免罰息", "能不能减免罚息"),
    ("態度惡劣", "态度恶劣"),
    ("個人資訊洩露", "个人资讯泄露"),
    ("臺灣", "台湾"),
    ("頭髮", "头发"),
    ("乾淨", "干净"),
    ("繁體中文", "繁体中文"),
])
def test_traditional_to_simplified(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("１２３４", "1234"),
    ("ＡＢＣｘｙｚ", "ABCxyz"),
    ("１３８１２３４５６７８", "13812345678"),
    ("２．５ｋ", "2.5k"),
    ("３Ｗ", "3W"),
    ("ＣＰ２０２６１１２２－０００７", "CP20261122-0007"),
    ("１２３ｘ", "123x"),
    ("＂＃＄％＆＇＊＋－／＜＝＞＠［＼］＾＿｀｛｜｝～", "\"#$%&'*+-/<=>@[\\]^_`{|}~"),
    ("\u3000你好\u3000", " 你好 "),  # ideographic space -> ASCII space
])
def test_full_width_to_half_width(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw", ["，。！？：；（）", "【】、《》“”‘’…—·", "￥"])
def test_chinese_punctuation_is_kept(raw):
    assert normalize(raw) == raw


def test_mixed_message():
    assert normalize("驗證碼：１２３４５６，身份證後四位１２３Ｘ。") == "验证码：123456，身份证后四位123X。"


LENGTH_CASES = [
    "",
    "我還欠多少錢",
    "１２３４",
    "ＡＢＣｘｙｚ",
    "驗證碼：１２３４５６",
    "我要還款，謝謝！",
    "請問逾期會怎樣？",
    "分期還款（12期）",
    "你們這樣催收是違法的",
    "手機號１３８１２３４５６７８",
    "\u3000你好\u3000",
    "身份證後四位１２３Ｘ",
    "我想申請延期三個月",
    "２．５ｋ",
    "￥３０００",
    "頭髮乾淨",
    "計程車網路滑鼠軟體記憶體",  # Taiwan vocabulary: phrase conversion must not change the length
    "憂鬱的臺灣烏龜",
    "乾隆皇帝",
    "我欠你們３萬塊，下週五還",
    "＂＃＄％＆＇＊＋－／＜＝＞＠［＼］＾＿｀｛｜｝～",
    "【】、《》“”‘’",
    "hello 123 ok",
    "已經還了￥１５００元了嗎？？",
    "我叫Zha\u0304ng San",  # combining accents stay as they are: no NFC, which would shift offsets
]


@pytest.mark.parametrize("raw", LENGTH_CASES)
def test_length_is_preserved(raw):
    assert len(normalize(raw)) == len(raw)


@pytest.mark.parametrize("raw", LENGTH_CASES[:-1])
def test_idempotent(raw):
    once = normalize(raw)
    assert normalize(once) == once


@pytest.mark.parametrize("text", ["我还欠多少钱", "下周五先还两千五", "验证码：123456", "hello, world!"])
def test_simplified_and_ascii_unchanged(text):
    assert normalize(text) == text


def test_to_simplified_falls_back_to_per_character_when_length_changes(monkeypatch):
    class Fake:
        """A converter whose phrase-level result is shorter than its input."""

        def convert(self, s: str) -> str:
            if len(s) > 1:
                return "x"
            return {"還": "还", "錢": "钱"}.get(s, s)

    monkeypatch.setattr(normalize_module, "_t2s", lambda: Fake())
    assert to_simplified("還我錢") == "还我钱"
