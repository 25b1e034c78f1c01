"""Every text a borrower reads lives in the catalogue (texts/zh/*.yml), never in code.

1. No string constant in actions/ or channels/ contains Chinese (docstrings aside): a text is
   ``text("part.key", ...)``, a word the code matches is ``vocabulary.*`` in the catalogue or a
   config word list.
2. Every catalogue key the code names with a constant (``text``/``raw``/``section``/``groups``/
   ``words``/``kb``, plain or as ``texts.…``; an f-string key by its constant prefix) exists, and a
   ``text(...)`` / ``kb(...)`` call gives exactly the placeholders its text has (where the values are
   spelled out, not passed as ``**values``).
3. No function calls ``text(...)`` while a local of its own is called ``text`` (the catalogue function
   would be shadowed by a string: a crash only the borrower would see).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from string import Formatter

import pytest

import texts

ROOT = Path(__file__).resolve().parents[2]
NO_CHINESE = ["actions", "channels"]
# Where catalogue keys are named in code (both environments).
KEY_USERS = ["actions", "channels", "bot", "texts", "backend", "scheduler"]

# Chinese: Han ideographs, CJK symbols and punctuation (「」。、), full-width punctuation (，！？（）：；).
# Full-width digits and Latin letters are not: normalisation tables map them to half-width.
CHINESE = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
    "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")

LOOKUPS = {"text", "raw", "section", "groups", "words", "kb"}  # the first argument is a key (or prefix)
FILLED = {"text", "kb"}  # ... and the keywords fill its placeholders


def python_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts)


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def chinese_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = docstrings(tree)
    return [f"{shown(path)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and CHINESE.search(node.value)]


def catalogue_names(tree: ast.Module) -> set[str]:
    """The lookups a module takes from the catalogue (``from texts import text``; kb from
    actions/knowledge.py); a ``text`` from elsewhere (sqlalchemy's) or a ``words`` of the form words is
    not one."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module == "texts" or node.module and node.module.endswith("knowledge")):
            names |= {a.asname or a.name for a in node.names if a.name in LOOKUPS}
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in LOOKUPS:
            names.add(node.name)  # texts/__init__.py and actions/knowledge.py themselves
    return names


def lookup_name(call: ast.Call, names: set[str]) -> str | None:
    """``text`` for text(...) and texts.text(...); None for anything else."""
    f = call.func
    if isinstance(f, ast.Name) and f.id in names:
        return f.id
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "texts" and f.attr in LOOKUPS:
        return f.attr
    return None


def key_uses(path: Path):
    """(where, function, key or None, prefix or None, keywords or None when **values) per lookup call."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = catalogue_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = lookup_name(node, names)
        if name is None:
            continue
        arg, where = node.args[0], f"{shown(path)}:{node.lineno}"
        keywords = None if any(k.arg is None for k in node.keywords) else {k.arg for k in node.keywords}
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            yield where, name, arg.value, None, keywords
        elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
            yield where, name, None, arg.values[0].value, keywords


def rule_value_names() -> set[str]:
    """The placeholders kb() fills itself (actions/knowledge.py rule_values: the dict it returns)."""
    tree = ast.parse((ROOT / "actions" / "knowledge.py").read_text(encoding="utf-8"))
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "rule_values")
    returned = next(n.value for n in ast.walk(fn) if isinstance(n, ast.Return) and isinstance(n.value, ast.Dict))
    return {k.value for k in returned.keys if isinstance(k, ast.Constant)}


def full_key(name: str, key: str) -> str:
    return f"knowledge.{key}" if name == "kb" else key


# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", python_files(*NO_CHINESE), ids=shown)
def test_no_chinese_string_literals(path):
    assert chinese_literals(path) == []


def test_the_scan_sees_literals_but_not_docstrings(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""模块说明。"""\n'
                      'def f(x):\n    """函数说明。"""\n    return f"您好{x}" + "，"\n'
                      'TABLE = str.maketrans("０１２", "012")\n', encoding="utf-8")
    found = chinese_literals(sample)
    assert len(found) == 2 and "'您好'" in found[0] + found[1] and "'，'" in found[0] + found[1]


def missing_keys(paths: list[Path]) -> tuple[list[str], int]:
    catalogue = texts.catalogue()
    missing, seen = [], 0
    for path in paths:
        for where, name, key, prefix, _ in key_uses(path):
            seen += 1
            if key is not None:
                wanted = full_key(name, key)
                ok = wanted in catalogue if name in ("text", "raw", "kb") else any(
                    k.startswith(wanted + ".") for k in catalogue)
            else:
                ok = any(k.startswith(full_key(name, prefix)) for k in catalogue)
            if not ok:
                missing.append(f"{where}: {name}({key or prefix + '…'!r})")
    return missing, seen


def placeholder_problems(paths: list[Path]) -> tuple[list[str], int]:
    defaults = rule_value_names()
    wrong, checked = [], 0
    for path in paths:
        for where, name, key, _, keywords in key_uses(path):
            if name not in FILLED or key is None or keywords is None:
                continue
            wanted = texts.placeholders(full_key(name, key))
            given = keywords | (defaults if name == "kb" else set())
            checked += 1
            if not wanted <= given:
                wrong.append(f"{where}: {key} lacks {sorted(wanted - given)}")
            if keywords - wanted:
                wrong.append(f"{where}: {key} has no {sorted(keywords - wanted)}")
    return wrong, checked


def test_every_key_named_in_code_exists():
    missing, seen = missing_keys(python_files(*KEY_USERS))
    assert seen > 150, "the scan found almost no lookups: is it still reading the code?"
    assert missing == []


def test_every_placeholder_is_given_and_nothing_else():
    assert {"penalty_multiplier", "reminder_days"} <= rule_value_names()
    wrong, checked = placeholder_problems(python_files(*KEY_USERS))
    assert checked > 120
    assert wrong == []


def test_the_key_checks_catch_mistakes(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import texts\nfrom sqlalchemy import text\nfrom texts import raw\nfrom .knowledge import kb\n"
                      "text('SELECT 1')\n"                                      # not the catalogue's text
                      "texts.text('account.busy', extra=1)\n"                   # a value it has no place for
                      "texts.text('account.status.current')\n"                  # {loan} missing
                      "raw('account.no_such_text')\n"
                      "kb('plan_terms')\n"                                      # {decision_due} missing
                      "kb('plan_withdrawn', reference='RP1')\n"                 # fine
                      "texts.text(f'outreach.{kind}', **values)\n"              # prefix exists, values unknown
                      "texts.section(f'nowhere.{kind}')\n", encoding="utf-8")
    missing, seen = missing_keys([sample])
    assert seen == 7 and [m.split(": ", 1)[1] for m in missing] == [
        "raw('account.no_such_text')", "section('nowhere.…')"]
    wrong, checked = placeholder_problems([sample])
    assert checked == 4 and [w.split(": ", 1)[1] for w in wrong] == [
        "account.busy has no ['extra']", "account.status.current lacks ['loan']", "plan_terms lacks ['decision_due']"]


class Anything:
    """A placeholder value with every attribute and item (「{latest.year}年」)."""

    def __getattr__(self, name):
        return self

    def __getitem__(self, key):
        return self

    def __format__(self, spec):
        return "x"


def test_every_catalogue_text_formats():
    """Braces are placeholders only: each text parses, and fills with any values."""
    for key, value in texts.catalogue().items():
        names = {n.split(".")[0].split("[")[0] for _, n, _, _ in Formatter().parse(value) if n is not None}
        assert "" not in names, f"{key}: positional or empty placeholder"
        value.format(**{n: Anything() for n in names})


@pytest.mark.parametrize("path", python_files("actions", "channels", "texts"), ids=shown)
def test_text_is_never_shadowed(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    shadowed = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        local = {a.arg for a in args} | {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)
                                          and isinstance(n.ctx, ast.Store)}
        shadowed += [f"{path.name}:{n.lineno} {fn.name}" for n in ast.walk(fn) if isinstance(n, ast.Call)
                     and isinstance(n.func, ast.Name) and n.func.id in LOOKUPS & local]
    assert shadowed == []
