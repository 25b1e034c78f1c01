"""The borrower-facing web chat: the page, and sign-in by phone + SMS code (no API key: public)."""
from __future__ import annotations

import json
from datetime import timedelta
from html import escape
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

import texts
from backend.api.deps import DB, Rules, Scoped, Today
from backend.core.errors import AppError
from backend.schemas import LoginOut, LoginStartIn, LoginVerifyIn
from backend.services import verification, webchat

router = APIRouter(tags=["web chat"])
PAGE = Path(__file__).resolve().parents[2] / "templates" / "chat.html"


@router.get("/chat", response_class=HTMLResponse, include_in_schema=False)
def chat_page(request: Request, rules: Rules) -> HTMLResponse:
    """The page, with what chat.js reads from it: Rasa's URL, the page's texts (texts/zh/channel.yml
    ``webchat``) and how long a message may wait for its acknowledgement before it shows as not delivered."""
    html = (PAGE.read_text(encoding="utf-8")
            .replace("{{RASA_URL}}", escape(request.app.state.settings.rasa_public_url))
            .replace("{{CHAT_TEXTS}}", escape(json.dumps(texts.section("channel.webchat"), ensure_ascii=False)))
            .replace("{{DELIVERY_SECONDS}}", str(rules.inbound.webchat_delivery_seconds)))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.post("/webchat/login/start")
def login_start(data: LoginStartIn, request: Request, db: DB, rules: Rules, clock: Today) -> dict:
    """Send a sign-in code. The reply is the same whether or not the number is a customer's."""
    result = verification.start_login(db, rules, request.app.state.sms_sender, data.phone, clock.now(),
                                      request.app.state.settings.otp_hash_secret)
    if result["status"] == "locked":
        minutes = rules.verification.lock_minutes
        raise AppError(423, "locked", texts.text("errors.webchat.too_many_attempts", minutes=minutes),
                       f"Too many attempts; try again in {minutes} minutes")
    return {"status": "sent", "expires_in": rules.verification.code_ttl_seconds}


@router.post("/webchat/login/verify", response_model=LoginOut)
def login_verify(data: LoginVerifyIn, request: Request, db: DB, rules: Rules, clock: Today) -> dict:
    return webchat.verify_login(db, rules, request.app.state.settings, data.phone, data.code, clock.now())


# ---- for the bot and tests (service API key) ----------------------------------------------------

class WebSessionIn(BaseModel):
    customer_id: int


@router.post("/api/v1/webchat/sessions", status_code=201)
def open_web_session(data: WebSessionIn, db: DB, caller: Scoped("identities:write")) -> dict:
    """A signed-in web conversation for a customer (what /webchat/login/verify opens after the SMS
    code): its opaque sender id "web:s-<random>", bound to the customer here, never the customer number."""
    return {"sender_id": webchat.open_session(db, data.customer_id, caller)}


@router.get("/api/v1/verification/status")
def verification_status(db: DB, rules: Rules, clock: Today, _: Scoped("verification"),
                        conversation: str = Query(min_length=3, max_length=100)) -> dict:
    """Where a conversation's SMS-code check stands (the bot re-derives the verified customer from this)."""
    return verification.status(db, conversation, clock.now(), timedelta(minutes=rules.verification.verified_minutes))
