"""bot/launch.py ActionServerSessions: Rasa's calls to the action server reuse one keep-alive
connection per endpoint instead of a new session (and TCP connection) per custom action, and the
sessions are closed when the server stops. Against a real HTTP server on 127.0.0.1, through Rasa's
own EndpointConfig.request."""
from __future__ import annotations

import asyncio

from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from bot.launch import KEEP_ALIVE_SECONDS, ActionServerSessions, keep_alive_session


async def serve(peers: list[int]) -> tuple[web.AppRunner, str]:
    async def webhook(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername")[1])
        return web.json_response({"events": [], "responses": [], "auth": request.headers.get("Authorization")})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port the OS chose
    return runner, f"http://127.0.0.1:{port}/webhook"


def test_action_calls_share_one_connection_per_endpoint_and_close_at_stop(monkeypatch):
    pool = ActionServerSessions()
    monkeypatch.setattr(EndpointConfig, "session", lambda endpoint: _borrowed(pool, endpoint, keep_alive_session))

    async def go():
        peers: list[int] = []
        runner, url = await serve(peers)
        try:
            a = EndpointConfig(url, headers={"Authorization": "Bearer one"})
            same = EndpointConfig(url, headers={"Authorization": "Bearer one"})
            other = EndpointConfig(url, headers={"Authorization": "Bearer two"})
            answers = [await e.request(json={"next_action": "x"}, method="post") for e in (a, a, same, a)]
            assert [r["auth"] for r in answers] == ["Bearer one"] * 4
            assert len(set(peers)) == 1  # one connection for four calls
            assert (await other.request(json={}, method="post"))["auth"] == "Bearer two"
            assert len(set(peers)) == 2  # another endpoint (its own headers): its own session
            sessions = list(pool._sessions.values())  # noqa: SLF001
            assert sessions[0].connector._keepalive_timeout == KEEP_ALIVE_SECONDS  # noqa: SLF001
            assert len(sessions) == 2 and not any(s.closed for s in sessions)
            await pool.close()
            assert all(s.closed for s in sessions) and pool._sessions == {}  # noqa: SLF001
            # After a stop a new call opens a new session (a restarted server in the same process).
            assert (await a.request(json={}, method="post"))["auth"] == "Bearer one"
            await pool.close()
        finally:
            await runner.cleanup()

    asyncio.run(go())


def test_a_session_is_never_shared_across_event_loops(monkeypatch):
    pool = ActionServerSessions()
    made: list = []

    def make(endpoint):
        made.append(endpoint)
        return _FakeSession()

    endpoint = EndpointConfig("http://127.0.0.1:1/webhook")

    async def twice():
        return pool.get(endpoint, make), pool.get(endpoint, make)

    first = asyncio.run(twice())
    assert first[0] is first[1] and len(made) == 1
    second = asyncio.run(twice())  # a new loop: the old loop's session is dropped, a new one made
    assert second[0] is not first[0] and len(made) == 2
    assert len(pool._sessions) == 1  # noqa: SLF001


class _FakeSession:
    closed = False


def _borrowed(pool, endpoint, make):
    from bot.launch import _Borrowed

    return _Borrowed(pool.get(endpoint, make))
