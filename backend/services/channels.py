"""What the channel connectors need from the system of record: exactly-once inbound messages
(claims completed only after Rasa has processed the message, with a lease a retry takes over), the
48-hour window, binding a verified WeChat openid, SMS opt-out."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import texts
from backend.core.errors import AppError
from backend.models import Channel, ChannelIdentity, Customer, IdentityStatus, InboundEvent, OtpChallenge

from . import audit

log = logging.getLogger(__name__)
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


IN_PROGRESS, DONE = "in_progress", "done"
CLAIMED = "claimed"  # what a claimer is told when it owns the claim now (not a stored state)


@dataclass
class Claim:
    """What a claimer is told: ``state`` is ``claimed`` (yours: process it, then complete it),
    ``in_progress`` (another owner's lease is fresh: do not process) or ``done`` (a duplicate)."""

    state: str
    row: InboundEvent
    identity: ChannelIdentity | None
    lease: timedelta

    @property
    def first_time(self) -> bool:
        return self.state == CLAIMED


def _tracked_identity(db: Session, ch: Channel, external_id: str) -> ChannelIdentity | None:
    """The identity a message counts for (last_inbound_at): none for an anonymous web visitor, who
    has no account (a row per visitor would only collect noise)."""
    if ch == Channel.web and external_id.startswith("anon-"):
        return None
    return identity(db, ch.value, external_id)


def claim_inbound(db: Session, channel: str, external_id: str, key: str, now: datetime,
                  owner: str | None = None, wall: datetime | None = None,
                  lease: timedelta = timedelta(seconds=10)) -> Claim:
    """Claim an inbound message by its key.

    Without ``owner`` the claim is done at once (first_time once, a repeated key is a retry). With
    one it stays ``in_progress`` until :func:`complete_claim`, held by ``owner`` until ``wall`` +
    ``lease`` (real time; :func:`renew_claim` extends it); a claim whose lease has run out is taken
    over by the next claimer (``attempts`` + 1), so a message whose processor died is processed by
    its retry instead of being dropped as a duplicate.

    The key is inserted in a savepoint and a takeover is one conditional UPDATE, so of two workers
    racing on the same message exactly one is told ``claimed``.
    """
    ch = _channel(channel)
    wall = wall or now
    ident = _tracked_identity(db, ch, external_id)
    full_key = f"{ch.value}:{key}"
    try:
        with db.begin_nested():
            row = InboundEvent(key=full_key, channel=ch, state=IN_PROGRESS if owner else DONE, owner=owner,
                               lease_until=wall + lease if owner else None, attempts=1,
                               done_at=None if owner else wall)
            db.add(row)
    except IntegrityError:
        row = db.scalar(select(InboundEvent).where(InboundEvent.key == full_key).execution_options(
            populate_existing=True))
        return Claim(_retry_state(db, row, owner, wall, lease), row, ident, lease)
    if ident is not None:
        ident.last_inbound_at = now
    return Claim(CLAIMED, row, ident, lease)


def _retry_state(db: Session, row: InboundEvent, owner: str | None, wall: datetime, lease: timedelta) -> str:
    if row.state == DONE:
        return DONE
    if owner is None:
        return IN_PROGRESS  # an old-style caller never takes over
    if row.owner == owner:  # the owner asking again (its own retry): renewed
        row.lease_until = wall + lease
        db.flush()
        return CLAIMED
    if row.lease_until is not None and row.lease_until > wall:
        return IN_PROGRESS
    taken = db.execute(
        update(InboundEvent)
        .where(InboundEvent.id == row.id, InboundEvent.state == IN_PROGRESS,
               or_(InboundEvent.lease_until.is_(None), InboundEvent.lease_until <= wall))
        .values(owner=owner, lease_until=wall + lease, attempts=InboundEvent.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    db.refresh(row)
    if taken == 1:
        log.info("inbound claim %s taken over (attempt %d)", row.id, row.attempts)
        return CLAIMED
    return row.state if row.state == DONE else IN_PROGRESS


def _owned(db: Session, channel: str, key: str) -> InboundEvent:
    ch = _channel(channel)
    row = db.scalar(select(InboundEvent).where(InboundEvent.key == f"{ch.value}:{key}"))
    if row is None:
        raise AppError(404, "not_found", texts.text("errors.channels.claim_not_found"), "No such inbound claim")
    return row


def renew_claim(db: Session, channel: str, key: str, owner: str, wall: datetime, lease: timedelta) -> InboundEvent:
    """Extend the owner's lease while it still holds the claim; 409 ``claim_lost`` otherwise."""
    row = _owned(db, channel, key)
    taken = db.execute(
        update(InboundEvent)
        .where(InboundEvent.id == row.id, InboundEvent.state == IN_PROGRESS, InboundEvent.owner == owner)
        .values(lease_until=wall + lease).execution_options(synchronize_session=False)).rowcount
    db.refresh(row)
    if taken != 1:
        raise AppError(409, "claim_lost", texts.text("errors.channels.claim_lost"),
                       "The claim is done or held by another owner")
    return row


def complete_claim(db: Session, channel: str, key: str, owner: str, wall: datetime) -> tuple[InboundEvent, bool]:
    """Rasa has processed the message: done, whoever holds the lease now (idempotent). Returns the
    claim and whether ``owner`` still held it."""
    row = _owned(db, channel, key)
    matched = row.owner == owner
    db.execute(update(InboundEvent).where(InboundEvent.id == row.id, InboundEvent.state == IN_PROGRESS)
               .values(state=DONE, done_at=wall).execution_options(synchronize_session=False))
    db.refresh(row)
    return row, matched


def release_claim(db: Session, channel: str, key: str, owner: str, wall: datetime) -> InboundEvent:
    """The owner gave up before Rasa processed the message: the lease ends now, so the next retry
    takes it over at once. Nothing changes for anyone but the owner of an in-progress claim."""
    row = _owned(db, channel, key)
    db.execute(update(InboundEvent)
               .where(InboundEvent.id == row.id, InboundEvent.state == IN_PROGRESS, InboundEvent.owner == owner)
               .values(lease_until=wall).execution_options(synchronize_session=False))
    db.refresh(row)
    return row


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
