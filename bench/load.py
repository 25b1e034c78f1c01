"""The open-loop load generator of the turn benchmark (bench.turns): a fixed arrival rate, whatever
the server does.

* :func:`schedule` lays out every turn of a level before it starts: one turn every ``1/rate``
  seconds, each given to a conversation whose previous turn is at least ``think`` seconds earlier,
  or to a new conversation (scripts taken in turn from a weighted mix). So the level sends exactly
  ``rate`` turns a second from its first second, conversations overlap as they would in real life
  (about ``rate * think`` at once), and each keeps its order.
* :func:`drive` sends them on schedule, each in its own task: a turn starts at its time whether or
  not earlier turns were answered. A conversation's next turn still waits for the answer to its
  previous one (a borrower reads before writing again), and its latency is counted from its
  *scheduled* time, so a server that falls behind shows as latency, not as a slower sender
  (no coordinated omission).
* :func:`summary` and :func:`percentile`: what a level's results come to.

Standard library only; the unit test (tests/backend/test_bench_load.py) runs it against a fake.
"""
from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Turn:
    """One borrower message and what its answer must contain (any of ``expect``; empty: any answer)."""

    text: str
    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class Script:
    """A conversation: its turns in order; ``weight`` its share of new conversations."""

    name: str
    turns: tuple[Turn, ...]
    weight: int = 1


@dataclass(frozen=True)
class Slot:
    """Turn ``turn`` of conversation ``conv`` (script ``script``), sent ``at`` seconds into the level."""

    at: float
    conv: int
    script: str
    turn: int


@dataclass
class Result:
    slot: Slot
    latency: float  # seconds from the scheduled time to the answer (or the failure)
    ok: bool
    error: str = ""
    waited: float = 0.0  # seconds the turn waited past its time (its conversation's previous answer)


def mix(scripts: Sequence[Script]) -> list[Script]:
    """The order new conversations take their script: smooth weighted round robin (weights 2:1:1 give
    a, b, a, c, a, b, a, c ...), so any stretch of conversations has the mix's proportions."""
    total = sum(s.weight for s in scripts)
    current = [0] * len(scripts)
    order = []
    for _ in range(total):
        for i, s in enumerate(scripts):
            current[i] += s.weight
        best = max(range(len(scripts)), key=lambda i: current[i])
        current[best] -= total
        order.append(scripts[best])
    return order


def schedule(rate: float, duration: float, scripts: Sequence[Script], think: float) -> list[Slot]:
    """Every turn of a level of ``duration`` seconds at ``rate`` turns a second (see the module doc)."""
    if rate <= 0 or duration <= 0:
        return []
    order = mix(scripts)
    ready: list[tuple[float, int, int]] = []  # (ready at, conversation, next turn) of unfinished ones
    scripts_of: dict[int, Script] = {}
    slots = []
    for k in range(int(round(rate * duration))):
        at = k / rate
        if ready and ready[0][0] <= at + 1e-9:
            _, conv, turn = heapq.heappop(ready)
        else:
            conv, turn = len(scripts_of), 0
            scripts_of[conv] = order[conv % len(order)]
        script = scripts_of[conv]
        slots.append(Slot(round(at, 6), conv, script.name, turn))
        if turn + 1 < len(script.turns):
            heapq.heappush(ready, (at + think, conv, turn + 1))
    return slots


Send = Callable[[Slot], Awaitable[tuple[bool, str]]]


GAVE_UP = "not sent: server too far behind"


async def drive(slots: Sequence[Slot], send: Send, start_delay: float = 0.2,
                clock: Callable[[], float] | None = None, give_up: float | None = None) -> list[Result]:
    """Send every slot at its time (open loop; see the module doc). ``send`` returns (ok, error)
    and may raise (counted as an error named by the exception type). ``give_up``: a turn still
    waiting for its conversation's previous answer this many seconds after the last scheduled
    send is not sent but counted as an error (GAVE_UP), so an overloaded level ends."""
    loop = asyncio.get_running_loop()
    now = clock or loop.time
    t0 = now() + start_delay
    previous: dict[int, asyncio.Task] = {}
    tasks: list[asyncio.Task] = []

    async def one(slot: Slot, due: float, before: asyncio.Task | None) -> Result:
        if before is not None:
            await asyncio.wait([before])  # its answer first, whatever it was
        waited = max(0.0, now() - due)
        if give_up is not None and slots and now() > t0 + slots[-1].at + give_up:
            return Result(slot, now() - due, False, GAVE_UP, waited)
        try:
            ok, error = await send(slot)
        except Exception as exc:  # noqa: BLE001 - every failure is a result of the benchmark
            ok, error = False, type(exc).__name__
        return Result(slot, now() - due, ok, error, waited)

    try:
        for slot in slots:
            due = t0 + slot.at
            delay = due - now()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(one(slot, due, previous.get(slot.conv)))
            previous[slot.conv] = task
            tasks.append(task)
        return list(await asyncio.gather(*tasks))
    except asyncio.CancelledError:  # interrupted (Ctrl-C): nothing left running behind
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0..100) by linear interpolation between closest ranks (numpy's
    default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Level:
    """A level's results: what was sent, over how long (first scheduled send to last answer)."""

    kind: str  # "turn" or "parse"
    rate: float
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def summary(level: Level) -> dict:
    """p50/p95/p99/max latency (ms, over every turn: failed ones count with their time too),
    throughput answered, errors by kind, and how long turns waited for their conversation."""
    latencies = [r.latency for r in level.results]
    answered = [r for r in level.results if r.ok]
    errors: dict[str, int] = {}
    for r in level.results:
        if not r.ok:
            errors[r.error] = errors.get(r.error, 0) + 1
    return {
        "kind": level.kind, "rate": level.rate, "sent": len(level.results), "answered": len(answered),
        "errors": len(level.results) - len(answered), "errors_by_kind": errors,
        "seconds": round(level.seconds, 2),
        "throughput": round(len(answered) / level.seconds, 2) if level.seconds else None,
        "p50_ms": ms(percentile(latencies, 50)), "p95_ms": ms(percentile(latencies, 95)),
        "p99_ms": ms(percentile(latencies, 99)), "max_ms": ms(max(latencies) if latencies else None),
        "waited_p95_ms": ms(percentile([r.waited for r in level.results], 95)),
        "conversations": len({r.slot.conv for r in level.results}) if level.kind == "turn" else None,
    }


def uniform(rate: float, duration: float, name: str = "parse") -> list[Slot]:
    """One single-message request every ``1/rate`` seconds (the bare /model/parse levels)."""
    return [Slot(round(k / rate, 6), k, name, 0) for k in range(int(round(rate * duration)))] if rate > 0 else []
