"""The backend application: create_app() wires settings, database and routers together."""
from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from backend.api.routes import (
    accounts, channels, complaints, console, conversations, handoffs, health, nlu_inbox, operations, outreach, plans,
    settlements, webchat,
)
from backend.core.clock import Clock
from backend.core.config import Settings, effective_rules, get_settings, load_rules
from backend.core.errors import install_error_handlers
from backend.db import make_engine, make_sessionmaker
from backend.services.rasa_api import RasaClient
from backend.services.sms import OutboxSender, SmsSender, TwilioSender


def make_sms_sender(settings: Settings) -> SmsSender:
    """SMS_PROVIDER picks the implementation; 'outbox' (a local file) is the development default."""
    if settings.sms_provider == "twilio":
        return TwilioSender(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from_number,
                            settings.twilio_api_base or None)
    return OutboxSender(settings.sms_outbox_path)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="贷款客服助手后台 Loan assistant backend",
        description="System of record for borrowers and loans. Service calls need the X-API-Key header.",
        version="0.1.0",
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
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for module in (health, accounts, conversations, channels, operations, webchat, handoffs, complaints, plans,
                   settlements, outreach, console, nlu_inbox):
        app.include_router(module.router)
    return app


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

