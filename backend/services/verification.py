"""Identity verification for a conversation: registered phone + ID last four, then an SMS code.

Rules (config/business.yml, ``verification``): a code lives 5 minutes; 5 wrong codes lock the
conversation for 30 minutes; 5 phone/ID mismatches lock it too. Codes are stored hashed.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

import texts
from backend.core.config import BusinessRules
from backend.models import Customer, OtpChallenge

from . import audit
from .masking import mask_phone
from .sms import SmsSender, send_sms


def _hash(secret: str, conversation: str, code: str) -> str:
    """Keyed hash: a database copy alone cannot be brute-forced back to the 6-digit codes."""
    return hmac.new(secret.encode(), f"{conversation}:{code}".encode(), hashlib.sha256).hexdigest()


def _recent(db: Session, conversation: str, since: datetime) -> list[OtpChallenge]:
    rows = db.scalars(select(OtpChallenge).where(OtpChallenge.conversation == conversation)).all()
    return [c for c in rows if c.created_at >= since]


def _latest(db: Session, conversation: str) -> OtpChallenge | None:
    return db.scalar(select(OtpChallenge).where(OtpChallenge.conversation == conversation)
                     .order_by(OtpChallenge.id.desc()).limit(1))


def _locked(ch: OtpChallenge | None, now: datetime) -> datetime | None:
    if ch and ch.locked_until and ch.locked_until > now:
        return ch.locked_until
    return None


def start(db: Session, rules: BusinessRules, sms: SmsSender, conversation: str, phone: str, id_last4: str,
          now: datetime, actor: str, secret: str) -> dict:
    """Send a code if phone and ID last four belong to one customer. Never says which part was wrong."""
    v = rules.verification
    latest = _latest(db, conversation)
    if until := _locked(latest, now):
        return {"status": "locked", "locked_until": until.isoformat()}
    customer = db.scalar(select(Customer).where(Customer.phone == phone.removeprefix("+86")))
    if customer is None or customer.id_number[-4:].upper() != id_last4.upper():
        # A lock that has run out starts the count afresh.
        carry = latest and not latest.verified_at and not latest.locked_until
        mismatches = (latest.mismatches if carry else 0) + 1
        ch = OtpChallenge(conversation=conversation, created_at=now, mismatches=mismatches, wrong_attempts=0)
        if mismatches >= v.max_mismatches:
            ch.locked_until = now + timedelta(minutes=v.lock_minutes)
        db.add(ch)
        audit.record(db, actor, "verification.mismatch", "conversation", conversation, mismatches=mismatches)
        if ch.locked_until:
            return {"status": "locked", "locked_until": ch.locked_until.isoformat()}
        return {"status": "not_matched", "attempts_left": v.max_mismatches - mismatches}
    return _send_code(db, rules, sms, conversation, customer, now, actor, secret)


def _send_code(db: Session, rules: BusinessRules, sms: SmsSender, conversation: str, customer: Customer,
               now: datetime, actor: str, secret: str) -> dict:
    v = rules.verification
    window = now - timedelta(minutes=v.lock_minutes)
    recent = _recent(db, conversation, window)
    if sum(1 for c in recent if c.code_hash) >= v.max_wrong_attempts:
        # Asking for fresh codes must not reset the wrong-code limit: as many codes as tries per window.
        lock = OtpChallenge(conversation=conversation, created_at=now, mismatches=0, wrong_attempts=0,
                            locked_until=now + timedelta(minutes=v.lock_minutes))
        db.add(lock)
        return {"status": "locked", "locked_until": lock.locked_until.isoformat()}
    code = f"{secrets.randbelow(10**6):06d}"
    db.add(OtpChallenge(
        conversation=conversation, customer_id=customer.id, code_hash=_hash(secret, conversation, code), created_at=now,
        expires_at=now + timedelta(seconds=v.code_ttl_seconds), wrong_attempts=0, mismatches=0,
    ))
    send_sms(db, sms, customer.phone,
             texts.text("backend.verification_sms", code=code, minutes=v.code_ttl_seconds // 60),
             purpose="otp")
    audit.record(db, actor, "verification.code_sent", "customer", customer.id, conversation=conversation)
    return {"status": "sent", "phone_masked": mask_phone(customer.phone), "expires_in": v.code_ttl_seconds}


def login_conversation(phone: str) -> str:
    return f"weblogin:{phone.removeprefix('+86')}"


def start_login(db: Session, rules: BusinessRules, sms: SmsSender, phone: str, now: datetime, secret: str) -> dict:
    """Web chat sign-in: a code to the phone if it belongs to a customer. The answer is the same
    either way, so the page cannot be used to find out who borrows from us."""
    conversation = login_conversation(phone)
    if until := _locked(_latest(db, conversation), now):
        return {"status": "locked", "locked_until": until.isoformat()}
    customer = db.scalar(select(Customer).where(Customer.phone == phone.removeprefix("+86")))
    if customer is None:
        return {"status": "sent", "expires_in": rules.verification.code_ttl_seconds}
    result = _send_code(db, rules, sms, conversation, customer, now, "webchat", secret)
    result.pop("phone_masked", None)
    return result


def check(db: Session, rules: BusinessRules, conversation: str, code: str, now: datetime, actor: str,
          secret: str) -> dict:
    v = rules.verification
    ch = _latest(db, conversation)
    if until := _locked(ch, now):
        return {"status": "locked", "locked_until": until.isoformat()}
    if ch is None or ch.code_hash is None or ch.verified_at is not None:
        return {"status": "no_code"}
    if ch.expires_at <= now:
        return {"status": "expired"}
    if not hmac.compare_digest(ch.code_hash, _hash(secret, conversation, code)):
        ch.wrong_attempts += 1
        audit.record(db, actor, "verification.wrong_code", "conversation", conversation, attempts=ch.wrong_attempts)
        if ch.wrong_attempts >= v.max_wrong_attempts:
            ch.locked_until = now + timedelta(minutes=v.lock_minutes)
            return {"status": "locked", "locked_until": ch.locked_until.isoformat()}
        return {"status": "wrong_code", "attempts_left": v.max_wrong_attempts - ch.wrong_attempts}
    ch.verified_at = now
    audit.record(db, actor, "verification.verified", "customer", ch.customer_id, conversation=conversation)
    return {"status": "verified", "customer_id": ch.customer_id}


def status(db: Session, conversation: str, now: datetime, verified_within: timedelta) -> dict:
    """Where this conversation's code check stands, for the bot (it never trusts its own slots):
    verified (as which customer, within ``verified_within``), pending (a live code), locked, expired
    or none."""
    ch = _latest(db, conversation)
    if until := _locked(ch, now):
        return {"status": "locked", "locked_until": until.isoformat()}
    if ch is None or ch.code_hash is None:
        return {"status": "none"}
    if ch.verified_at is not None:
        if now - ch.verified_at <= verified_within:
            return {"status": "verified", "customer_id": ch.customer_id}
        return {"status": "none"}
    if ch.expires_at <= now:
        return {"status": "expired"}
    return {"status": "pending", "attempts_left": max(0, _max_wrong(db) - ch.wrong_attempts)}


def _max_wrong(db: Session) -> int:
    rules = db.info.get("rules")
    return rules.verification.max_wrong_attempts if rules is not None else 5
