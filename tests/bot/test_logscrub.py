"""bot/logscrub.py: no full phone, ID or card number, no one-time code and no record over 2,000
characters reaches a log line, whichever logger or handler (PIPL Art. 51). Standard library only:
tests/backend/test_logscrub.py runs these same tests in the backend's environment."""
from __future__ import annotations

import io
import logging
import re

import pytest

from bot import logscrub
from bot.logscrub import MAX_CHARS, ScrubFilter, clean, install, scrub

PHONE, ID18, ID15, CARD, CODE = "13812345678", "11010519850301123X", "110105850301123", "6222021234567890123", "482913"


@pytest.mark.parametrize("text, expected", [
    (f"手机{PHONE}", "手机138****5678"),
    ("+86 138 1234 5678 来电", "138****5678 来电"),
    ("+8613812345678", "138****5678"),
    ("sender sms:+8613812345678 said", "sender sms:138****5678 said"),
    ("１３８１２３４５６７８", "138****5678"),
    (f"身份证{ID18}。", "身份证****123X。"),
    ("身份证 110105 19850301 123x", "身份证 ****123X"),
    (f"旧证{ID15}", "旧证****1123"),
    (f"卡号{CARD}", "卡号****0123"),
    ("卡号 6222 0212 3456 7890", "卡号 ****7890"),
    (f"您的验证码是{CODE}，5分钟内有效", "您的验证码是******，5分钟内有效"),
    (f"code={CODE}", "code=******"),
    ("verification code: 4821", "verification code: ******"),
])
def test_personal_numbers_and_codes_are_masked(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize("text", [
    "应还 ¥12,345.67，尾号1234，2026-12-08 10:00:00 到期", "status 200 in 15.3 ms", "138****5678 ****123X",
    "loan LN20261208 seq 3", "ts 1795000001.123456", "HTTP/1.1 404", "",
])
def test_ordinary_figures_are_left_alone(text):
    assert scrub(text) == text


def test_a_long_record_is_cut_to_the_limit():
    huge = "借款人说：" + "我" * 5_000_000 + PHONE
    out = clean(huge)
    assert len(out) < MAX_CHARS + 100 and out.startswith("借款人说：") and "more characters cut" in out


def _logger_to(stream: io.StringIO, name: str, propagate: bool = False) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = propagate
    logger.setLevel(logging.INFO)
    return logger


def test_the_filter_rewrites_message_arguments_traceback_and_extras():
    stream = io.StringIO()
    logger = _logger_to(stream, "test.logscrub.filter")
    logger.addFilter(ScrubFilter())
    try:
        raise ValueError(f"cannot parse {PHONE} with id {ID18}")
    except ValueError:
        logger.exception("message %s from %s, 验证码%s", "text " * 1000, "sms:+86" + PHONE, CODE,
                         extra={"request": f"GET /conversations/sms:+86{PHONE}/tracker"})
    out = stream.getvalue()
    assert PHONE not in out and ID18 not in out and CODE not in out
    assert "138****5678" in out and "ValueError" in out
    assert all(len(line) < MAX_CHARS + 100 for line in out.splitlines())


def test_install_scrubs_every_handler_also_those_made_later_and_non_propagating_loggers():
    install()
    install()  # idempotent
    stream = io.StringIO()
    # A handler added after install() on a logger that does not propagate (as servers configure theirs).
    logger = _logger_to(stream, "test.logscrub.late")
    logger.info("borrower %s sent 验证码 %s and card %s", PHONE, CODE, CARD)
    logger.warning("x" * (3 * MAX_CHARS))
    out = stream.getvalue()
    assert PHONE not in out and CODE not in out and CARD not in out
    assert "138****5678" in out and "****0123" in out
    assert max(len(line) for line in out.splitlines()) < MAX_CHARS + 100
    root_filters = logging.getLogger().filters + logging.getLogger("uvicorn.error").filters
    assert any(isinstance(f, ScrubFilter) for f in root_filters)


def test_a_record_is_scrubbed_once_and_never_dropped():
    f = ScrubFilter()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "call %s", (PHONE,), None)
    assert f.filter(record) is True and f.filter(record) is True
    assert record.getMessage() == "call 138****5678"


def test_the_module_runs_another_module_as_main(monkeypatch, tmp_path):
    """``python -m bot.logscrub rasa run ...`` (bot/launch.py): install, then the module as __main__."""
    seen = {}
    monkeypatch.setattr("runpy.run_module", lambda name, run_name, alter_sys: seen.update(
        name=name, run_name=run_name, argv=list(__import__("sys").argv)))
    logscrub.run_module(["rasa", "run", "--port", "5005"])
    assert seen == {"name": "rasa", "run_name": "__main__", "argv": ["rasa", "run", "--port", "5005"]}


def test_no_pattern_leaks_through_the_scrubber():
    """The patterns the end-to-end log check looks for (tests/e2e/test_zz_logs_clean.py) never
    survive scrub()."""
    text = " ".join([PHONE, "+86" + PHONE, ID18, CARD, f"验证码{CODE}"])
    out = scrub(text)
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", out)
    assert not re.search(r"(?<![0-9])\d{17}[\dXx](?![0-9])", out)
    assert not re.search(r"(?<!\d)\d{16,19}(?!\d)", out)
    assert CODE not in out
