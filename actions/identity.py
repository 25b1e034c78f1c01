"""Who is this conversation with? sender_id is "<channel>:<external id>" on every channel."""
from __future__ import annotations

from dataclasses import dataclass

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
