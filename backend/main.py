"""The backend application: create_app() wires settings, database and routers together."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.routes import (
    accounts, bot_rules, channels, complaints, console, conversations, handoffs, health, nlu_inbox, operations, outreach,
    plans, settlements, webchat,
)
from backend.core.clock import Clock
from backend.core.config import Settings, effective_rules, get_settings, load_rules
from backend.core.errors import install_error_handlers
from backend.db import make_engine, make_sessionmaker
from backend.services.outreach.worker import POLL_SECONDS, OutboxWorker
from backend.services.rasa_api import RasaClient
from backend.services.sms import OutboxSender, SmsSender, TwilioSender


def make_sms_sender(settings: Settings) -> SmsSender:
    """SMS_PROVIDER picks the implementation; 'outbox' (a local file) is the development default."""
    if settings.sms_provider == "twilio":
        return TwilioSender(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from_number,
                            settings.twilio_api_base or None)
    # Numbers and codes in the outbox file only for demos and tests, never in production.
    return OutboxSender(settings.sms_outbox_path,
                        show_codes=settings.sms_outbox_show_codes and settings.app_env != "production")


# FastAPI's own documentation pages load Swagger UI / ReDoc from a CDN with an inline script.
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")


def security_headers(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """The headers of every backend response, and of the API documentation pages.

    The console and the web chat load only their own scripts and styles (no inline code: chat.html
    passes Rasa's URL in a <meta>); the chat page's socket.io connection goes to RASA_PUBLIC_URL.
    No page may be framed (clickjacking of the console), nothing is MIME-sniffed, no URL (console case
    ids) leaks in a Referer. The backend sends no CORS headers: browsers keep other origins out."""
    rasa = urlsplit(settings.rasa_public_url)
    socket = f"{'wss' if rasa.scheme == 'https' else 'ws'}://{rasa.netloc}" if rasa.netloc else ""
    connect = " ".join(x for x in ("'self'", f"{rasa.scheme}://{rasa.netloc}" if rasa.netloc else "", socket) if x)
    common = {
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if settings.app_env == "production":  # served over HTTPS (the console cookie is Secure)
        common["Strict-Transport-Security"] = "max-age=31536000"
    base = ("object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
    # Development only: 'unsafe-eval' for the browser tests (Playwright's wait_for_function evaluates
    # its predicate with eval in the page). The pages never eval (tests/backend/test_security_headers.py);
    # inline code stays blocked in both profiles.
    script = "'self'" if settings.app_env == "production" else "'self' 'unsafe-eval'"
    pages = {**common, "Content-Security-Policy": (
        f"default-src 'self'; script-src {script}; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src {connect}; {base}")}
    cdn = "https://cdn.jsdelivr.net"
    docs = {**common, "Content-Security-Policy": (
        f"default-src 'self'; script-src 'self' 'unsafe-inline' {cdn}; style-src 'self' 'unsafe-inline' {cdn} "
        f"https://fonts.googleapis.com; font-src 'self' https://fonts.gstatic.com; "
        f"img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; {base}")}
    return pages, docs


class SecurityHeaders:
    """Pure ASGI middleware (streaming responses untouched): adds the headers a route did not set."""

    def __init__(self, app: ASGIApp, pages: dict[str, str], docs: dict[str, str]) -> None:
        self.app, self.pages, self.docs = app, pages, docs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs if scope.get("path") in DOCS_PATHS else self.pages

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


@asynccontextmanager
async def lifespan(app: FastAPI):
    """The outbox worker delivers decision notices while the app runs (backend.services.outreach.worker)."""
    worker = OutboxWorker(app, app.state.outbox_poll_seconds).start() if app.state.outbox_poll_seconds > 0 else None
    try:
        yield
    finally:
        if worker is not None:
            worker.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="贷款客服助手后台 Loan assistant backend",
        description="System of record for borrowers and loans. Service calls need the X-API-Key header.",
        version="0.1.0", lifespan=lifespan,
    )
    engine = make_engine(settings.database_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.rules = effective_rules(load_rules(settings.business_rules_path), settings)
    # The business clock; OUTREACH_DEMO_TIME shifts it as the scheduler's (backend.core.clock).
    app.state.clock = Clock.from_settings(settings)
    if app.state.clock.shifted:
        logging.getLogger("backend").info("demo clock: business time %s (OUTREACH_DEMO_TIME=%s)",
                                          app.state.clock.now().isoformat(timespec="seconds"),
                                          settings.outreach_demo_time)
    app.state.sms_sender = make_sms_sender(settings)
    app.state.rasa = RasaClient(settings.rasa_url, settings.rasa_api_token)
    app.state.outbox_poll_seconds = POLL_SECONDS  # 0: no outbox worker (the backend tests run it themselves)
    install_error_handlers(app)
    app.add_middleware(SecurityHeaders, *security_headers(settings))
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for module in (health, accounts, conversations, channels, operations, webchat, handoffs, complaints, plans,
                   settlements, outreach, console, nlu_inbox, bot_rules):
        app.include_router(module.router)
    return app


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
# No full phone, ID, card number or code in any log line, and no line over 2,000 characters
# (bot/logscrub.py: root, uvicorn's loggers and every handler, also those uvicorn made before).
from bot.logscrub import install as _install_log_scrubber  # noqa: E402

_install_log_scrubber()

