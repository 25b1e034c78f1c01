"""Web chat sign-in: phone + SMS code -> a short-lived token for Rasa's socket.io channel.

The token names the conversation (sender_id "web:<customer id>"); the channel in
channels/webchat.py takes the sender from the token, never from the browser.
"""
from __future__ import annotations

from datetime import datetime, timezone

import jwt
from sqlalchemy.orm import Session

from backend.core.config import BusinessRules, Settings
from backend.core.errors import AppError
from backend.models import Customer

from . import audit, channels, verification
from .masking import mask_name


def issue_token(settings: Settings, customer_id: int, now: datetime) -> tuple[str, int]:
    ttl = settings.webchat_token_minutes * 60
    payload = {"sub": f"web:{customer_id}", "customer_id": customer_id,
               "iat": int(now.timestamp()), "exp": int(now.timestamp()) + ttl}
    return jwt.encode(payload, settings.webchat_jwt_secret, algorithm="HS256"), ttl


def verify_login(db: Session, rules: BusinessRules, settings: Settings, phone: str, code: str, now: datetime) -> dict:
    result = verification.check(db, rules, verification.login_conversation(phone), code, now, "webchat",
                                settings.otp_hash_secret)
    status = result["status"]
    if status == "locked":
        raise AppError(423, "locked", "验证失败次数过多，请30分钟后再试", "Too many attempts; try again in 30 minutes")
    if status == "expired":
        raise AppError(401, "code_expired", "验证码已过期，请重新获取", "The code has expired")
    if status != "verified":
        raise AppError(401, "wrong_code", "验证码不正确", "Wrong code")
    customer = db.get(Customer, result["customer_id"])
    ident = channels.identity(db, "web", str(customer.id))
    ident.customer_id, ident.verified = customer.id, True
    # Real time, not the business clock: Rasa's socket.io channel and the page check the expiry on
    # their own clocks (OUTREACH_DEMO_TIME shifts only the business clock, backend.core.clock).
    token, ttl = issue_token(settings, customer.id, datetime.now(timezone.utc))
    audit.record(db, "webchat", "webchat.signed_in", "customer", customer.id)
    return {"token": token, "expires_in": ttl, "sender_id": f"web:{customer.id}", "name_masked": mask_name(customer.name)}


