"""The logs of the end-to-end stack carry no full phone, ID or card number and no one-time code, and
no line longer than the scrubber's limit (PIPL Art. 51; bot/logscrub.py in every process). Named to
run last: it reads what the whole session wrote to backend.log, actions.log and rasa.log, after
sending a few messages full of such numbers of its own (one of them very long)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

LOGS = ("backend.log", "actions.log", "rasa.log")
# Bounded by neither digits nor letters (hex ids and hashes are not numbers people have).
_EDGE_L, _EDGE_R = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"
LEAKS = {
    "phone": re.compile(rf"{_EDGE_L}(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{{4}}[ -]?\d{{4}}{_EDGE_R}"),
    "id": re.compile(rf"{_EDGE_L}\d{{17}}[\dXx]{_EDGE_R}|{_EDGE_L}\d{{15}}{_EDGE_R}"),
    "card": re.compile(rf"{_EDGE_L}\d{{16,19}}{_EDGE_R}"),
    "code": re.compile(r"(?:验证码|校验码|动态码)[^0-9\n]{0,12}[0-9]{4,8}(?![0-9])"),
}
MAX_LINE = 2000 + 200  # the scrubber's limit, its "cut" note and the formatter's prefix

NOISY = ("我的手机号是13812345678，身份证110105198503011234，卡号6222021234567890123，"
         "验证码482913，请帮我查一下欠款")


def run_dir(stack: RunningStack) -> Path:
    return Path(stack.env["SMS_OUTBOX_PATH"]).parent  # the stack's run_dir (tests/e2e/conftest.py)


def test_logs_hold_no_personal_numbers_codes_or_huge_lines(stack: RunningStack):
    for sender in ("sms:+8613812345678", "web:anon-logscrub"):
        stack.say(sender, NOISY)
    try:  # one very long message: it may be refused or fail, but must not reach a log whole
        stack.say("web:anon-logscrub-long", NOISY + "我" * 200_000 + "13912345678")
    except Exception:  # noqa: BLE001 - what matters here is the log
        pass
    stack.backend_post("/verification/start", json={"conversation": "sms:+8613812345678", "phone": "+8613812345678",
                                                    "id_last4": "1234"})
    paths = [run_dir(stack) / name for name in LOGS]
    assert all(p.exists() for p in paths), f"a log is missing in {run_dir(stack)}"
    problems = leaks_in(paths)
    assert not problems, "\n".join(problems[:30])


def leaks_in(paths) -> list[str]:
    """Lines that are too long or carry a full number or code, as 「dir/file:line: what」."""
    problems = []
    for path in paths:
        name = f"{path.parent.name}/{path.name}"
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if len(line) > MAX_LINE:
                problems.append(f"{name}:{n}: a line of {len(line)} characters")
            for kind, pattern in LEAKS.items():
                m = pattern.search(line)
                if m:
                    problems.append(f"{name}:{n}: full {kind} {m.group()[:3]}…: {line[:160]}")
    return problems
