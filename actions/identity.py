"""Who is this conversation with? sender_id is "<channel>:<external id>" on every channel.

A borrower may see account data only when verified for this conversation: either the channel
identity is bound and verified (WeChat openid, web login, registered phone over SMS), or the
identity form checked phone + ID last four + SMS code. Both end in the slots verified/customer_id,
but the slots are only what the dialogue shows: whoever can write events into a tracker can set them.
Every account answer re-derives the customer from the backend (:func:`verified_customer_id`).
"""
from __future__ import annotations

from dataclasses import dataclass

from rasa_sdk import Tracker

from bot.backend import BackendClient, BackendError


@dataclass(frozen=True)
class Caller:
    channel: str
    external_id: str
    customer_id: int | None
    verified: bool
    status: str

    @property
    def may_see_account(self) -> bool:
        return self.customer_id is not None and self.verified and self.status == "active"


def split_sender(sender_id: str) -> tuple[str, str]:
    channel, sep, external = sender_id.partition(":")
    return (channel, external) if sep else ("", sender_id)


async def resolve_caller(client: BackendClient, sender_id: str) -> Caller:
    channel, external = split_sender(sender_id)
    # The client's identity() answers None for an id no channel produces (e.g. "../web/7", "5" on web).
    ident = await client.identity(channel, external) if channel and external else None
    if not ident:
        return Caller(channel, external, None, False, "unknown")
    return Caller(channel, external, ident["customer_id"], ident["verified"], ident["status"])


async def verified_customer_id(client: BackendClient, tracker: Tracker) -> int | None:
    """The customer this conversation is verified as, from the backend and never from the slots
    alone: the channel identity (a bound WeChat openid, the registered phone over SMS, a signed-in
    web session), else the backend's record that this conversation passed the SMS-code check.
    A channel marked wrong_person discloses nothing, whatever the slots say."""
    caller = await resolve_caller(client, tracker.sender_id)
    if caller.status == "wrong_person":
        return None
    if caller.may_see_account:
        return caller.customer_id
    if not tracker.get_slot("verified"):
        return None  # this session did not pass the identity form (the slot may only narrow, never widen)
    record = await client.verification_status(tracker.sender_id)
    if record.get("status") == "verified" and record.get("customer_id") is not None:
        return int(record["customer_id"])
    return None


async def customer_id_or_none(client: BackendClient, tracker: Tracker) -> int | None:
    """verified_customer_id for code paths that must not fail when the backend is away."""
    try:
        return await verified_customer_id(client, tracker)
    except BackendError:
        return None


async def require_customer(client: BackendClient, tracker: Tracker) -> int:
    """verified_customer_id, for code that used int(slot): TypeError when not verified (as before)."""
    customer_id = await verified_customer_id(client, tracker)
    if customer_id is None:
        raise TypeError("conversation not verified")
    return customer_id


def masked_conversation(sender_id: str) -> str:
    """The conversation as the backend shows it (backend.services.accounts._mask_external)."""
    channel, external = split_sender(sender_id)
    if channel == "sms":
        digits = external[-11:] if len(external) >= 11 else external
        masked = f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else "****"
    elif channel == "wechat":
        masked = external[:4] + "****" + external[-4:] if len(external) > 8 else "****"
    else:
        masked = external
    return f"{channel}:{masked}"


async def owns(client: BackendClient, tracker: Tracker, record: dict) -> bool:
    """Does a complaint, plan request or notice belong to this conversation: made in it, or the
    customer it is about is the one this conversation is (channel identity or verification)?
    A notice names no one else's reference: an injected EXTERNAL_* intent reveals nothing."""
    if record.get("conversation_masked") and record["conversation_masked"] == masked_conversation(tracker.sender_id):
        return True
    customer_id = record.get("customer_id")
    if customer_id is None:
        return False
    caller = await resolve_caller(client, tracker.sender_id)
    if caller.status == "wrong_person":
        return False
    if caller.customer_id is not None and caller.customer_id == customer_id:
        return True
    return await verified_customer_id(client, tracker) == customer_id
