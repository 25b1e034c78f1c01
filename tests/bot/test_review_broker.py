"""bot/review_broker.py: which published Rasa events go to the understanding inbox, what is sent, and
that publish() never blocks or raises, whatever the backend does (down, hanging, refusing).

Run in the bot environment (Rasa's EventBroker interface): `.venv-bot/bin/python -m pytest tests/bot`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rasa")

from rasa.core.brokers.broker import EventBroker  # noqa: E402
from rasa.utils.endpoints import EndpointConfig  # noqa: E402

from bot import review_broker  # noqa: E402
from bot.review_broker import ReviewBroker, review_item, review_rules  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TS = 1795000000.371
SECRET_TEXT = "我的手机13812345678 阿巴阿巴"


def user(text=SECRET_TEXT, intent="nlu_fallback", confidence=0.5, ranking=None, sender="sms:+8613812345678", **kw):
    if ranking is None:
        ranking = [("nlu_fallback", 0.5), ("provide_identity", 0.44631), ("complaint", 0.298), ("goodbye", 0.171),
                   ("thank", 0.01)]
    return {"sender_id": sender, "event": "user", "timestamp": TS, "text": text, "input_channel": "rest",
            "message_id": "abc", "metadata": {},
            "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": [], "text": text,
                           "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking]}, **kw}


# --------------------------------------------------------------------------- the filter

def test_a_fallback_is_sent_with_the_best_intent_under_it_and_the_top_three():
    assert review_item(user(), 0.7, 500) == {
        "conversation": "sms:+8613812345678", "channel": "sms", "text": SECRET_TEXT, "timestamp": TS,
        "source": "fallback", "predicted_intent": "provide_identity", "confidence": 0.4463,
        "ranking": [{"intent": "provide_identity", "confidence": 0.4463}, {"intent": "complaint", "confidence": 0.298},
                    {"intent": "goodbye", "confidence": 0.171}]}


def test_low_confidence_is_sent_and_high_confidence_is_not():
    low = user(intent="query_balance", confidence=0.65, ranking=[("query_balance", 0.65), ("thank", 0.3)],
               sender="web:17")
    assert review_item(low, 0.7, 500) == {
        "conversation": "web:17", "channel": "web", "text": SECRET_TEXT, "timestamp": TS, "source": "low_confidence",
        "predicted_intent": "query_balance", "confidence": 0.65,
        "ranking": [{"intent": "query_balance", "confidence": 0.65}, {"intent": "thank", "confidence": 0.3}]}
    assert review_item(low, 0.6, 500) is None  # the threshold is the configured one
    high = user(intent="query_balance", confidence=0.98, ranking=[("query_balance", 0.98), ("thank", 0.02)])
    assert review_item(high, 0.7, 500) is None
    at = user(intent="query_balance", confidence=0.7, ranking=[("query_balance", 0.7)])
    assert review_item(at, 0.7, 500) is None  # "below": exactly at the line is not reviewed
    assert review_item(user(intent="greet", confidence=0.69996, ranking=[("greet", 0.69996)]), 0.7, 500) is None


@pytest.mark.parametrize("event", [
    user(text="/affirm"),  # a button payload
    user(text='/inform{"amount": 2500}'),
    user(text="EXTERNAL: EXTERNAL_due_reminder", intent="EXTERNAL_due_reminder", confidence=1.0, ranking=[]),
    user(intent="EXTERNAL_plan_decision", confidence=0.2, ranking=[("EXTERNAL_plan_decision", 0.2)]),
    user(text="   "),
    user(text=""),
    user(text=None),
    user(text="长" * 501),  # over nlu_review.max_text_chars
    user(sender=""),
    user(sender=None),
    user(ranking=[("nlu_fallback", 0.5)]),  # nothing to predict
    {**user(), "timestamp": None},
    {**user(), "timestamp": float("nan")},
    {**user(), "parse_data": None},
    {**user(), "parse_data": "x"},
    {**user(), "event": "bot"},
    {"event": "action", "name": "action_listen", "sender_id": "web:1", "timestamp": TS},
    None, [], "user", 42,
])
def test_what_is_not_reviewed(event):
    assert review_item(event, 0.7, 500) is None


def test_channels_come_from_the_sender_id():
    channel = lambda sender: review_item(user(sender=sender), 0.7, 500)["channel"]  # noqa: E731
    assert [channel(s) for s in ("web:1", "wechat:oWx123", "sms:+8613812345678", "anon", "fax:1", "web")] == [
        "web", "wechat", "sms", "other", "other", "other"]


def test_the_rule_is_the_one_the_backend_serves(served_rules):
    """bot/rules.py (here tests/data/bot_rules.json, what the backend serves for the shipped
    config/business.yml, which says the same)."""
    section = yaml.safe_load((ROOT / "config" / "business.yml").read_text(encoding="utf-8"))["nlu_review"]
    assert review_rules() == {"review_below": float(served_rules["nlu_review"]["review_below"]),
                              "max_text_chars": int(served_rules["nlu_review"]["max_text_chars"])}
    assert review_rules() == {"review_below": float(section["review_below"]),
                              "max_text_chars": int(section["max_text_chars"])}
    assert review_rules() == {"review_below": 0.7, "max_text_chars": 500}


# --------------------------------------------------------------------------- sending

class Backend:
    """A fake backend on 127.0.0.1 recording each POST; answers `status` (after `delay` seconds)."""

    def __init__(self, status=201, delay=0.0, body=None):
        self.requests: list[tuple[str, dict, dict]] = []
        self.status, self.delay = status, delay
        self.body = body or {"id": 1, "outcome": "created", "occurrences": 1, "status": "open"}
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                backend.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
                time.sleep(backend.delay)
                data = json.dumps(backend.body).encode()
                self.send_response(backend.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, within=5.0):
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_items_are_posted_to_the_backend_with_the_service_key():
    backend = Backend()
    try:
        broker = ReviewBroker(backend.url, "the-key", 0.7, 500)
        broker.publish(user())
        broker.publish({"sender_id": "sms:+8613812345678", "event": "bot", "text": "您好", "timestamp": TS})
        broker.publish(user(intent="greet", confidence=0.99, ranking=[("greet", 0.99)]))
        wait(lambda: broker.sent == 1)
        asyncio.run(broker.close())
        [(path, headers, body)] = backend.requests
        assert path == "/api/v1/nlu-review/items"
        assert headers["x-api-key"] == "the-key" and headers["content-type"] == "application/json"
        assert body == review_item(user(), 0.7, 500)
    finally:
        backend.close()


def test_publish_never_raises_nor_waits_when_the_backend_is_down(caplog):
    broker = ReviewBroker(f"http://127.0.0.1:{closed_port()}", "k", 0.7, 500, timeout=0.5)
    caplog.set_level(logging.WARNING, logger="bot.review_broker")
    started = time.monotonic()
    for i in range(50):
        broker.publish({**user(), "timestamp": TS + i})
    broker.publish(None)
    broker.publish({"event": "user", "parse_data": {"intent": 5, "intent_ranking": "x"}, "text": "a", "sender_id": "x"})
    assert time.monotonic() - started < 0.5
    wait(lambda: broker._queue.empty() and "backend unreachable" in caplog.text)
    asyncio.run(broker.close())
    assert broker.sent == 0
    assert "阿巴" not in caplog.text and "13812345678" not in caplog.text  # the text is never logged


def test_a_refusal_is_logged_by_code_only(caplog):
    backend = Backend(status=422, body={"error": {"code": "unknown_intent", "message_zh": SECRET_TEXT}})
    caplog.set_level(logging.WARNING, logger="bot.review_broker")
    try:
        broker = ReviewBroker(backend.url, "k", 0.7, 500)
        broker.publish(user())
        wait(lambda: "refused" in caplog.text)
        asyncio.run(broker.close())
    finally:
        backend.close()
    assert "backend refused the message (422 unknown_intent)" in caplog.text
    assert "阿巴" not in caplog.text and "13812345678" not in caplog.text


def test_a_full_queue_drops_with_a_warning_and_never_blocks(caplog):
    backend = Backend(delay=1.0)  # a backend slower than the conversation
    caplog.set_level(logging.WARNING, logger="bot.review_broker")
    try:
        broker = ReviewBroker(backend.url, "k", 0.7, 500, queue_size=2, timeout=3)
        started = time.monotonic()
        for i in range(20):
            broker.publish({**user(), "timestamp": TS + i})
        assert time.monotonic() - started < 0.2
        assert "queue full" in caplog.text and broker._dropped >= 17
        asyncio.run(broker.close())  # sends what was queued before stopping
        assert 1 <= broker.sent <= 3 and broker.sent == len(backend.requests)
    finally:
        backend.close()
    assert "阿巴" not in caplog.text


def test_publish_swallows_anything(monkeypatch):
    broker = ReviewBroker("http://127.0.0.1:9", "k", 0.7, 500)

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(review_broker, "review_item", boom)
    broker.publish(user())  # no exception
    monkeypatch.undo()
    monkeypatch.setattr(broker, "_ensure_worker", boom)
    broker.publish(user())


# --------------------------------------------------------------------------- Rasa loads it

def test_rasa_loads_the_broker_named_in_both_endpoint_files(monkeypatch):
    monkeypatch.setenv("BACKEND_URL", "http://127.0.0.1:8123")
    monkeypatch.setenv("BACKEND_API_KEY", "key-from-env")
    for name in ("endpoints.yml", "endpoints.scale.yml"):
        section = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))["event_broker"]
        assert section == {"type": "bot.review_broker.ReviewBroker"}, name
        broker = asyncio.run(EventBroker.create(EndpointConfig.from_dict(dict(section))))
        assert isinstance(broker, ReviewBroker)
        assert (broker.endpoint, broker.api_key, broker.review_below, broker.max_text_chars) == (
            "http://127.0.0.1:8123/api/v1/nlu-review/items", "key-from-env", 0.7, 500)
        assert broker.is_ready()
        asyncio.run(broker.close())


def test_endpoint_options_override_and_a_bad_configuration_does_not_stop_rasa():
    config = EndpointConfig(url="http://backend:9000/", type="bot.review_broker.ReviewBroker", api_key="k2",
                            queue_size=5, timeout=1.5)
    broker = asyncio.run(ReviewBroker.from_endpoint_config(config))
    assert (broker.endpoint, broker.api_key, broker._queue.maxsize, broker.timeout) == (
        "http://backend:9000/api/v1/nlu-review/items", "k2", 5, 1.5)
    bad = EndpointConfig(type="bot.review_broker.ReviewBroker", queue_size="many")
    assert asyncio.run(ReviewBroker.from_endpoint_config(bad)) is None
