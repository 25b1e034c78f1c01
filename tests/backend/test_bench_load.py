"""The turn benchmark's own code (bench.load, bench.conversations, bench.procstat, bench.turns_report,
bench.profile_summary) without a stack: the open-loop schedule, sending on time against a fake
server, percentiles and the report."""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter

import pytest

from bench.conversations import SCRIPTS, Customers, answer_ok
from bench.load import GAVE_UP, Level, Result, Script, Slot, Turn, drive, mix, percentile, schedule, summary, uniform
from bench.procstat import cpu_seconds, parse_stat, per_turn_ms, waited_seconds
from bench.profile_summary import summarise
from bench.turns_report import markdown, targets, write

A = Script("a", (Turn("1"), Turn("2"), Turn("3")), weight=2)
B = Script("b", (Turn("1"), Turn("2")), weight=1)


def test_mix_is_a_smooth_weighted_round_robin():
    assert [s.name for s in mix([A, B])] == ["a", "b", "a"]
    assert [s.name for s in mix(SCRIPTS)] == ["account", "plan", "small_talk", "account"]


def test_schedule_sends_exactly_the_rate_from_the_first_second_and_keeps_each_conversation_in_order():
    slots = schedule(10, 6, [A, B], think=1.0)
    assert len(slots) == 60
    assert [s.at for s in slots[:4]] == [0.0, 0.1, 0.2, 0.3]
    assert Counter(int(s.at) for s in slots) == {sec: 10 for sec in range(6)}
    by_conv: dict[int, list[Slot]] = {}
    for s in slots:
        by_conv.setdefault(s.conv, []).append(s)
    for conv, turns in by_conv.items():
        assert [t.turn for t in turns] == list(range(len(turns)))  # in order, none skipped
        assert len({t.script for t in turns}) == 1
        assert all(b.at - a.at >= 1.0 - 1e-9 for a, b in zip(turns, turns[1:]))  # think time kept
    # The first second starts ten conversations; from then on, ready conversations go first.
    assert [s.conv for s in slots[:10]] == list(range(10))
    assert (slots[10].conv, slots[10].turn) == (0, 1)
    # Conversations finished within the level ran their whole script (ended ones before the last think).
    done = [turns for turns in by_conv.values() if turns[0].at < 6 - 3]
    assert all(len(t) == len(A.turns if t[0].script == "a" else B.turns) for t in done)
    # The scripts' shares follow the weights (2:1).
    starts = Counter(turns[0].script for turns in by_conv.values())
    assert starts["a"] == 2 * starts["b"] or abs(starts["a"] - 2 * starts["b"]) <= 2


def test_schedule_and_uniform_of_nothing():
    assert schedule(0, 10, [A], 1.0) == [] and schedule(5, 0, [A], 1.0) == []
    assert [s.at for s in uniform(4, 1)] == [0.0, 0.25, 0.5, 0.75]
    assert [s.conv for s in uniform(4, 1)] == [0, 1, 2, 3]


def test_drive_is_open_loop_and_counts_latency_from_the_scheduled_time():
    """A server that takes 0.3 s a request at 20 requests/s: every request is still sent on time
    (they overlap), nothing waits, and latency is the server's 0.3 s."""
    sent_at: list[float] = []

    async def slow(slot: Slot) -> tuple[bool, str]:
        sent_at.append(time.monotonic())
        await asyncio.sleep(0.3)
        return True, ""

    async def go():
        return await drive(uniform(20, 1), slow, start_delay=0.05, clock=time.monotonic)

    started = time.monotonic()
    results = asyncio.run(go())
    assert len(results) == 20 and all(r.ok for r in results)
    offsets = [t - sent_at[0] for t in sent_at]
    assert all(abs(o - k / 20) < 0.05 for k, o in enumerate(offsets))  # on schedule, not after answers
    assert time.monotonic() - started < 1.0 + 0.3 + 0.3  # overlapped: not 20 x 0.3 s
    assert all(0.28 < r.latency < 0.45 for r in results)
    assert max(r.waited for r in results) < 0.05


def test_a_conversation_waits_for_its_previous_answer_and_the_wait_counts_as_latency():
    """Turn 1 is due 0.1 s after turn 0 but turn 0 takes 0.5 s: turn 1 is sent after that answer,
    and its latency counts from its own scheduled time (0.5 - 0.1 + its 0.1 s)."""
    slots = [Slot(0.0, 0, "a", 0), Slot(0.1, 0, "a", 1)]
    order: list[int] = []

    async def server(slot: Slot) -> tuple[bool, str]:
        order.append(slot.turn)
        await asyncio.sleep(0.5 if slot.turn == 0 else 0.1)
        return (slot.turn == 0), ("" if slot.turn == 0 else "unexpected answer")

    results = asyncio.run(drive(slots, server, start_delay=0.0, clock=time.monotonic))
    assert order == [0, 1]
    first, second = results
    assert 0.48 < first.latency < 0.6 and first.ok
    assert 0.48 < second.latency < 0.62 and not second.ok and second.error == "unexpected answer"
    assert 0.38 < second.waited < 0.5


def test_turns_still_waiting_long_after_the_level_are_given_up():
    """Turn 0 takes 0.4 s; turn 1 of the same conversation, due at 0.0 + 0.1, would be sent at 0.4,
    later than the last scheduled send (0.1) + give_up (0.2): it is not sent, it is an error."""
    slots = [Slot(0.0, 0, "a", 0), Slot(0.1, 0, "a", 1), Slot(0.1, 1, "a", 0)]
    sent: list[tuple[int, int]] = []

    async def server(slot: Slot) -> tuple[bool, str]:
        sent.append((slot.conv, slot.turn))
        await asyncio.sleep(0.4 if slot.conv == 0 else 0.01)
        return True, ""

    results = asyncio.run(drive(slots, server, start_delay=0.0, clock=time.monotonic, give_up=0.2))
    assert sent == [(0, 0), (1, 0)]
    assert [(r.ok, r.error) for r in results] == [(True, ""), (False, GAVE_UP), (True, "")]


def test_a_failing_send_is_an_error_named_by_its_exception():
    async def broken(slot: Slot) -> tuple[bool, str]:
        raise ConnectionResetError("gone")

    (result,) = asyncio.run(drive([Slot(0.0, 0, "a", 0)], broken, start_delay=0.0))
    assert (result.ok, result.error) == (False, "ConnectionResetError")


def test_percentile_interpolates_between_closest_ranks():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 100) == 100.0 and percentile(values, 0) == 1.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None
    assert percentile([2.0, 1.0], 50) == 1.5  # unsorted input


def test_summary_of_a_level():
    results = [Result(Slot(k / 10, k, "a", 0), latency=(k + 1) / 100, ok=k != 3, error="" if k != 3 else "HTTP 500")
               for k in range(10)]
    s = summary(Level("turn", 10, results, seconds=2.0))
    assert (s["sent"], s["answered"], s["errors"], s["errors_by_kind"]) == (10, 9, 1, {"HTTP 500": 1})
    assert s["throughput"] == 4.5
    assert (s["p50_ms"], s["p95_ms"], s["max_ms"]) == (55.0, 95.5, 100.0)
    assert s["conversations"] == 10


def test_answers_are_checked_for_what_the_turn_expects():
    turn = Turn("我还欠多少钱", ("剩余应还",))
    assert answer_ok([{"text": "您的个人消费贷剩余应还 ¥1.00"}], turn) == (True, "")
    assert answer_ok([], turn) == (False, "empty answer")
    assert answer_ok([{"text": "系统暂时繁忙，查询不到您的账户信息，请稍后再试。"}], turn) == (False, "busy answer")
    assert answer_ok([{"text": "为保护您的账户安全"}], turn) == (False, "unexpected answer")
    assert answer_ok([{"text": "随便"}], Turn("x")) == (True, "")


def test_customers_go_round_robin_per_script_and_every_script_needs_some():
    c = Customers({"account": [1, 2], "plan": [7], "small_talk": [3]})
    assert [c.next("account") for _ in range(3)] == [1, 2, 1]
    assert c.next("plan") == 7
    with pytest.raises(ValueError):
        Customers({"account": [1], "plan": [], "small_talk": [3]})


def test_cpu_time_from_proc_stat():
    line = "1234 (python -m x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0"
    assert parse_stat(line) == pytest.approx(300 / os.sysconf("SC_CLK_TCK"))
    assert cpu_seconds(os.getpid(), children=False) > 0
    assert per_turn_ms({"rasa": 1.0, "actions": 2.0}, {"rasa": 1.5, "actions": 2.0}, 100) == {"rasa": 5.0,
                                                                                                "actions": 0.0}
    assert per_turn_ms({"rasa": 1.0}, {"rasa": 2.0}, 0) == {"rasa": None}
    assert waited_seconds(os.getpid(), children=False) >= 0


def _level(kind, rate, p50, p95, errors=0, throughput=None):
    return {"kind": kind, "rate": rate, "throughput": throughput if throughput is not None else rate,
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p95, "errors": errors,
            "errors_by_kind": {"HTTP 500": errors} if errors else {}, "cpu_ms_per_request": {"rasa": 12.5},
            "runqueue_wait_ms_per_request": {"rasa": 3.0}}


def test_targets_and_report(tmp_path):
    report = {"at": "now", "cpus": 2, "load_average_before": 0.5, "stack": "s", "duration": 40, "think": 3,
              "mix": {"account": 2}, "memory": {"rasa": {"rss_mb": 900.0, "peak_rss_mb": 950.0}},
              "levels": [_level("turn", 10, 30.0, 60.0), _level("turn", 20, 40.0, 250.0),
                         _level("turn", 100, 400.0, 1200.0, errors=2, throughput=90.0),
                         _level("parse", 10, 5.0, 8.0)]}
    got = {t["target"]: (t["measured"], t["met"]) for t in targets(report)}
    assert got == {
        "100 turns/s sustained, p95 < 1 s, 0 errors": ("90.0 turns/s, p95 1200.0 ms, 2 errors", False),
        "p95 < 300 ms at 20 turns/s": ("p95 250.0 ms", True),
        "turn p50 <= 5x bare parse p50": ("30.0 ms / 5.0 ms = 6.0x at 10/s", False),
    }
    md = markdown({**report, "targets": targets(report)})
    assert "| conversation turns | 10 | 10 | 30.0 | 60.0 | 60.0 | 0 | 12.5 |  |  |  |" in md
    assert "| bare /model/parse | 10 | 10 | 5.0 | 8.0 | 8.0 | 0 | 12.5 |  |  |  |" in md
    assert "| p95 < 300 ms at 20 turns/s | p95 250.0 ms | yes |" in md
    assert "Errors by kind: {'turn 100/s': {'HTTP 500': 2}}" in md
    assert "waited for a CPU (the machine's other work; load average 0.5 before, None after): {'turn 10/s': {'rasa': 3.0}" in md
    write(report, {"10 turns/s": [(0.0, 30.0), (0.1, 35.0)]}, tmp_path / "bench")
    assert json.loads((tmp_path / "bench.json").read_text())["targets"][1]["met"] is True
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "bench.md").read_text() == md


def test_profile_summary_counts_self_inclusive_and_packages():
    raw = "\n".join([
        "run (rasa/core/run.py:10);predict (rasa/core/policies/ted_policy.py:5);call (tensorflow/x.py:1) 60",
        "run (rasa/core/run.py:10);load (rasa/core/tracker_store.py:7);execute (sqlalchemy/engine.py:3) 30",
        "run (rasa/core/run.py:11);dumps (/usr/lib/python3.10/json/__init__.py:2) 10",
    ])
    text = summarise(raw)
    assert text.splitlines()[0].startswith("100 samples")
    assert "     100 100.0%  run (rasa/core/run.py)" in text
    assert "      60  60.0%  predict (rasa/core/policies/ted_policy.py)" in text
    assert "      60  60.0%  rasa/core/policies" in text
    assert "      30  30.0%  sqlalchemy" in text
    assert "      10  10.0%  dumps (json/__init__.py)" in text
