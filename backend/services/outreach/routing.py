"""Which channel can take a notice now.

Automated notices go to the borrower's preferred channel if it can deliver now, else to the next one
in ``outreach.channel_order``:
* WeChat: a verified, active identity whose last message is within ``wechat_window_hours`` (48), by
  the business clock and by the real clock alike (the WeChat channel checks the window on its own,
  real, clock; the two differ only under OUTREACH_DEMO_TIME). Outside the window only when a
  template can carry the notice: ``outreach.wechat_template_outside_window`` true AND
  WECHAT_TEMPLATE_ID set (the process folds the second into the first at start-up,
  backend.core.config.effective_rules); without a template the channel would send nothing;
* SMS: the registered phone's identity, not opted out and not wrong_person;
* web: a verified, active web identity that wrote within ``web_connected_minutes``.
An identity marked wrong_person is never used. Service notices go back to the conversation the
borrower used (the request, the complaint, the handoff case) when it can take them now, by the same
rule for WeChat (inside the window, or a template); otherwise (WeChat window closed without a
template, wrong person, opted out, unsubscribed from the account) they follow the borrower's channels
like the rest.

Nothing deliverable now: LATER when a channel may open (WeChat window, web chat), the notice is
retried after ``no_channel_retry_minutes``; otherwise the notice is skipped (wrong_person when that is
why, else no_channel).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.clock import local
from backend.core.config import OutreachRules
from backend.models import Channel, ChannelIdentity, Customer, IdentityStatus, OutreachNotice

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


def wechat_open(cfg: OutreachRules, ident: ChannelIdentity, now: datetime, wall: datetime | None = None) -> bool:
    """Can WeChat deliver to this identity now: inside the window (business and real clock), or by template."""
    if cfg.wechat_template_outside_window:
        return True
    within = timedelta(hours=cfg.wechat_window_hours)
    return _recent(ident, now, within) and _recent(ident, wall or now, within)


def _state(cfg: OutreachRules, channel: str, idents: list[ChannelIdentity], customer: Customer,
           now: datetime, wall: datetime | None = None) -> tuple[str, ChannelIdentity | None]:
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
        can = [i for i in usable if wechat_open(cfg, i, now, wall)]
    else:
        can = [i for i in usable if _recent(i, now, timedelta(minutes=cfg.web_connected_minutes))]
    recent = sorted(can, key=lambda i: local(i.last_inbound_at, now.tzinfo), reverse=True)
    return ("ok", recent[0]) if recent else (LATER, None)


def choose(db: Session, cfg: OutreachRules, customer: Customer, now: datetime,
           wall: datetime | None = None) -> Route | str:
    """The first channel, preferred one first, that can deliver now; else LATER / WRONG_PERSON / NO_CHANNEL."""
    idents = list(db.scalars(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer.id)
                             .order_by(ChannelIdentity.id).execution_options(populate_existing=True)))
    preferred = customer.preferred_channel.value
    order = [preferred] + [c for c in cfg.channel_order if c != preferred]
    why = []
    for channel in order:
        state, ident = _state(cfg, channel, [i for i in idents if i.channel.value == channel], customer, now, wall)
        if state == "ok":
            external = ident.external_id
            return Route(channel, f"{channel}:{external}", ident.id)
        why.append(state)
    if LATER in why:
        return LATER
    return WRONG_PERSON if WRONG_PERSON in why else NO_CHANNEL


def fixed_target(db: Session, cfg: OutreachRules, notice: OutreachNotice, now: datetime,
                 wall: datetime | None = None) -> Route | str | None:
    """The conversation a service notice answers in, if it can take it now; LATER for a WeChat
    conversation whose window is closed (no template), None when it cannot take it at all."""
    conversation = notice.payload.get("conversation")
    if not conversation:
        return None
    channel, _, external = conversation.partition(":")
    ident = db.scalar(select(ChannelIdentity).where(ChannelIdentity.channel == Channel(channel),
                                                    ChannelIdentity.external_id == external)
                      .execution_options(populate_existing=True))
    if ident is not None and (ident.status != IdentityStatus.active or ident.opted_out):
        return None
    if channel == Channel.wechat.value and (ident is None or not wechat_open(cfg, ident, now, wall)):
        return LATER  # WeChat would send nothing (the channel drops unknown openids)
    return Route(channel, conversation, ident.id if ident else None)


def route(db: Session, cfg: OutreachRules, notice: OutreachNotice, now: datetime,
          wall: datetime | None = None) -> Route | str:
    """``wall``: the real time (Outreach.wall) for the WeChat window; None: ``now``."""
    target = fixed_target(db, cfg, notice, now, wall)
    if isinstance(target, Route):
        return target
    if notice.customer_id is None:
        return target or NO_CHANNEL
    chosen = choose(db, cfg, fresh(db, Customer, notice.customer_id), now, wall)
    if target == LATER and chosen in (NO_CHANNEL, WRONG_PERSON):
        return LATER  # the conversation's WeChat window may open again (the borrower writes)
    return chosen
