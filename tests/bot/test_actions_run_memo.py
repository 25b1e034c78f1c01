"""One action run sends each backend GET once (bot/backend.py ``action_run``, started by the action
server's middleware): the identity and loans the validation steps of a form ask for again come from
the run's memo, a write empties it, and nothing is shared between runs or outside one. Against the
real HTTP server of the client tests."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from actions.auth_middleware import attach
from bot import backend as backend_module
from bot.backend import BackendClient, BackendError, action_run, one_action_run
from tests.bot.test_actions_backend_client import KEY, Server


@pytest.fixture(scope="module")
def server():
    s = Server().start()
    yield s
    s.stop()


def paths(server: Server, since: int) -> list[str]:
    return [path for _, path, _, _ in server.seen[since:]]


def test_a_run_sends_each_get_once_and_a_write_empties_its_memo(server):
    client = BackendClient(f"http://127.0.0.1:{server.port}", KEY)

    async def main():
        with one_action_run():
            first = await client.customer(7)
            first["id"] = 99  # the caller's copy: the memo is not changed
            again = await client.customer(7)
            together = await asyncio.gather(*(client.customer(7) for _ in range(3)))
            missing = await client.customer(8), await client.customer(8)
            await client.unsubscribe(7)  # a write: what was read may have changed
            after_write = await client.customer(7)
        outside = await client.customer(7), await client.customer(7)
        await client.close()
        return again, together, missing, after_write, outside

    before = len(server.seen)
    again, together, missing, after_write, outside = asyncio.run(main())
    assert again == {"id": 7} and together == [{"id": 7}] * 3 and missing == (None, None)
    assert after_write == {"id": 7} and outside == ({"id": 7}, {"id": 7})
    assert paths(server, before) == [
        "/api/v1/customers/7", "/api/v1/customers/8", "/api/v1/customers/7/unsubscribe", "/api/v1/customers/7",
        "/api/v1/customers/7", "/api/v1/customers/7"]


def test_runs_do_not_share_a_memo_and_a_failure_is_not_kept_past_its_run(server):
    client = BackendClient(f"http://127.0.0.1:{server.port}", KEY)

    async def run_once() -> object:
        action_run()  # as the middleware does, in this task's context only
        return await client.customer(7)

    async def failing() -> list[str]:
        with one_action_run():
            errors = []
            for _ in range(2):
                try:
                    await client.loan(500)  # the test server answers 500
                except BackendError as exc:
                    errors.append(str(exc.status))
            return errors

    async def main():
        answers = await asyncio.gather(run_once(), run_once())
        assert backend_module._run_memo.get() is None  # the tasks' runs did not leak here
        errors = await failing()
        errors += await failing()
        await client.close()
        return answers, errors

    before = len(server.seen)
    answers, errors = asyncio.run(main())
    assert answers == [{"id": 7}, {"id": 7}]
    assert errors == ["500"] * 4
    assert paths(server, before) == ["/api/v1/customers/7", "/api/v1/customers/7",
                                     "/api/v1/loans/500", "/api/v1/loans/500"]


def test_the_action_server_middleware_starts_a_run_for_each_authorised_request():
    middlewares = []
    app = SimpleNamespace(middleware=lambda kind: (lambda fn: middlewares.append((kind, fn)) or fn))
    attach(app, "secret")
    ((kind, check),) = middlewares
    assert kind == "request"

    def request(path: str, auth: str | None, method: str = "POST"):
        return SimpleNamespace(method=method, path=path, headers={"Authorization": auth} if auth else {})

    async def seen(req) -> tuple[object, object]:
        answer = await check(req)
        return answer, backend_module._run_memo.get()

    answer, memo = asyncio.run(seen(request("/webhook", "Bearer secret")))
    assert answer is None and memo == {}
    answer, memo = asyncio.run(seen(request("/webhook", "Bearer wrong")))
    assert answer.status == 401 and memo is None
    answer, memo = asyncio.run(seen(request("/health", None, "GET")))
    assert answer is None and memo is None
