"""CPU time of processes from /proc/<pid>/stat (utime + stime of the process and its live children),
for the turn benchmark's "CPU ms per turn per process"; and the time they were ready to run but
waited for a CPU (/proc/<pid>/task/*/schedstat, second field): how much the machine's other work
slowed a level down."""
from __future__ import annotations

import os
from pathlib import Path

from bench.stack import _tree

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_stat(line: str) -> float:
    """utime + stime in seconds from one /proc/<pid>/stat line (the command may contain spaces and
    parentheses: fields are counted after the last ')')."""
    fields = line[line.rindex(")") + 2:].split()
    # After the command: state(3) ppid ... utime is field 14, stime 15 (1-based over the whole line).
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_seconds(pid: int, children: bool = True) -> float:
    total = 0.0
    for p in (_tree(pid) if children else [pid]):
        try:
            total += parse_stat(Path(f"/proc/{p}/stat").read_text())
        except (OSError, ValueError, IndexError):
            pass
    return total


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid, children=name != "loadgen") for name, pid in pids.items()}


def per_turn_ms(before: dict[str, float], after: dict[str, float], turns: int) -> dict[str, float | None]:
    """CPU milliseconds per turn of each process between two snapshots."""
    return {name: (round((after[name] - before[name]) * 1000 / turns, 2) if turns else None) for name in before}


def waited_seconds(pid: int, children: bool = True) -> float:
    """Seconds the process's threads (and its children's) spent runnable but not running."""
    total = 0
    for p in (_tree(pid) if children else [pid]):
        for task in Path(f"/proc/{p}/task").glob("*/schedstat"):
            try:
                total += int(task.read_text().split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return total / 1e9


def waits(pids: dict[str, int]) -> dict[str, float]:
    return {name: waited_seconds(pid, children=name != "loadgen") for name, pid in pids.items()}
