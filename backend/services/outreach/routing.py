"""Which channel can take a notice now.

Automated notices go to the borrower's preferred channel if it can deliver now, else to the next one
in ``outreach.channel_order``:
* WeChat: a verified, active identity whose last message is within the 48-hour window (or any time
  when a service-notice template is configured);
* SMS: the registered phone's identity, not opted out and not wrong_person;
* web: a verified, active web identity that wrote within ``web_connected_minutes``.
An identity marked wrong_person is never used. Service notices go back to the conversation the
borrower used (the request, the complaint, the handoff case), which WeChat serves by template outside
its window; only when that conversation cannot take it (wrong person, opted out, unsubscribed from
the account) do they follow the borrower's channels like the rest.

Nothing deliverable now: LATER when a channel may open (WeChat window, web chat), the notice is
retried after ``no_channel_retry_minutes``; otherwise the notice is skipped (wrong_person when that is
why, else no_channel).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.config import OutreachRules
from backend.models import Channel, ChannelIdentity, Customer, IdentityStatus, OutreachNotice

from .clock import local
from .context import fresh

LATER, WRONG_PERSON, NO_CHANNEL = "later", "wrong_person", "no_channel"


@dataclass(frozen=True)
class Route:
    channel: str
    conversation: str
    identity_id: int | None


def _recent(ident: ChannelIdentity, now: datetime, within: timedelta) -> bool:
    last = local(ident.last_inbound_at, now.tzinfo)
    return last is not None and now - last <= within


def _state(cfg: OutreachRules, channel: str, idents: list[ChannelIdentity], customer: Customer,
           now: datetime) -> tuple[str, ChannelIdentity | None]:
    """('ok', identity) or why not: later / wrong_person / no_channel."""
    if channel == Channel.sms.value:
        mine = [i for i in idents if i.external_id == "+86" + customer.phone]
        if not mine:
            return NO_CHANNEL, None
        ident = mine[0]
        if ident.status == IdentityStatus.wrong_person:
            return WRONG_PERSON, None
        if ident.opted_out or ident.status != IdentityStatus.active:
            return NO_CHANNEL, None
        return "ok", ident
    if any(i.status == IdentityStatus.wrong_person for i in idents) and \
            not any(i.status == IdentityStatus.active for i in idents):
        return WRONG_PERSON, None
    usable = [i for i in idents if i.verified and i.status == IdentityStatus.active]
    if not usable:
        return NO_CHANNEL, None
    if channel == Channel.wechat.value:
        if cfg.wechat_template_outside_window:
            return "ok", usable[0]
        within = timedelta(hours=cfg.wechat_window_hours)
    else:
        within = timedelta(minutes=cfg.web_connected_minutes)
    recent = sorted((i for i in usable if _recent(i, now, within)),
                    key=lambda i: local(i.last_inbound_at, now.tzinfo), reverse=True)
    return ("ok", recent[0]) if recent else (LATER, None)


def choose(db: Session, cfg: OutreachRules, customer: Customer, now: datetime) -> Route | str:
    """The first channel, preferred one first, that can deliver now; else LATER / WRONG_PERSON / NO_CHANNEL."""
    idents = list(db.scalars(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer.id)
                             .order_by(ChannelIdentity.id).execution_options(populate_existing=True)))
    preferred = customer.preferred_channel.value
    order = [preferred] + [c for c in cfg.channel_order if c != preferred]
    why = []
    for channel in order:
        state, ident = _state(cfg, channel, [i for i in idents if i.channel.value == channel], customer, now)
        if state == "ok":
            external = ident.external_id
            return Route(channel, f"{channel}:{external}", ident.id)
        why.append(state)
    if LATER in why:
        return LATER
    return WRONG_PERSON if WRONG_PERSON in why else NO_CHANNEL


def fixed_target(db: Session, notice: OutreachNotice) -> Route | None:
    """The conversation a service notice answers in, if it can still take it."""
    conversation = notice.payload.get("conversation")
    if not conversation:
        return None
    channel, _, external = conversation.partition(":")
    ident = db.scalar(select(ChannelIdentity).where(ChannelIdentity.channel == Channel(channel),
                                                    ChannelIdentity.external_id == external)
                      .execution_options(populate_existing=True))
    if ident is not None and (ident.status != IdentityStatus.active or ident.opted_out):
        return None
    return Route(channel, conversation, ident.id if ident else None)


def route(db: Session, cfg: OutreachRules, notice: OutreachNotice, now: datetime) -> Route | str:
    target = fixed_target(db, notice)
    if target is not None:
        return target
    if notice.customer_id is None:
        return NO_CHANNEL
    return choose(db, cfg, fresh(db, Customer, notice.customer_id), now)
