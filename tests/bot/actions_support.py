"""What the action unit tests (tests/bot/test_actions_*.py) share, in the style of Rasa's
financial-demo tests: a tracker built from a JSON dump in tests/data/, a CollectingDispatcher, and a
fake backend client put in with bot.backend.override_backend that records every call and answers
from canned data (tests/data/backend_customer_7.json)."""
from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.backend import BackendError, override_backend

DATA = Path(__file__).resolve().parents[1] / "data"
BUSY = "系统暂时繁忙，查询不到您的账户信息，请稍后再试。"
NOT_VERIFIED = "为保护您的账户安全，查询账户信息前需要先核实您的身份。"
DOWN = BackendError(reason="ClientConnectorError")  # the backend unreachable


def data(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def tracker(name: str, **changes: Any) -> Tracker:
    """The tracker dumped in tests/data/<name>.json; ``slots`` / ``latest_message`` merge, other
    keys replace."""
    state = data(f"{name}.json")
    for key, value in changes.items():
        state[key] = {**state[key], **value} if key in ("slots", "latest_message") else value
    return Tracker.from_dict(state)


def backend_data() -> dict[str, Any]:
    return data("backend_customer_7.json")


class FakeBackend:
    """Any client method: the call is recorded as (method, *args) and answered from ``answers``:
    a value (deep-copied), a function of the arguments, or an exception to raise. A method without
    an answer fails the test: an action asked the backend something it should not have."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple] = []

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((method, *args, *kwargs.values()))
            if method not in self.answers:
                raise AssertionError(f"unexpected backend call {method}{args}")
            answer = self.answers[method]
            if isinstance(answer, BaseException):
                raise answer
            if callable(answer):
                answer = answer(*args, **kwargs)
                if isinstance(answer, BaseException):
                    raise answer
            return copy.deepcopy(answer)

        return call

    def methods(self) -> list[str]:
        return [c[0] for c in self.calls]


def run(action: Action, t: Tracker, fake: FakeBackend, domain: dict | None = None) -> tuple[list, CollectingDispatcher]:
    """Run ``action`` against ``t`` with ``fake`` as the backend: (events, dispatcher)."""
    dispatcher = CollectingDispatcher()
    with override_backend(fake):
        events = asyncio.run(action.run(dispatcher, t, domain or {}))
    return events, dispatcher


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    return [m.get("text") for m in dispatcher.messages]


def slots(events: list) -> dict[str, Any]:
    """The slots the events set, last value wins."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
