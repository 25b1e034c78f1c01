"""What the borrowers of the turn benchmark (bench.turns) say, and who they are.

Every conversation is a signed-in web chat of a demo borrower (``web:s-<random>``, opened through
the backend's /api/v1/webchat/sessions as the end-to-end tests do), so the account answers are
given without the SMS code, as for a borrower who logged in. Each conversation is a new sender:
a new tracker and session start, as for a borrower who opens the chat.

* ``account``: balance, schedule, payment history, thanks (borrowers with one open loan);
* ``plan``: a repayment-plan request that fills its form in one message up to the quote, then is
  withdrawn (「算了」: nothing is stored, so the benchmark can repeat it);
* ``small_talk``: greeting, 「你是机器人吗」, thanks, goodbye.

Each turn names what its answer must contain (any of): anything else, an empty answer or a
「系统繁忙」 counts as an error.
"""
from __future__ import annotations

import sqlite3
from itertools import cycle

from bench.load import Script, Turn

GREETING = ("您好",)
THANKS = ("不客气",)

SCRIPTS = (
    Script("account", (
        Turn("你好", GREETING),
        Turn("我还欠多少钱", ("剩余应还",)),
        Turn("每个月几号还款，还剩几期", ("期未还", "没有待还")),
        Turn("查一下我的还款记录", ("还款记录",)),
        Turn("好的谢谢", THANKS),
    ), weight=2),
    Script("plan", (
        Turn("你好", GREETING),
        Turn("我失业了，能不能分12期还", ("确认提交这份申请吗",)),
        Turn("算了", ("已取消",)),
        Turn("谢谢", THANKS),
    ), weight=1),
    Script("small_talk", (
        Turn("你好", GREETING),
        Turn("你是机器人吗", ("智能客服",)),
        Turn("谢谢你", THANKS),
        Turn("再见", ("再见",)),
    ), weight=1),
)
BY_NAME = {s.name: s for s in SCRIPTS}
# What a bare /model/parse level understands: every message of the mix.
PARSE_TEXTS = tuple(dict.fromkeys(t.text for s in SCRIPTS for t in s.turns))
FAILURES = ("系统暂时繁忙", "稍后再试")


def answer_ok(messages: list[dict], turn: Turn) -> tuple[bool, str]:
    """(ok, error) for the REST channel's answer to ``turn``."""
    said = "\n".join(m.get("text") or "" for m in messages)
    if not said.strip():
        return False, "empty answer"
    if any(f in said for f in FAILURES):
        return False, "busy answer"
    if turn.expect and not any(e in said for e in turn.expect):
        return False, "unexpected answer"
    return True, ""


def borrowers(database: str) -> dict[str, list[int]]:
    """Demo customers for each script, from the backend's SQLite database: ``account`` any customer
    with exactly one loan that is open (active, overdue or restructured: actions/account.py
    OPEN_STATUSES) and no other loan open; ``plan`` those of
    them that are low risk, not VIP, and whose one loan is active (a plan is quoted for them; checked
    through the API by the caller); ``small_talk`` any customer."""
    with sqlite3.connect(database) as conn:
        one_open = [r[0] for r in conn.execute(
            "SELECT c.id FROM customers c JOIN loans l ON l.customer_id = c.id "
            "GROUP BY c.id HAVING SUM(l.status IN ('active', 'overdue', 'restructured')) = 1 ORDER BY c.id")]
        plan = [r[0] for r in conn.execute(
            "SELECT c.id FROM customers c JOIN loans l ON l.customer_id = c.id "
            "WHERE c.risk_tier = 'low' AND c.value_tier != 'vip' "
            "GROUP BY c.id HAVING COUNT(*) = 1 AND MAX(l.status) = 'active' ORDER BY c.id")]
        everyone = [r[0] for r in conn.execute("SELECT id FROM customers ORDER BY id")]
    return {"account": one_open, "plan": plan, "small_talk": everyone}


class Customers:
    """Round robin over each script's borrowers."""

    def __init__(self, pools: dict[str, list[int]]) -> None:
        missing = [name for name in BY_NAME if not pools.get(name)]
        if missing:
            raise ValueError(f"no demo borrower for the scripts {missing}")
        self._next = {name: cycle(ids) for name, ids in pools.items()}

    def next(self, script: str) -> int:
        return next(self._next[script])
