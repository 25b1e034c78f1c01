"""Deliver one outreach notice to one conversation now, the way the dispatcher words and sends it
(backend.services.outreach.dispatcher.compose: the identity question first where the rules ask for
it, else the message with today's figures; the channel's sender appends it through Rasa's HTTP API),
without the contact rules (window, caps): what the end-to-end tests used to do with trigger_intent.

    python -m tests.e2e.deliver_notice <notice_id> <conversation>    (prints {"text": ...} as JSON)

Run with the stack's environment (its DATABASE_URL, RASA_URL, keys).
"""
from __future__ import annotations

import json
import sys

from sqlalchemy import select

from backend.core.clock import Clock
from backend.core.config import effective_rules, get_settings, load_rules
from backend.db import make_engine, make_sessionmaker
from backend.models import OutboxStatus, OutreachNotice
from backend.services.outreach import dispatcher, outbox
from backend.services.outreach.context import Outreach
from backend.services.outreach.sender import RasaSender
from backend.services.rasa_api import RasaClient


def main(notice_id: str, conversation: str) -> dict:
    settings = get_settings()
    rules = effective_rules(load_rules(settings.business_rules_path), settings)
    clock = Clock.from_settings(settings)
    sender = RasaSender(RasaClient(settings.rasa_url, settings.rasa_api_token))
    ctx = Outreach(rules, clock.now, sender, holder="e2e", clock_wall=clock.wall, clock_today=clock.today)
    channel = conversation.partition(":")[0]
    with make_sessionmaker(make_engine(settings.database_url))() as db:
        notice = db.scalar(select(OutreachNotice).where(OutreachNotice.notice_id == notice_id))
        rendered = dispatcher.compose(db, ctx, notice, channel, sender.look(conversation).slots)
        if rendered is None:
            return {"text": ""}
        message = outbox.queue(db, notice, conversation, channel, rendered.text, rendered.events, ctx.now())
        outbox.sending(db, message, conversation, channel, ctx.now())
        db.commit()
        result = sender.send(conversation, channel, rendered.text, rendered.events,
                             {"notice_id": notice.notice_id, "kind": notice.kind.value})
        outbox.finish(db, notice.id, OutboxStatus.sent if result.delivered else OutboxStatus.failed, ctx.now(),
                      result.error)
        db.commit()
        if not result.delivered:
            raise SystemExit(f"not delivered: {result.error or 'paused'}")
        return {"text": rendered.text}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2]), ensure_ascii=False))
