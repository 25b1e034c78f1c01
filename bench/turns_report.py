"""The turn benchmark's reports: reports/bench.json, bench.md (the table the README shows) and
bench.png (latency by offered rate, and each turn level's latency over time)."""
from __future__ import annotations

import json
from pathlib import Path

PROCESSES = ("rasa", "actions", "backend", "loadgen")


def targets(report: dict) -> list[dict]:
    """The issue's targets, each with its measured value and whether it was met."""
    turns = {lv["rate"]: lv for lv in report["levels"] if lv["kind"] == "turn"}
    parses = {lv["rate"]: lv for lv in report["levels"] if lv["kind"] == "parse"}
    out = []
    top = turns.get(100)
    if top:
        out.append({"target": "100 turns/s sustained, p95 < 1 s, 0 errors",
                    "measured": f"{top['throughput']} turns/s, p95 {top['p95_ms']} ms, {top['errors']} errors",
                    "met": bool(top["throughput"] and top["throughput"] >= 95 and top["p95_ms"] < 1000
                                and top["errors"] == 0)})
    twenty = turns.get(20)
    if twenty:
        out.append({"target": "p95 < 300 ms at 20 turns/s", "measured": f"p95 {twenty['p95_ms']} ms",
                    "met": twenty["p95_ms"] < 300 and twenty["errors"] == 0})
    low = min(turns) if turns else None
    if low is not None and low in parses and parses[low]["p50_ms"]:
        ratio = turns[low]["p50_ms"] / parses[low]["p50_ms"]
        out.append({"target": "turn p50 <= 5x bare parse p50",
                    "measured": f"{turns[low]['p50_ms']} ms / {parses[low]['p50_ms']} ms = {ratio:.1f}x at {low}/s",
                    "met": ratio <= 5})
    return out


def markdown(report: dict) -> str:
    lines = [
        "# Turn benchmark (`make bench`)",
        "",
        f"{report['at']}, {report['cpus']} CPUs, load average before {report['load_average_before']}; "
        f"{report['stack']}; {report['duration']} s a level, think time {report['think']} s; "
        f"mix {report['mix']}.",
        "",
        "| load | offered /s | answered /s | p50 ms | p95 ms | p99 ms | errors | CPU ms/turn: Rasa | actions | backend | load generator |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lv in report["levels"]:
        cpu = lv.get("cpu_ms_per_request", {})
        lines.append(
            f"| {'conversation turns' if lv['kind'] == 'turn' else 'bare /model/parse'} | {lv['rate']:g} | "
            f"{lv['throughput']} | {lv['p50_ms']} | {lv['p95_ms']} | {lv['p99_ms']} | {lv['errors']} | "
            + " | ".join(str(cpu.get(p, "")) for p in PROCESSES) + " |")
    lines += ["", "| process | RSS at the end (MB) | peak RSS (MB) |", "|---|---:|---:|"]
    for name, mem in report.get("memory", {}).items():
        lines.append(f"| {name} | {mem.get('rss_mb')} | {mem.get('peak_rss_mb')} |")
    if report.get("targets"):
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |" for t in report["targets"]]
    waits = {f"{lv['kind']} {lv['rate']:g}/s": lv["runqueue_wait_ms_per_request"] for lv in report["levels"]
             if lv.get("runqueue_wait_ms_per_request")}
    if waits:
        lines += ["", "Milliseconds per request each process was ready to run but waited for a CPU (the machine's "
                  f"other work; load average {report['load_average_before']} before, "
                  f"{report.get('load_average_after')} after): {waits}"]
    errors = {f"{lv['kind']} {lv['rate']:g}/s": lv["errors_by_kind"] for lv in report["levels"] if lv["errors"]}
    if errors:
        lines += ["", f"Errors by kind: {errors}"]
    return "\n".join(lines) + "\n"


def chart(report: dict, timelines: dict[str, list[tuple[float, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for kind, style in (("turn", "-"), ("parse", "--")):
        levels = [lv for lv in report["levels"] if lv["kind"] == kind]
        if not levels:
            continue
        rates = [lv["rate"] for lv in levels]
        for key, colour in (("p50_ms", "tab:green"), ("p95_ms", "tab:orange"), ("p99_ms", "tab:red")):
            left.plot(rates, [lv[key] for lv in levels], style, marker="o", color=colour,
                      label=f"{'turn' if kind == 'turn' else 'parse'} {key[:3]}")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xticks([lv["rate"] for lv in report["levels"] if lv["kind"] == "turn"] or [10])
    left.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    left.axhline(1000, color="grey", linewidth=0.8, linestyle=":")
    left.axhline(300, color="grey", linewidth=0.8, linestyle=":")
    left.set_xlabel("offered load (requests/s)")
    left.set_ylabel("latency (ms, from the scheduled send)")
    left.set_title("latency by offered load")
    left.legend(fontsize=8)
    for label, points in timelines.items():
        if points:
            right.plot([p[0] for p in points], [p[1] for p in points], ".", markersize=2, label=label)
    right.set_yscale("log")
    right.set_xlabel("seconds into the level (scheduled send)")
    right.set_ylabel("turn latency (ms)")
    right.set_title("turn latency over each level")
    right.legend(fontsize=8, markerscale=5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: dict, timelines: dict[str, list[tuple[float, float]]], out: Path) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    report["targets"] = targets(report)
    out.with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    text = markdown(report)
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    chart(report, timelines, out.with_suffix(".png"))
    return text + f"\n(written to {out.with_suffix('.json')}, .md and .png)"
