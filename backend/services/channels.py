"""What the channel connectors need from the system of record: exactly-once inbound messages,
the 48-hour window, binding a verified WeChat openid, SMS opt-out."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import texts
from backend.core.errors import AppError
from backend.models import Channel, ChannelIdentity, Customer, IdentityStatus, InboundEvent, OtpChallenge

from . import audit

BIND_WINDOW = timedelta(minutes=30)


def _channel(name: str) -> Channel:
    try:
        return Channel(name)
    except ValueError:
        raise AppError(422, "unknown_channel", texts.text("errors.channels.unknown_channel"),
                       "Unknown channel") from None


def identity(db: Session, channel: str, external_id: str, create: bool = True) -> ChannelIdentity | None:
    ch = _channel(channel)
    if len(external_id) > ChannelIdentity.__table__.c.external_id.type.length:
        raise AppError(422, "invalid_input", texts.text("errors.channels.identity_too_long"),
                       "The channel identity is too long")
    ident = db.scalar(select(ChannelIdentity).where(ChannelIdentity.channel == ch,
                                                    ChannelIdentity.external_id == external_id))
    if ident is None and create:
        ident = ChannelIdentity(channel=ch, external_id=external_id, verified=False, opted_out=False)
        if ch == Channel.sms:
            # A number registered to a customer is that customer's verified identity.
            customer = db.scalar(select(Customer).where(Customer.phone == external_id.removeprefix("+86")))
            if customer is not None:
                ident.customer, ident.verified = customer, True
        db.add(ident)
        db.flush()
    return ident


def claim_inbound(db: Session, channel: str, external_id: str, key: str, now: datetime) -> tuple[bool, ChannelIdentity]:
    """Record an inbound message. Returns (first_time, identity); a repeated key is a retry.

    The unique key is inserted in a savepoint, so two workers racing on the same retry cannot
    both win.
    """
    ch = _channel(channel)
    ident = identity(db, channel, external_id)
    try:
        with db.begin_nested():
            db.add(InboundEvent(key=f"{ch.value}:{key}", channel=ch))
    except IntegrityError:
        return False, ident
    ident.last_inbound_at = now
    return True, ident


def set_status(db: Session, channel: str, external_id: str, status: str, actor: str) -> ChannelIdentity:
    ident = identity(db, channel, external_id)
    if ident.status == IdentityStatus.wrong_person and status == "active":
        return ident  # only staff may lift a wrong-person mark
    ident.status = IdentityStatus(status)
    audit.record(db, actor, f"identity.{status}", "channel_identity", ident.id, channel=channel)
    return ident


def bind(db: Session, channel: str, external_id: str, customer_id: int, now: datetime, actor: str) -> ChannelIdentity:
    """Bind an identity to a customer after this conversation passed the SMS-code check."""
    conversation = f"{channel}:{external_id}"
    proof = db.scalar(select(OtpChallenge).where(
        OtpChallenge.conversation == conversation, OtpChallenge.customer_id == customer_id,
        OtpChallenge.verified_at.is_not(None)).order_by(OtpChallenge.id.desc()).limit(1))
    verified_at = proof.verified_at if proof else None
    if verified_at is None or now - verified_at > BIND_WINDOW:
        raise AppError(403, "not_verified", texts.text("errors.channels.not_verified"),
                       "Verify this conversation before binding")
    ident = identity(db, channel, external_id)
    ident.customer_id, ident.verified, ident.status = customer_id, True, IdentityStatus.active
    audit.record(db, actor, "identity.bound", "channel_identity", ident.id, channel=channel, customer_id=customer_id)
    return ident


def set_opt_out(db: Session, number: str, opted_out: bool, actor: str) -> ChannelIdentity:
    ident = identity(db, "sms", number)
    ident.opted_out = opted_out
    if opted_out and ident.customer is not None:
        ident.customer.consent_reminders = False
        ident.customer.consent_marketing = False
    audit.record(db, actor, "sms.opted_out" if opted_out else "sms.opted_in", "channel_identity", ident.id)
    return ident


def is_opted_out(db: Session, number: str) -> bool:
    ident = identity(db, "sms", number, create=False)
    return bool(ident and ident.opted_out)
