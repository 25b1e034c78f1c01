"""Web chat sign-in: phone + SMS code -> a short-lived token for Rasa's socket.io channel.

The token names the conversation (sender_id "web:s-<random>"): a web session is an opaque id bound
server-side to the customer (a verified web channel identity), never the customer number, so no
one can name another borrower's conversation. The channel in channels/webchat.py takes the sender
from the token, never from the browser.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

import jwt
from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules, Settings
from backend.core.errors import AppError
from backend.models import Customer

from . import audit, channels, verification
from .masking import mask_name


def open_session(db: Session, customer_id: int, actor: str) -> str:
    """A new web conversation for a signed-in customer: its sender id ("web:s-<random>")."""
    if db.get(Customer, customer_id) is None:
        raise AppError(404, "not_found", texts.text("errors.webchat.customer_not_found"), "Customer not found")
    external = f"s-{secrets.token_hex(16)}"
    ident = channels.identity(db, "web", external)
    ident.customer_id, ident.verified = customer_id, True
    audit.record(db, actor, "webchat.session_opened", "customer", customer_id)
    return f"web:{external}"


def issue_token(settings: Settings, customer_id: int, now: datetime, sender_id: str) -> tuple[str, int]:
    ttl = settings.webchat_token_minutes * 60
    payload = {"sub": sender_id, "customer_id": customer_id,
               "iat": int(now.timestamp()), "exp": int(now.timestamp()) + ttl}
    return jwt.encode(payload, settings.webchat_jwt_secret, algorithm="HS256"), ttl


def verify_login(db: Session, rules: BusinessRules, settings: Settings, phone: str, code: str, now: datetime) -> dict:
    result = verification.check(db, rules, verification.login_conversation(phone), code, now, "webchat",
                                settings.otp_hash_secret)
    status = result["status"]
    if status == "locked":
        minutes = rules.verification.lock_minutes
        raise AppError(423, "locked", texts.text("errors.webchat.locked", minutes=minutes),
                       f"Too many attempts; try again in {minutes} minutes")
    if status == "expired":
        raise AppError(401, "code_expired", texts.text("errors.webchat.code_expired"), "The code has expired")
    if status != "verified":
        raise AppError(401, "wrong_code", texts.text("errors.webchat.wrong_code"), "Wrong code")
    customer = db.get(Customer, result["customer_id"])
    sender_id = open_session(db, customer.id, "webchat")
    # Real time, not the business clock: Rasa's socket.io channel and the page check the expiry on
    # their own clocks (OUTREACH_DEMO_TIME shifts only the business clock, backend.core.clock).
    token, ttl = issue_token(settings, customer.id, datetime.now(timezone.utc), sender_id)
    audit.record(db, "webchat", "webchat.signed_in", "customer", customer.id)
    return {"token": token, "expires_in": ttl, "sender_id": sender_id, "name_masked": mask_name(customer.name)}


