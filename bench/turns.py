"""`make bench`: conversation turns per second through the real stack, open loop.

    .venv-app/bin/python -m bench.turns                       # 10, 20, 50, 100 turns/s, 40 s each
    .venv-app/bin/python -m bench.turns --rates 20 --duration 30 --profile 20

1. The stack as the end-to-end tests run it (bench.stack.start_turn_stack): backend (uvicorn), action
   server and Rasa on free ports, SQLite backend and tracker store, 320 demo customers, no scheduler.
2. Conversations of demo borrowers over the REST channel (/webhooks/rest/webhook), each a new
   signed-in web chat (bench.conversations: balance / schedule / history, a plan request to its
   quote, small talk), sent by the open-loop generator (bench.load) at each rate in turn: the
   turns are sent on schedule whether or not earlier ones were answered, latency counted from the
   scheduled time. An answer that is empty, 「系统繁忙」 or not the expected one is an error.
3. The bare NLU (Rasa's /model/parse) at the same rates: the floor a turn is compared with.
4. Per level: p50/p95/p99, answered per second, errors, CPU milliseconds per request of each process
   (utime + stime from /proc/<pid>/stat, children included) and the memory of each process.
5. reports/bench.json, bench.md (the README's table), bench.png; with ``--profile RATE``, py-spy
   samples Rasa and the action server during that turn level: reports/profile-<process>.svg
   (flame graph) and profile-<process>.txt (the functions that cost most, self and inclusive).

The machine's other work shows in the numbers: the load average before the run is in the report.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import aiohttp

from bench.conversations import BY_NAME, PARSE_TEXTS, SCRIPTS, Customers, answer_ok, borrowers
from bench.load import GAVE_UP, Level, Slot, drive, schedule, summary, uniform
from bench.procstat import per_turn_ms, snapshot, waits
from bench.stack import TURN_API_KEY, memory_mb, start_turn_stack
from bench.turns_report import write

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = aiohttp.ClientTimeout(total=30)  # a turn not answered in 30 s is an error
GIVE_UP = 30.0  # seconds after a level's last scheduled turn: what still waits is not sent (an error)


class Bench:
    def __init__(self, env: dict[str, str], pools: dict[str, list[int]]) -> None:
        self.rasa = env["RASA_URL"].rstrip("/")
        self.backend = env["BACKEND_URL"].rstrip("/")
        self.token = env["RASA_API_TOKEN"]
        self.customers = Customers(pools)
        self.http: aiohttp.ClientSession | None = None
        self.samples: list[dict] = []  # a few failed turns with what was said (the report's error_samples)

    async def __aenter__(self) -> Bench:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4000), timeout=TIMEOUT)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.close()

    async def web_senders(self, slots: list[Slot]) -> dict[int, str]:
        """A new signed-in web chat per conversation (as /webchat/login/verify opens one), untimed."""
        convs = {s.conv: s.script for s in slots}
        senders: dict[int, str] = {}
        gate = asyncio.Semaphore(8)

        async def open_one(conv: int, script: str) -> None:
            async with gate:
                async with self.http.post(f"{self.backend}/api/v1/webchat/sessions",
                                          json={"customer_id": self.customers.next(script)},
                                          headers={"X-API-Key": TURN_API_KEY}) as r:
                    r.raise_for_status()
                    senders[conv] = (await r.json())["sender_id"]

        await asyncio.gather(*(open_one(c, s) for c, s in convs.items()))
        return senders

    async def turns(self, slots: list[Slot]):
        senders = await self.web_senders(slots)
        url = f"{self.rasa}/webhooks/rest/webhook"

        async def send(slot: Slot) -> tuple[bool, str]:
            turn = BY_NAME[slot.script].turns[slot.turn]
            async with self.http.post(url, json={"sender": senders[slot.conv], "message": turn.text}) as r:
                if r.status != 200:
                    return False, f"HTTP {r.status}"
                messages = await r.json()
                ok, error = answer_ok(messages, turn)
                if not ok and len(self.samples) < 10:
                    self.samples.append({"script": slot.script, "turn": slot.turn, "error": error,
                                         "answer": " / ".join(m.get("text") or "" for m in messages)[:160]})
                return ok, error

        return send

    def parses(self):
        url = f"{self.rasa}/model/parse?token={self.token}"

        async def send(slot: Slot) -> tuple[bool, str]:
            async with self.http.post(url, json={"text": PARSE_TEXTS[slot.conv % len(PARSE_TEXTS)]}) as r:
                if r.status != 200:
                    return False, f"HTTP {r.status}"
                body = await r.json()
                return (True, "") if body.get("intent", {}).get("name") else (False, "no intent")

        return send


async def run_level(bench: Bench, kind: str, rate: float, duration: float, think: float,
                    pids: dict[str, int], ready=None) -> tuple[Level, dict]:
    """One level; ``ready()`` is called once its conversations are opened, right before the first send."""
    slots = schedule(rate, duration, SCRIPTS, think) if kind == "turn" else uniform(rate, duration)
    send = await bench.turns(slots) if kind == "turn" else bench.parses()
    if ready is not None:
        ready()
    cpu_before, wait_before, started = snapshot(pids), waits(pids), time.monotonic()
    results = await drive(slots, send, give_up=GIVE_UP)
    level = Level(kind, rate, results, time.monotonic() - started)
    sent = sum(r.error != GAVE_UP for r in results)  # what reached the server (answered in time or not)
    cpu = per_turn_ms(cpu_before, snapshot(pids), sent)
    out = {**summary(level), "cpu_ms_per_request": cpu,
           # ready to run but waiting for a CPU (other work on the machine, or each other)
           "runqueue_wait_ms_per_request": per_turn_ms(wait_before, waits(pids), sent),
           "by_script": dict(Counter(r.slot.script for r in results)) if kind == "turn" else None}
    return level, out


class Profiler:
    """py-spy sampling a process for ``seconds``: a flame graph and the collapsed stacks, both at once
    (--nonblocking: the process is not paused to be read)."""

    def __init__(self, name: str, pid: int, seconds: float, out: Path) -> None:
        exe = shutil.which("py-spy") or str(ROOT / ".venv-app" / "bin" / "py-spy")
        common = ["--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100", "--nonblocking"]
        self.raw = out / f"profile-{name}.raw"
        self.txt = out / f"profile-{name}.txt"
        self.procs = [subprocess.Popen([exe, "record", *common, "--format", f, "-o", str(path)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                      for f, path in (("flamegraph", out / f"profile-{name}.svg"), ("raw", self.raw))]

    def finish(self) -> None:
        for p in self.procs:
            _, err = p.communicate(timeout=120)
            if p.returncode:
                print(f"py-spy failed ({p.returncode}): {err.decode(errors='replace')[-500:]}", file=sys.stderr)
        if self.raw.exists():
            from bench.profile_summary import summarise

            self.txt.write_text(summarise(self.raw.read_text(encoding="utf-8", errors="replace")), encoding="utf-8")


async def main_async(args: argparse.Namespace) -> None:
    run_dir = ROOT / "var" / "bench" / "turns"
    shutil.rmtree(run_dir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report: dict = {"at": datetime.now().astimezone().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                    "load_average_before": round(os.getloadavg()[0], 2), "duration": args.duration,
                    "think": args.think, "mix": {s.name: s.weight for s in SCRIPTS},
                    "stack": "backend + action server + Rasa, SQLite, REST channel, 320 demo customers",
                    "model": str(args.model) if args.model else "current",
                    "rasa_speedups": not args.baseline}
    print("==> starting backend, action server and Rasa (SQLite, 320 demo customers)", flush=True)
    extra = {"RASA_MODEL_PATH": str(args.model.resolve())} if args.model else {}
    if args.baseline:
        extra["RASA_SPEEDUPS"] = "0"
    stack = start_turn_stack(run_dir, extra=extra)
    try:
        pools = borrowers(stack.env["DATABASE_URL"].removeprefix("sqlite:///"))
        pools["plan"] = await eligible(stack.env, pools["plan"])
        pids = {name: proc.pid for name, proc in stack.procs.items()}
        pids["loadgen"] = os.getpid()
        report["borrowers"] = {k: len(v) for k, v in pools.items()}
        timelines: dict[str, list[tuple[float, float]]] = {}
        async with Bench(stack.env, pools) as bench:
            print(f"==> warm-up: {args.warmup} s at 5 turns/s (not counted)", flush=True)
            _, warm = await run_level(bench, "turn", 5, args.warmup, args.think, pids)
            report["warmup"] = {k: warm[k] for k in ("sent", "errors", "errors_by_kind", "p50_ms")}
            if warm["errors"]:
                print(f"    warm-up errors: {warm['errors_by_kind']}", flush=True)
            levels = []
            for kind, rates, duration in (("turn", args.rates, args.duration),
                                          ("parse", args.parse_rates, args.parse_duration)):
                for rate in rates:
                    profiler: list[Profiler] = []

                    def ready(kind=kind, rate=rate, profiler=profiler) -> None:
                        if kind == "turn" and args.profile == rate:
                            profiler += [Profiler(name, pids[name], args.duration * 0.9, args.out.parent)
                                         for name in ("rasa", "actions", "backend")]

                    print(f"==> {kind} {rate:g}/s for {duration:g} s", flush=True)
                    level, out = await run_level(bench, kind, rate, duration, args.think, pids, ready)
                    if profiler:
                        for p in profiler:
                            p.finish()
                    out["memory"] = {name: memory_mb(pid) for name, pid in pids.items() if name != "loadgen"}
                    levels.append(out)
                    if kind == "turn":
                        timelines[f"{rate:g} turns/s"] = [(r.slot.at, r.latency * 1000) for r in level.results]
                    print(f"    answered {out['answered']}/{out['sent']} ({out['throughput']}/s), p50 {out['p50_ms']} "
                          f"p95 {out['p95_ms']} p99 {out['p99_ms']} ms, errors {out['errors_by_kind'] or 0}; "
                          f"CPU ms/request {out['cpu_ms_per_request']}", flush=True)
                    await asyncio.sleep(args.pause)
            report["levels"] = levels
            report["error_samples"] = bench.samples
        report["memory"] = {name: memory_mb(pid) for name, pid in pids.items() if name != "loadgen"}
        report["memory"]["loadgen"] = memory_mb(os.getpid(), children=False)
        report["load_average_after"] = round(os.getloadavg()[0], 2)
    finally:
        stack.stop()
    report["logs"] = str(run_dir.relative_to(ROOT))
    print(write(report, timelines, args.out))


async def eligible(env: dict[str, str], customers: list[int], want: int = 40) -> list[int]:
    """Those of ``customers`` whose loan is quoted a 12-month plan (the plan script asks for one)."""
    backend, headers = env["BACKEND_URL"].rstrip("/"), {"X-API-Key": TURN_API_KEY}
    found = []
    async with aiohttp.ClientSession(headers=headers, timeout=TIMEOUT) as http:
        for cid in customers:
            async with http.get(f"{backend}/api/v1/customers/{cid}/loans") as r:
                loans = await r.json()
            async with http.get(f"{backend}/api/v1/loans/{loans[0]['id']}/plan-quote",
                                params={"plan_type": "instalment", "months": "12"}) as r:
                if r.status == 200 and (await r.json()).get("eligible"):
                    found.append(cid)
            if len(found) >= want:
                break
    return found


def rates(value: str) -> list[float]:
    return [float(v) for v in value.replace(",", " ").split()] if value.strip() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=rates, default=rates("10 20 50 100"),
                        help="turn levels, turns/s (BENCH_RATES)")
    parser.add_argument("--parse-rates", type=rates, default=None, help="bare /model/parse levels (default: --rates)")
    parser.add_argument("--duration", type=float, default=40.0,
                        help="seconds a turn level (BENCH_DURATION)")
    parser.add_argument("--parse-duration", type=float, default=None, help="seconds a parse level (default: 20)")
    parser.add_argument("--think", type=float, default=3.0, help="seconds between a conversation's turns, at least")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of warm-up at 5 turns/s")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds of rest between levels")
    parser.add_argument("--profile", type=float, default=None, help="py-spy Rasa and actions during this turn rate")
    parser.add_argument("--model", type=Path, help="another Rasa model (an experiment; default: the current one)")
    parser.add_argument("--baseline", action="store_true",
                        help="Rasa without the hot-path fixes of bot/launch.py (RASA_SPEEDUPS=0), to compare")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    args = parser.parse_args()
    args.parse_rates = args.rates if args.parse_rates is None else args.parse_rates
    args.parse_duration = args.parse_duration or min(20.0, args.duration)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
