"""Sending SMS. The sender is an interface so a domestic provider can sit beside Twilio.

The backend records every message in sms_messages with the number masked and codes blanked;
the text itself only goes to the provider.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from backend.models import SmsMessage

from .masking import mask_phone


class SmsSender(Protocol):
    name: str

    def send(self, to: str, body: str) -> str:
        """Deliver ``body`` to E.164 number ``to``; returns the provider's status."""


class OutboxSender:
    """Development provider: appends messages to a JSON-lines file instead of a network call."""

    name = "outbox"

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, to: str, body: str) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"to": to, "body": body, "at": datetime.now().isoformat()}, ensure_ascii=False) + "\n")
        return "queued"


def to_e164(phone: str) -> str:
    return phone if phone.startswith("+") else "+86" + phone


def send_sms(db: Session, sender: SmsSender, phone: str, body: str, purpose: str) -> None:
    status = sender.send(to_e164(phone), body)
    db.add(SmsMessage(
        to_masked=mask_phone(phone), to_hash=hashlib.sha256(to_e164(phone).encode()).hexdigest(),
        body=re.sub(r"\d{6}", "******", body), purpose=purpose, provider=sender.name, status=status,
    ))
