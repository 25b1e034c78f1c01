"""`make bench-outreach`: plan a day's notices over a large generated book, deliver a sample through
the real Rasa to fake channel servers, and measure time, throughput and memory.

    .venv-app/bin/python -m bench.delivery --loans 100000 --deliver 2000 --dispatchers 1,2 --concurrency 8
    .venv-app/bin/python -m bench.delivery --url postgresql+psycopg://postgres@127.0.0.1:5432/bench

1. The book (bench.book.generate_book) is written into a fresh database, in a child process so
   that its lists do not count in this process's memory.
2. This process plans the day (backend.services.outreach.planner.plan_day: the start-of-day run and
   an hourly re-run), timed, as the scheduler process does.
3. The real backend, action server and Rasa start on that database (bench.stack), WeChat
   and SMS pointed at the channel tests' fake APIs (bench.fakes, their own process).
4. This process then is the scheduler's dispatchers: backend.services.outreach.dispatcher.dispatch_due
   with a RasaSender (one pooled HTTP client), on the scheduler's demo clock at 10:00 of the day,
   one batch per call until ``--deliver`` notices are sent (after ``--warmup`` untimed ones); a row
   for each dispatcher count in ``--dispatchers`` (threads, as the scheduler runs them) and each
   value of ``--concurrency`` (deliveries in flight per dispatcher). Each notice: rules, routing,
   Rasa (the tracker read, a new conversation's session, a bot message appended to the tracker),
   the channel's output, a fake server.
5. What the fakes received is compared with what the outreach log marks sent: every sent notice
   reached its WeChat openid or phone number exactly once, nothing else arrived.
6. reports/outreach-bench.json and .md: planning time; per row notices per second, the delivery's
   p50/p95, each kind of Rasa call's latency, CPU ms per notice of each process (this dispatcher
   process, the backend, the action server, Rasa, the fakes: where the time goes); peak memory
   (VmHWM) of the processes. Exit status 1 if the check failed.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from multiprocessing import get_context
from pathlib import Path

from bench.report import check, write_reports
from bench.stack import Fakes, _tree, memory_mb, start_stack

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BenchClock:
    """The scheduler's clock under OUTREACH_DEMO_TIME=10:00: the business day at 10:00, running on in
    real time; ``wall`` is the real time (what the WeChat channel checks its window against)."""

    day: date
    at: dt_time = dt_time(10)
    started: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        from backend.core.clock import SHANGHAI

        return datetime.combine(self.day, self.at, SHANGHAI) + timedelta(seconds=time.monotonic() - self.started)

    def wall(self) -> datetime:
        from backend.core.clock import SHANGHAI

        return datetime.now(SHANGHAI)


def outreach(rules, clock: BenchClock, sender, holder: str):
    from backend.services.outreach.context import Outreach

    ctx = Outreach(rules, clock.now, sender, holder=holder, actor="bench")
    if hasattr(ctx, "clock_wall"):
        ctx.clock_wall = clock.wall
    return ctx


def generate(url: str, loans: int, day: date) -> dict:
    """In a child process: the schema and the book."""
    from backend.cli import migrate
    from backend.db import make_engine, make_sessionmaker
    from bench.book import generate_book

    migrate(url)
    engine = make_engine(url)
    started = time.perf_counter()
    with make_sessionmaker(engine)() as db:
        book = generate_book(db, loans, day)
    engine.dispose()
    return {**book, "seconds": round(time.perf_counter() - started, 1)}


def plan(sessions, rules, day: date) -> dict:
    from backend.core.clock import SHANGHAI
    from backend.services.outreach.planner import plan_day

    out = {}
    with sessions() as db:
        for label, hour in (("first_run", 7), ("hourly_rerun", 8)):
            started = time.perf_counter()
            result = plan_day(db, rules, day, datetime.combine(day, datetime.min.time(), SHANGHAI) + timedelta(hours=hour))
            out[label] = {"notices": result["inserted"], "by_kind": result["by_kind"],
                          "seconds": round(time.perf_counter() - started, 2)}
    return out


@dataclass
class CallTimes:
    """Seconds of each call to Rasa's HTTP API, by what it is for: ``look`` (GET the tracker before a
    delivery), ``session`` (a new conversation's session opened), ``deliver`` (the bot message
    appended with execute_side_effects), ``deliver_total`` (session + deliver: the sender's send)."""

    seconds: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, took: float) -> None:
        with self.lock:
            self.seconds.setdefault(what, []).append(took)

    def clear(self) -> None:
        with self.lock:
            self.seconds = {}

    def summary(self) -> dict:
        with self.lock:
            return {what: {"calls": len(v), **ms(v)} for what, v in sorted(self.seconds.items())}


def timed_client(url: str, token: str, times: CallTimes, max_connections: int):
    """The backend's RasaClient (one pooled httpx.Client), each call timed into ``times``."""
    from backend.services.rasa_api import RasaClient

    class TimedClient(RasaClient):
        def _call(self, method: str, conversation: str, tail: str, **kw) -> dict:
            what = "look" if method == "GET" else \
                "deliver" if "output_channel" in (kw.get("params") or {}) else "session"
            started = time.perf_counter()
            try:
                return super()._call(method, conversation, tail, **kw)
            finally:
                times.add(what, time.perf_counter() - started)

    return TimedClient(url, token, max_connections=max_connections)


@dataclass
class TimedSender:
    """The RasaSender, with each delivery (session opened if new, the bot message appended) timed."""

    inner: object
    times: CallTimes

    def send(self, *args):
        started = time.perf_counter()
        result = self.inner.send(*args)
        self.times.add("deliver_total", time.perf_counter() - started)
        return result

    def find(self, conversation, notice_id):
        return self.inner.find(conversation, notice_id)

    def look(self, conversation):
        return self.inner.look(conversation)


def dispatch(sessions, rules, clock, sender, target: int, holder: str, batch: int = 100,
             concurrency: int = 1) -> Counter:
    """The dispatcher (dispatch_due with ``concurrency`` deliveries in flight), one batch per call,
    until ``target`` notices were sent or nothing is due any more; outcomes counted."""
    from backend.services.outreach import dispatcher

    counts: Counter = Counter()
    with sessions() as db:
        while counts["sent"] < target:
            size = min(batch, target - counts["sent"])
            cfg = rules.outreach.model_copy(update={"batch_size": size})
            ctx = outreach(rules.model_copy(update={"outreach": cfg}), clock, sender, holder)
            once = [True, False]
            got = dispatcher.dispatch_due(db, ctx, keep_going=lambda once=once: once.pop(0) if once else False,
                                          concurrency=concurrency)
            counts.update(got)
            if sum(got.values()) < size and not due(db, clock.now()):
                break  # nothing more is due (a short batch alone may be another dispatcher's claim)
    return counts


def due(db, now: datetime) -> bool:
    from sqlalchemy import exists, select

    from backend.models import OutreachNotice as N, OutreachStatus

    return db.scalar(select(exists().where(N.status == OutreachStatus.planned, N.next_attempt_at <= now)))


def deliver(sessions, rules, clock, sender, target: int, dispatchers: int, concurrency: int) -> tuple[Counter, float]:
    """``dispatchers`` dispatchers in threads (as the scheduler runs them), sharing the target, each
    with ``concurrency`` deliveries in flight."""
    shares = [target // dispatchers + (i < target % dispatchers) for i in range(dispatchers)]
    results: list[Counter] = [Counter() for _ in shares]

    def run(i: int) -> None:
        results[i] = dispatch(sessions, rules, clock, sender, shares[i], holder=f"bench-{dispatchers}x{concurrency}-{i}",
                              concurrency=concurrency)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(dispatchers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results, Counter()), time.perf_counter() - started


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) so far of each process and its children, from /proc; "dispatcher"
    (this process, the parent of the stack) without its children."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        total = 0
        for p in ([pid] if name == "dispatcher" else _tree(pid)):
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        out[name] = total / ticks
    return out


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def sent_notices(sessions) -> list[dict]:
    from sqlalchemy import select

    from backend.models import OutreachNotice as N, OutreachStatus

    with sessions() as db:
        rows = db.execute(select(N.conversation, N.channel, N.kind).where(N.status == OutreachStatus.sent)).all()
    return [{"conversation": c, "channel": ch.value, "kind": k.value} for c, ch, k in rows]


def sms_rows_by_number(sessions) -> Counter:
    from sqlalchemy import func, select

    from backend.models import SmsMessage

    with sessions() as db:
        return Counter(dict(db.execute(select(SmsMessage.to_hash, func.count()).group_by(SmsMessage.to_hash)).all()))


def ms(values: list[float]) -> dict:
    if not values:
        return {}
    q = statistics.quantiles(values, n=20) if len(values) > 1 else values * 19
    return {"p50": round(statistics.median(values) * 1000), "p95": round(q[18] * 1000),
            "max": round(max(values) * 1000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--deliver", type=int, default=2000, help="notices to send through Rasa, timed")
    parser.add_argument("--warmup", type=int, default=20, help="notices sent first, untimed (Rasa's first calls)")
    parser.add_argument("--dispatchers", type=ints, default=None,
                        help="dispatcher counts to measure, one row each (default: 1 and OUTREACH_DISPATCHERS)")
    parser.add_argument("--concurrency", type=ints, default=None,
                        help="deliveries in flight per dispatcher, one row each with every dispatcher count "
                             "(default: OUTREACH_DELIVERY_CONCURRENCY; 1 is the one-by-one dispatcher)")
    parser.add_argument("--day", type=date.fromisoformat, help="the business day (default: today, Asia/Shanghai)")
    parser.add_argument("--url", help="an empty database for the book (default: a new SQLite file in var/bench)")
    parser.add_argument("--tracker-url", help="Rasa's tracker store (default: a new SQLite file in var/bench)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "outreach-bench")
    args = parser.parse_args()

    from backend.core.config import get_settings, load_rules
    from backend.db import make_engine, make_sessionmaker
    from backend.services.outreach.sender import RasaSender
    from backend.core.clock import SHANGHAI

    args.day = args.day or datetime.now(SHANGHAI).date()
    settings = get_settings()
    args.dispatchers = args.dispatchers or sorted({1, settings.outreach_dispatchers})
    args.concurrency = args.concurrency or [settings.outreach_delivery_concurrency]
    runs = [(d, c) for c in args.concurrency for d in args.dispatchers]
    run_dir = ROOT / "var" / "bench" / "delivery"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    url = args.url or f"sqlite:///{run_dir / f'outreach-{args.loans}.db'}"
    tracker_url = args.tracker_url or f"sqlite:///{run_dir / 'tracker.db'}"
    report: dict = {"at": datetime.now().astimezone().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                    "database": url.split(":")[0].split("+")[0], "tracker_store": tracker_url.split(":")[0],
                    "day": args.day.isoformat(), "loans": args.loans,
                    "load_average_before": round(os.getloadavg()[0], 2)}  # other work on the machine

    print(f"==> generating {args.loans:,} loans into a fresh {report['database']} database (child process)", flush=True)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        report["book"] = pool.submit(generate, url, args.loans, args.day).result()
    print(f"    {report['book']}", flush=True)

    rules = load_rules(get_settings().business_rules_path)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    print("==> planning the day's notices", flush=True)
    report["planning"] = plan(sessions, rules, args.day)
    print(f"    {report['planning']}", flush=True)
    report["memory"] = {"scheduler_after_planning": memory_mb(os.getpid(), children=False)}

    print("==> starting the fake WeChat and Twilio APIs, backend, action server and Rasa", flush=True)
    fakes = Fakes()
    stack = None
    try:
        stack = start_stack(run_dir, url, tracker_url, args.day, fakes)
        pids = {name: proc.pid for name, proc in stack.procs.items()}
        report["memory_ready"] = {"scheduler": memory_mb(os.getpid(), children=False),
                                  **{name: memory_mb(pid) for name, pid in pids.items()}}
        times = CallTimes()
        client = timed_client(stack.env["RASA_URL"], stack.env["RASA_API_TOKEN"], times,
                              max_connections=max(d * c for d, c in runs))
        sender = TimedSender(RasaSender(client), times)
        clock = BenchClock(args.day)
        print(f"==> warm-up: {args.warmup} notices (untimed)", flush=True)
        warm = dispatch(sessions, rules, clock, sender, args.warmup, holder="bench-warmup")
        report["warmup_outcomes"] = dict(warm)
        report["runs"] = []
        for dispatchers, concurrency in runs:
            times.clear()
            print(f"==> delivering {args.deliver:,} notices: {dispatchers} dispatcher(s) x {concurrency} in flight",
                  flush=True)
            procs = {"dispatcher": os.getpid(), **pids, "fakes": fakes.proc.pid}
            cpu_before = cpu_seconds(procs)
            counts, seconds = deliver(sessions, rules, clock, sender, args.deliver, dispatchers, concurrency)
            cpu_after = cpu_seconds(procs)
            calls = times.summary()
            row = {
                "dispatchers": dispatchers, "concurrency": concurrency, "target": args.deliver,
                "outcomes": dict(counts), "seconds": round(seconds, 1),
                "sent_per_second": round(counts["sent"] / seconds, 2) if seconds else None,
                "processed_per_second": round(sum(counts.values()) / seconds, 2) if seconds else None,
                "rasa_call_ms": calls.get("deliver_total", {}), "rasa_calls": calls,
                # CPU ms per processed notice, by process (fakes: the WeChat / Twilio fakes): where the time goes
                "cpu_ms_per_notice": {name: round((cpu_after[name] - cpu_before[name]) * 1000 / max(1, sum(counts.values())), 1)
                                      for name in cpu_after},
                "cpu_utilisation": {name: round((cpu_after[name] - cpu_before[name]) / seconds, 2) for name in cpu_after},
            }
            report["runs"].append(row)
            print(f"    {row}", flush=True)
        received = fakes.settled()
        report["delivery"] = report["runs"][-1]
        report["memory"].update({"scheduler": memory_mb(os.getpid(), children=False),
                                 **{name: memory_mb(pid) for name, pid in pids.items()}})
        report["check"] = check(sent_notices(sessions), received, sms_rows_by_number(sessions),
                                lambda number: hashlib.sha256(number.encode()).hexdigest())
    finally:
        if stack is not None:
            stack.stop()
        fakes.stop()
        engine.dispose()
    report["logs"] = str(run_dir.relative_to(ROOT))
    print(write_reports(report, args.out))
    sys.exit(0 if report["check"]["ok"] else 1)


if __name__ == "__main__":
    main()
