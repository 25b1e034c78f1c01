"""Who is this conversation with? sender_id is "<channel>:<external id>" on every channel.

A borrower may see account data only when verified for this conversation: either the channel
identity is bound and verified (WeChat openid, web login, registered phone over SMS), or the
identity form checked phone + ID last four + SMS code. Both end in the slots verified/customer_id.
"""
from __future__ import annotations

from dataclasses import dataclass

from rasa_sdk import Tracker

from .backend_client import BackendClient


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
    ident = await client.identity(channel, external) if channel and external else None
    if not ident:
        return Caller(channel, external, None, False, "unknown")
    return Caller(channel, external, ident["customer_id"], ident["verified"], ident["status"])


async def verified_customer_id(client: BackendClient, tracker: Tracker) -> int | None:
    """The customer this conversation is verified as, re-checking that the channel was not
    marked wrong_person since (then nothing is disclosed, whatever the slots say)."""
    if not tracker.get_slot("verified") or tracker.get_slot("customer_id") is None:
        return None
    caller = await resolve_caller(client, tracker.sender_id)
    if caller.status == "wrong_person":
        return None
    return int(tracker.get_slot("customer_id"))
