"""Endpoints for the channel connectors (WeChat, SMS, web chat) running in the Rasa process."""
from __future__ import annotations

from fastapi import APIRouter, Request

from backend.api.deps import DB, ApiRoute, Scoped, Today
from backend.schemas import BindIn, IdentityOut, IdentityStatusIn, InboundIn, InboundOut, SmsSendIn
from backend.services import accounts, channels
from backend.services.sms import send_sms

router = APIRouter(prefix="/api/v1", tags=["channels"], route_class=ApiRoute)
Caller = Scoped("channels")
Binder = Scoped("identities:write")


@router.post("/channels/inbound", response_model=InboundOut)
def inbound(data: InboundIn, db: DB, clock: Today, _: Caller) -> InboundOut:
    """Claim an inbound message by its key; a retry of the same key returns first_time false."""
    first, _ident = channels.claim_inbound(db, data.channel, data.external_id, data.key, clock.now())
    return InboundOut(first_time=first, identity=accounts.get_identity(db, data.channel, data.external_id))


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
