"""The delivery benchmark's check (what the fake servers received against the outreach log) and its
reports (reports/outreach-bench.json and .md)."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable


def messages_in(bodies: list[str]) -> int:
    """How many times one SMS text arrived at a number: its segments come in order, so each delivery
    starts again with the first segment."""
    return bodies.count(bodies[0]) if bodies else 0


def check(sent: list[dict], received: dict, sms_rows: Counter, number_hash: Callable[[str], str]) -> dict:
    """Every notice the log marks sent reached its WeChat openid or phone number exactly once, and the
    fakes received nothing else. ``sent``: conversation, channel, kind of each sent notice;
    ``received``: bench.fakes.dump(); ``sms_rows``: the backend's SMS log, rows by number hash."""
    problems: list[str] = []
    conversations = Counter(n["conversation"] for n in sent)
    twice = [c for c, k in conversations.items() if k > 1]
    if twice:
        problems.append(f"{len(twice)} conversations were sent more than one notice")
    by_channel = Counter(n["channel"] for n in sent)
    expected = {ch: {n["conversation"].partition(":")[2] for n in sent if n["channel"] == ch} for ch in by_channel}

    wechat = Counter(m["touser"] for m in received["wechat"])
    wechat_kinds = Counter(m["kind"] for m in received["wechat"])
    if set(wechat) != expected.get("wechat", set()):
        missing = expected.get("wechat", set()) - set(wechat)
        extra = set(wechat) - expected.get("wechat", set())
        problems.append(f"WeChat: {len(missing)} sent notices not received, {len(extra)} openids not in the log")
    dup_wechat = sum(k - 1 for k in wechat.values() if k > 1)

    sms: dict[str, list[str]] = defaultdict(list)
    for m in received["sms"]:
        sms[m["to"]].append(m["body"])
    if set(sms) != expected.get("sms", set()):
        missing = expected.get("sms", set()) - set(sms)
        extra = set(sms) - expected.get("sms", set())
        problems.append(f"SMS: {len(missing)} sent notices not received, {len(extra)} numbers not in the log")
    dup_sms = sum(messages_in(b) - 1 for b in sms.values())
    segments_mismatch = sum(len(b) != sms_rows.get(number_hash(n), 0) for n, b in sms.items())
    if segments_mismatch:
        problems.append(f"SMS: {segments_mismatch} numbers got a different number of segments than the backend sent")
    if dup_wechat or dup_sms:
        problems.append(f"duplicates: {dup_wechat} on WeChat, {dup_sms} by SMS")
    if received["sms_refused"] or received["wechat_other"]:
        problems.append(f"unexpected requests: {received['sms_refused']} refused by Twilio, "
                        f"{received['wechat_other']} to other WeChat endpoints")
    others = {ch: k for ch, k in by_channel.items() if ch not in ("wechat", "sms")}
    if others:
        problems.append(f"sent on channels without a fake server to count them: {others}")
    delivered = sum(wechat.values()) + sum(messages_in(b) for b in sms.values())
    if delivered != len(sent):
        problems.append(f"received {delivered} messages, the outreach log marks {len(sent)} sent")
    return {
        "ok": not problems, "problems": problems,
        "sent_in_log": len(sent), "sent_by_channel": dict(by_channel),
        "sent_by_kind": dict(Counter(n["kind"] for n in sent)),
        "received": {"wechat_messages": sum(wechat.values()), "wechat_by_api": dict(wechat_kinds),
                     "sms_messages": sum(messages_in(b) for b in sms.values()),
                     "sms_segments": len(received["sms"]), "wechat_token_fetches": received["wechat_token_calls"]},
        "duplicates": dup_wechat + dup_sms,
    }


def _run_line(d: dict) -> str:
    calls = d.get("rasa_calls", {})
    parts = [f"{what} p50 {c.get('p50')} ms" for what, c in calls.items() if what != "deliver_total"]
    cpu = d.get("cpu_ms_per_notice", {})
    return (f"| {d['dispatchers']} | {d.get('concurrency', 1)} | **{d['sent_per_second']}** | {d['processed_per_second']} "
            f"| {d['outcomes'].get('sent', 0):,} in {d['seconds']} s | {d['rasa_call_ms'].get('p50')} "
            f"/ {d['rasa_call_ms'].get('p95')} | {', '.join(parts)} "
            f"| {', '.join(f'{k} {v}' for k, v in cpu.items())} |")


def markdown(r: dict) -> str:
    first, rerun = r["planning"]["first_run"], r["planning"]["hourly_rerun"]
    c, mem = r["check"], r["memory"]
    runs = r.get("runs") or [r["delivery"]]
    lines = [
        "# Outreach benchmark",
        "",
        f"{r['at']}, {r['cpus']} CPUs; database {r['database']}, Rasa tracker store {r['tracker_store']}; "
        f"business day {r['day']}; load average before the run {r.get('load_average_before')}.",
        "",
        f"- Book: {r['book']['loans']:,} loans, {r['book']['customers']:,} borrowers, "
        f"{r['book']['instalments']:,} instalments (generated in {r['book']['seconds']} s).",
        f"- Planning the day: **{first['notices']:,} notices in {first['seconds']} s** "
        f"(hourly re-run: {rerun['notices']} new in {rerun['seconds']} s). By kind: {first['by_kind']}.",
        f"- Delivery through the real Rasa and action server to the fake WeChat / Twilio servers, "
        f"{runs[0]['target']:,} notices per row after {r.get('warmup_outcomes', {}).get('sent', 0)} warm-up "
        f"(dispatchers are threads, as the scheduler runs them; each keeps `concurrency` deliveries in flight):",
        "",
        "| dispatchers | in flight each | sent/s | processed/s | sent | delivery ms p50 / p95 | Rasa calls | "
        "CPU ms per notice |",
        "|---:|---:|---:|---:|---|---|---|---|",
        *[_run_line(d) for d in runs],
        "",
        f"- Check: {'OK' if c['ok'] else 'FAILED'}: the outreach log marks {c['sent_in_log']:,} sent "
        f"{c['sent_by_channel']}; the fake servers received {c['received']['wechat_messages']:,} WeChat and "
        f"{c['received']['sms_messages']:,} SMS messages ({c['received']['sms_segments']:,} segments), "
        f"{c['duplicates']} duplicates." + ("".join(f"\n  - {p}" for p in c["problems"])),
        "",
        "| process | peak RSS (MB) | RSS before delivery (MB) | RSS at the end (MB) |",
        "|---|---:|---:|---:|",
        f"| scheduler/dispatcher, after planning | {mem['scheduler_after_planning']['peak_rss_mb']} | | |",
    ]
    ready = r.get("memory_ready", {})
    for name, label in (("scheduler", "scheduler/dispatcher, at the end"), ("backend", "backend (uvicorn)"),
                        ("actions", "action server"), ("rasa", "Rasa server")):
        if name in mem:
            lines.append(f"| {label} | {mem[name]['peak_rss_mb']} | {ready.get(name, {}).get('rss_mb', '')} "
                         f"| {mem[name]['rss_mb']} |")
    return "\n".join(lines) + "\n"


def write_reports(report: dict, out: Path) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    text = markdown(report)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    return text + f"\n(written to {out.with_suffix('.json')} and {out.with_suffix('.md')})"
