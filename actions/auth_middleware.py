"""The action server answers only Rasa: a shared token on every request, and one interface.

rasa_sdk 3.6 has no authentication and listens on 0.0.0.0, and it trusts the tracker (slots, sender)
in the request body: whoever reaches it could run any action as any borrower. So ``serve`` (called
by ``python -m bot.launch actions``) starts rasa_sdk's own server with two changes:

* it listens on ``host`` only (rasa_sdk reads SANIC_HOST; ACTION_HOST, default 127.0.0.1);
* a Sanic request middleware, attached through rasa_sdk's plugin hook
  (``attach_sanic_app_extensions``, called on the app ``rasa_sdk.endpoint.create_app`` made), answers
  401 to any request but ``GET /health`` without ``Authorization: Bearer <ACTION_SERVER_TOKEN>``.
  Rasa sends that header: ``action_endpoint.headers`` in endpoints.yml / endpoints.scale.yml.
  An authorised request also starts its own memo of backend GETs (``bot.backend.action_run``): the
  identity and loans that several validation steps of one run ask for are fetched once.

An empty token refuses to start: there is no unauthenticated mode, in any profile.
"""
from __future__ import annotations

import hmac
import os
import sys
from typing import Any

import pluggy
from sanic import response

from bot.backend import action_run, close_backend

hookimpl = pluggy.HookimplMarker("rasa_sdk")
OPEN_PATHS = frozenset({"/health"})  # stack.py's readiness check; it tells nothing


def authorised(headers: Any, token: str) -> bool:
    """True when the request carries ``Authorization: Bearer <token>`` (compared in constant time)."""
    scheme, _, supplied = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not supplied or not token:
        return False
    return hmac.compare_digest(supplied.strip().encode(), token.encode())


def attach(app: Any, token: str) -> None:
    """Install the token check on a Sanic app (rasa_sdk's)."""
    if not token:
        raise ValueError("the action server token is empty")

    @app.middleware("request")
    async def require_action_server_token(request):  # noqa: ANN001 - Sanic request
        if request.method == "GET" and request.path in OPEN_PATHS:
            return None
        if not authorised(request.headers, token):
            return response.json({"error": "unauthorized"}, status=401)
        action_run()  # this request's backend GETs are sent once (bot/backend.py)
        return None


class TokenPlugin:
    """rasa_sdk plugin: rasa_sdk.endpoint.run calls the hook on the app it created, before serving."""

    def __init__(self, token: str) -> None:
        self.token = token

    @hookimpl
    def attach_sanic_app_extensions(self, app: Any) -> None:
        attach(app, self.token)
        # The backend client's session lives as long as the server (bot/backend.py).
        app.register_listener(close_backend, "after_server_stop")


def serve(host: str, port: int, token: str, actions: str = "actions") -> None:
    """Run rasa_sdk's action server (its own argument parser and ``run``) on host:port with the token check."""
    if not token.strip():
        sys.exit("actions: refusing to start: ACTION_SERVER_TOKEN is empty (Rasa sends it: endpoints.yml)")
    from rasa_sdk.__main__ import main_from_args
    from rasa_sdk.endpoint import create_argument_parser
    from rasa_sdk.plugin import plugin_manager

    plugin_manager().register(TokenPlugin(token.strip()))
    os.environ["SANIC_HOST"] = host  # rasa_sdk.endpoint.run binds to it (its default: 0.0.0.0)
    main_from_args(create_argument_parser().parse_args(["--actions", actions, "--port", str(port)]))
