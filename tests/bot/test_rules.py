"""bot/rules.py: the bot side's one source of business rules is the backend (GET /api/v1/bot/rules),
fetched once per process, retried while the backend starts; nothing on the bot side opens
config/business.yml. And the numbers borrowers read follow the served rules.
"""
from __future__ import annotations

import ast
import copy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot import rules
from tests.rules_snapshot import snapshot

ROOT = Path(__file__).resolve().parents[2]
BOT_SIDE = ("actions", "channels", "bot")


# --------------------------------------------------------------------------- nobody reads the file

def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def test_nothing_on_the_bot_side_opens_business_yml():
    """Code in actions/, channels/ and bot/ names neither the file nor its path setting (docs may)."""
    offenders = []
    for part in BOT_SIDE:
        for path in sorted((ROOT / part).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docs = _docstrings(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs \
                        and "business.yml" in node.value:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, (ast.Name, ast.Attribute)) and \
                        (getattr(node, "id", None) or getattr(node, "attr", None)) in ("business_rules_path", "RULES_PATH"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "the bot side gets business rules from bot.rules (the backend serves them)"


# --------------------------------------------------------------------------- fetching

class FakeBackend:
    """Answers GET /api/v1/bot/rules: first ``fail`` times with ``fail_status``, then ``body``."""

    def __init__(self, body, fail=0, fail_status=503, status=200):
        self.body, self.fail, self.fail_status, self.status = body, fail, fail_status, status
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                fake.requests.append((self.path, self.headers.get("X-API-Key", "")))
                status = fake.fail_status if len(fake.requests) <= fake.fail else fake.status
                data = json.dumps(fake.body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def no_rules(monkeypatch):
    """No rules loaded yet (as at process start), retries fast."""
    monkeypatch.setattr(rules, "_rules", None)
    monkeypatch.setattr(rules, "RETRY_SECONDS", 0.05)


def _point_at(monkeypatch, url: str, key: str = "the-bot-key") -> None:
    monkeypatch.setenv("BACKEND_URL", url)
    monkeypatch.setenv("BACKEND_API_KEY", key)


def test_fetched_once_with_the_bots_key_and_kept(no_rules, monkeypatch):
    fake = FakeBackend(snapshot())
    try:
        _point_at(monkeypatch, fake.url)
        assert rules.rules() == snapshot()
        assert rules.rules_for("abuse")["max_message_chars"] == 1000
        assert fake.requests == [("/api/v1/bot/rules", "the-bot-key")]
    finally:
        fake.close()


def test_a_backend_still_starting_is_waited_for(no_rules, monkeypatch):
    fake = FakeBackend(snapshot(), fail=3)
    try:
        _point_at(monkeypatch, fake.url)
        assert rules.load(wait=10) == snapshot()
        assert len(fake.requests) == 4
    finally:
        fake.close()


def test_an_unreachable_backend_stops_after_the_wait(no_rules, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _point_at(monkeypatch, f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(rules.RulesUnavailable, match="unreachable"):
        rules.load(wait=0.3)
    assert time.monotonic() - started < 5
    assert rules._rules is None


@pytest.mark.parametrize("status, body, match", [
    (401, {"error": {"code": "unauthorized"}}, "BACKEND_API_KEY"),
    (403, {"error": {"code": "insufficient_scope"}}, "BACKEND_API_KEY"),
    (200, {"abuse": {"messages_per_minute": 20, "max_message_chars": 1000}}, "lack"),
])
def test_a_refusal_or_a_broken_answer_is_not_retried(no_rules, monkeypatch, status, body, match):
    fake = FakeBackend(body, status=status)
    try:
        _point_at(monkeypatch, fake.url)
        with pytest.raises(rules.RulesUnavailable, match=match):
            rules.load(wait=10)
        assert len(fake.requests) == 1
    finally:
        fake.close()


# --------------------------------------------------------------------------- numbers from the rules

def test_knowledge_texts_quote_the_served_numbers():
    from actions.knowledge import kb, reminder_days

    assert "还款日前3天、前1天和当天提醒您" in kb("reminders_already_on")
    assert "一般3个工作日内答复" in kb("repayment_plan_info")
    assert "在15日内给您答复" in kb("complaint_ack")
    changed = copy.deepcopy(snapshot())
    changed["outreach"]["reminder_days_before"] = [1, 0]
    changed["complaints"]["decision_days"] = 10
    changed["repayment_plans"]["decision_days"] = 5
    with rules.override(changed):
        assert "还款日前1天和当天提醒您" in kb("reminders_already_on")
        assert "在10日内给您答复" in kb("complaint_ack")
        assert "一般5个工作日内答复" in kb("repayment_plan_info")
    assert reminder_days([3, 1, 0]) == "前3天、前1天和当天" and reminder_days([0]) == "当天"


def _knowledge_keys() -> set[str]:
    from texts import section

    return set(section("knowledge"))


def test_the_penalty_formula_follows_the_rules():
    from actions.knowledge import kb
    from texts import raw

    key = next(k for k in _knowledge_keys() if "{penalty_day_count_basis}" in raw(f"knowledge.{k}"))
    assert "× 1.5 ÷ 360 × 逾期天数" in kb(key)
    changed = copy.deepcopy(snapshot())
    changed["penalty"].update(rate_multiplier="1.3", day_count_basis=365)
    with rules.override(changed):
        assert "× 1.3 ÷ 365 × 逾期天数" in kb(key)


def test_the_wechat_window_and_the_abuse_limits_are_the_served_ones():
    from datetime import datetime, timedelta

    from channels import guard, wechat

    now = datetime(2026, 11, 23, 10, 0, tzinfo=wechat.SHANGHAI)
    assert wechat.window() == timedelta(hours=48)
    assert wechat.within_window((now - timedelta(hours=47)).isoformat(), now)
    changed = copy.deepcopy(snapshot())
    changed["outreach"]["wechat_window_hours"] = 24
    changed["abuse"]["max_message_chars"] = 10
    with rules.override(changed):
        assert not wechat.within_window((now - timedelta(hours=25)).isoformat(), now)
        assert guard.refusal("啊" * 11) == guard.rules().too_long_reply and "10" in guard.rules().too_long_reply
    assert guard.refusal("啊" * 11) is None
