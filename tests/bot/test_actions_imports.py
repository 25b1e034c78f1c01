"""The action modules import one another without a circle: every relative import, deferred ones
inside functions included, forms an acyclic graph, and each module imports on its own."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rasa_sdk")

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = ROOT / "actions"


def import_graph() -> dict[str, set[str]]:
    """module -> the action modules it imports (``from .x import``, anywhere in the file)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ACTIONS.glob("*.py")):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                deps.add(node.module.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("actions."):
                deps.add(node.module.split(".")[1])
        graph[path.stem] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for dep in sorted(graph.get(node, ())):
            cycle = visit(dep, path + [node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_the_action_modules_import_each_other_without_a_circle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_cycle_check_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_each_action_module_imports_alone():
    """In a fresh interpreter, each module first (no other action module loaded before it)."""
    modules = sorted(p.stem for p in ACTIONS.glob("*.py") if p.stem != "__init__")
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'actions' or m.startswith('actions.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module('actions.' + name)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
