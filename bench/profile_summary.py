"""A text summary of a py-spy profile in collapsed-stack form (``py-spy record --format raw``: one
``frame;frame;...;leaf count`` line per distinct stack, root first): where the samples went, by
function (self: the leaf; inclusive: anywhere on the stack, once per stack) and by package.

    .venv-app/bin/python -m bench.profile_summary reports/profile-rasa.raw
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+?)(?::(?P<line>\d+))?\)$")


def parse(raw: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in raw.splitlines():
        line = line.rstrip()
        if not line:
            continue
        frames, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        stacks.append((frames.split(";"), n))
    return stacks


def function(frame: str) -> str:
    """「func (path/to/file.py:123)」 -> 「func (file.py)」: one entry per function, not per line."""
    m = FRAME.match(frame)
    if not m:
        return frame
    return f"{m.group('func')} ({short(m.group('file'))})"


def short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker.startswith("/lib/"):
                path = path.split("/", 1)[-1]
            break
    else:
        path = path.split("/work/main/", 1)[-1]
    return path


def package(frame: str) -> str:
    m = FRAME.match(frame)
    path = short(m.group("file")) if m else frame
    parts = path.split("/")
    if parts[0] in ("rasa", "rasa_sdk") and len(parts) > 2:
        return "/".join(parts[:3] if parts[1] in ("core", "nlu", "engine", "shared") else parts[:2])
    return parts[0] if len(parts) > 1 else "(stdlib or other)"


def summarise(raw: str, top: int = 30) -> str:
    stacks = parse(raw)
    total = sum(n for _, n in stacks) or 1
    own: Counter = Counter()
    inclusive: Counter = Counter()
    packages: Counter = Counter()
    for frames, n in stacks:
        own[function(frames[-1])] += n
        for f in {function(f) for f in frames}:
            inclusive[f] += n
        for p in {package(f) for f in frames}:
            packages[p] += n

    def table(title: str, counts: Counter, k: int) -> list[str]:
        rows = [f"{title}", f"{'samples':>8} {'share':>6}  what"]
        rows += [f"{n:8d} {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(k)]
        return rows + [""]

    lines = [f"{total} samples (100 a second of a busy thread; idle threads not sampled)", ""]
    lines += table("inclusive by package (a sample counts once for each package on its stack):", packages, top)
    lines += table("inclusive by function:", inclusive, top * 2)
    lines += table("self (the function running when sampled):", own, top)
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1]).read_text(encoding="utf-8", errors="replace")))
