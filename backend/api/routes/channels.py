"""Endpoints for the channel connectors (WeChat, SMS, web chat) running in the Rasa process."""
from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from backend.api.deps import DB, ApiRoute, Rules, Scoped, Today
from backend.schemas import BindIn, ClaimIn, ClaimOut, IdentityOut, IdentityStatusIn, InboundIn, InboundOut, SmsSendIn
from backend.services import accounts, channels
from backend.services.sms import send_sms

router = APIRouter(prefix="/api/v1", tags=["channels"], route_class=ApiRoute)
Caller = Scoped("channels")
Binder = Scoped("identities:write")


@router.post("/channels/inbound", response_model=InboundOut)
def inbound(data: InboundIn, db: DB, clock: Today, rules: Rules, _: Caller) -> InboundOut:
    """Claim an inbound message by its key. Without ``owner``: done at once, a retry of the same key
    returns first_time false. With ``owner``: ``claimed`` (yours until completed; a stale claim is
    taken over), ``in_progress`` (another owner's lease is fresh) or ``done`` (a duplicate)."""
    lease = timedelta(seconds=rules.inbound.claim_lease_seconds)
    claim = channels.claim_inbound(db, data.channel, data.external_id, data.key, clock.now(),
                                   owner=data.owner, wall=clock.wall(), lease=lease)
    ident = accounts.get_identity(db, data.channel, data.external_id) if claim.identity is not None else None
    row = claim.row
    return InboundOut(first_time=claim.first_time, identity=ident, state=claim.state, owner=row.owner,
                      attempts=row.attempts, lease_seconds=lease.total_seconds(), lease_until=row.lease_until)


def _claim_out(row, owner_matched: bool | None = None) -> ClaimOut:
    return ClaimOut(state=row.state, owner=row.owner, attempts=row.attempts, lease_until=row.lease_until,
                    owner_matched=owner_matched)


@router.post("/channels/inbound/renew", response_model=ClaimOut)
def renew_inbound(data: ClaimIn, db: DB, clock: Today, rules: Rules, _: Caller) -> ClaimOut:
    """Extend the owner's lease while Rasa works on the message; 409 claim_lost if it is no longer the owner's."""
    lease = timedelta(seconds=rules.inbound.claim_lease_seconds)
    return _claim_out(channels.renew_claim(db, data.channel, data.key, data.owner, clock.wall(), lease))


@router.post("/channels/inbound/complete", response_model=ClaimOut)
def complete_inbound(data: ClaimIn, db: DB, clock: Today, _: Caller) -> ClaimOut:
    """Rasa has processed the message: the claim is done (idempotent)."""
    row, matched = channels.complete_claim(db, data.channel, data.key, data.owner, clock.wall())
    return _claim_out(row, matched)


@router.post("/channels/inbound/release", response_model=ClaimOut)
def release_inbound(data: ClaimIn, db: DB, clock: Today, _: Caller) -> ClaimOut:
    """The owner could not have the message processed: its lease ends now, the next retry takes over."""
    return _claim_out(channels.release_claim(db, data.channel, data.key, data.owner, clock.wall()))


@router.post("/identities/{channel}/{external_id}/status", response_model=IdentityOut)
def identity_status(channel: str, external_id: str, data: IdentityStatusIn, db: DB, caller: Caller):
    channels.set_status(db, channel, external_id, data.status, caller)
    return accounts.get_identity(db, channel, external_id)


@router.post("/identities/{channel}/{external_id}/bind", response_model=IdentityOut)
def bind(channel: str, external_id: str, data: BindIn, db: DB, clock: Today, caller: Binder):
    """Bind e.g. a WeChat openid to the customer this conversation just verified by SMS code."""
    channels.bind(db, channel, external_id, data.customer_id, clock.now(), caller)
    return accounts.get_identity(db, channel, external_id)


@router.post("/sms/{number}/opt-out", response_model=IdentityOut)
def opt_out(number: str, db: DB, caller: Caller):
    channels.set_opt_out(db, number, True, caller)
    return accounts.get_identity(db, "sms", number)


@router.post("/sms/{number}/opt-in", response_model=IdentityOut)
def opt_in(number: str, db: DB, caller: Caller):
    channels.set_opt_out(db, number, False, caller)
    return accounts.get_identity(db, "sms", number)


@router.post("/sms/send", status_code=202)
def sms_send(data: SmsSendIn, request: Request, db: DB, _: Caller) -> dict[str, int]:
    """Send a bot reply or notice by SMS: split into 70-character segments, refused if opted out."""
    return {"segments": send_sms(db, request.app.state.sms_sender, data.to, data.body, data.purpose)}
