"""bot/backend.py against a real HTTP server on 127.0.0.1: one session per event loop reused for
every request, one error type (refused with the borrower's message / unavailable), 404 -> None on
GET, 204 -> {}, the service key sent, phone numbers never logged, and the provider's override."""
from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from aiohttp import web

from bot import backend as backend_module
from bot.backend import BackendClient, BackendError, backend, override_backend

KEY = "test-service-key"


class Server:
    """An aiohttp app in its own thread and event loop; records (method, path, key, client port)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None, int]] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _app(self) -> web.Application:
        async def record(request: web.Request) -> None:
            peer = request.transport.get_extra_info("peername")
            self.seen.append((request.method, request.path_qs, request.headers.get("X-API-Key"), peer[1]))

        async def handle(request: web.Request) -> web.StreamResponse:
            await record(request)
            path = request.path.removeprefix("/api/v1")
            if path == "/customers/7":
                return web.json_response({"id": 7})
            if path == "/customers/8":
                return web.json_response({"error": {"code": "not_found"}}, status=404)
            if path == "/customers/7/unsubscribe":
                return web.Response(status=204)
            if path == "/plan-requests":
                return web.json_response({"error": {"code": "plan_pending", "message_zh": "已有申请在审核中"}}, status=409)
            if path == "/complaints":
                return web.json_response({"detail": "bad"}, status=422)
            if path == "/handoffs":
                return web.json_response({"error": "forbidden"}, status=403)
            if path == "/sms/send":
                return web.json_response({"error": {"code": "opted_out", "message_zh": "已退订"}}, status=409)
            if path == "/loans/31":
                await asyncio.sleep(0.4)
                return web.json_response({})
            return web.json_response({"error": "boom"}, status=500)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self._app())
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.runner = runner
        self.ready.set()
        self.loop.run_forever()
        pending = asyncio.all_tasks(self.loop)  # e.g. the slow answer a timed-out client left
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    def start(self) -> Server:
        self.thread.start()
        assert self.ready.wait(60), "test server did not start"
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()


@pytest.fixture(scope="module")
def server():
    s = Server().start()
    yield s
    s.stop()


@pytest.fixture
def client(server):
    return BackendClient(f"http://127.0.0.1:{server.port}", KEY)


def test_one_session_serves_many_requests(server, client):
    async def main():
        first = await client.customer(7)
        session = await client._sessions.get()
        again = await client.customer(7)
        assert await client._sessions.get() is session
        await client.close()
        return first, again, session

    before = len(server.seen)
    first, again, session = asyncio.run(main())
    assert first == again == {"id": 7} and session.closed
    requests = server.seen[before:]
    assert [(m, p, k) for m, p, k, _ in requests] == [("GET", "/api/v1/customers/7", KEY)] * 2


def test_a_new_event_loop_gets_a_new_session_and_the_old_one_is_closed(client):
    async def one_request():
        await client.customer(7)
        return await client._sessions.get()

    first = asyncio.run(one_request())
    second = asyncio.run(one_request())  # the first loop is closed by now
    assert second is not first and first.closed and not second.closed
    asyncio.run(client.close())
    assert second.closed


def test_404_on_get_is_none_and_204_is_empty(client):
    async def main():
        try:
            return await client.customer(8), await client.unsubscribe(7), await client._request("POST", "/customers/7/unsubscribe")
        finally:
            await client.close()

    assert asyncio.run(main()) == (None, None, {})


def _error(client: BackendClient, coro_fn) -> BackendError:
    async def main():
        try:
            await coro_fn()
        finally:
            await client.close()

    with pytest.raises(BackendError) as caught:
        asyncio.run(main())
    return caught.value


def test_a_refusal_carries_the_borrowers_message(client):
    exc = _error(client, lambda: client.submit_plan({"loan_id": 31}))
    assert (exc.refused, exc.status, exc.code, exc.message_zh) == (True, 409, "plan_pending", "已有申请在审核中")


def test_a_refusal_without_a_message_gets_the_default(client):
    exc = _error(client, lambda: client.open_complaint({}))
    assert exc.refused and exc.status == 422 and exc.message_zh == "请求未能完成"


@pytest.mark.parametrize("call,status", [
    (lambda c: c.open_handoff("web:anon-abcdef12", "web", None, "request_human", ""), 403),
    (lambda c: c.payments(31), 500),
])
def test_forbidden_and_server_errors_are_unavailable(client, call, status):
    exc = _error(client, lambda: call(client))
    assert not exc.refused and exc.status == status and exc.message_zh is None


def test_a_timeout_is_unavailable(client):
    quick = client.with_timeout(0.2)
    exc = _error(client, lambda: quick.loan(31))
    assert not exc.refused and exc.status is None


def test_an_unreachable_backend_is_unavailable():
    down = BackendClient("http://127.0.0.1:9", KEY)  # discard port: nothing listens
    exc = _error(down, lambda: down.customer(7))
    assert not exc.refused and exc.status is None


def test_an_opted_out_number_is_none_not_an_error(client):
    async def main():
        try:
            return await client.send_sms("+8613800000001", "您好")
        finally:
            await client.close()

    assert asyncio.run(main()) is None


def test_logs_name_the_resource_kind_never_the_number(client, caplog):
    caplog.set_level(logging.WARNING, logger="bot.backend")
    exc = _error(client, lambda: client.set_status("sms", "+8613812345678", "inactive"))
    assert exc.status == 500
    assert "/identities -> 500" in caplog.text and "13812345678" not in caplog.text


def test_the_provider_gives_one_client_and_tests_their_fake(monkeypatch):
    monkeypatch.setattr(backend_module, "_client", None)
    monkeypatch.setenv("BACKEND_URL", "http://127.0.0.1:8123")
    monkeypatch.setenv("BACKEND_API_KEY", "k-from-settings")
    shared = backend()
    assert backend() is shared and (shared.base_url, shared.api_key) == ("http://127.0.0.1:8123", "k-from-settings")
    quick = backend(timeout=3.0)
    assert quick.timeout.total == 3.0 and quick._sessions is shared._sessions  # a view over the same session
    fake = object()
    with override_backend(fake):
        assert backend() is fake and backend(timeout=3.0) is fake
    assert backend() is shared


def test_idle_connections_are_dropped_before_the_backend_closes_them():
    """uvicorn closes an idle keep-alive connection after 5 s; reusing one it closed failed the call
    (ClientOSError: an SMS reply lost in the outreach benchmark). The client drops them after 4 s."""
    from bot.backend import _Sessions

    async def main():
        sessions = _Sessions("k")
        session = await sessions.get()
        try:
            return session.connector._keepalive_timeout  # aiohttp keeps it only there
        finally:
            await sessions.close()

    assert asyncio.run(main()) == 4.0 < 5
