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

from backend.core.errors import AppError
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


class TwilioSender:
    """Twilio Programmable SMS. ``api_base`` points the real client at another host (a test fake)."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, from_number: str, api_base: str | None = None) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        class _Rebased(TwilioHttpClient):
            def request(self, method, url, *args, **kwargs):
                return super().request(method, url.replace("https://api.twilio.com", api_base.rstrip("/")), *args, **kwargs)

        self.client = Client(account_sid, auth_token, http_client=_Rebased(timeout=10) if api_base else None)
        self.from_number = from_number

    def send(self, to: str, body: str) -> str:
        return self.client.messages.create(to=to, from_=self.from_number, body=body).status


class NumberOptedOut(AppError):
    def __init__(self) -> None:
        super().__init__(409, "number_opted_out", "该号码已退订短信，不能发送", "The number has opted out of SMS")


def segments(text: str, limit: int = 70) -> list[str]:
    """Split a Chinese message at sentence ends into parts of at most ``limit`` UCS-2 characters
    (one SMS segment each), so no part is cut mid-sentence unless a sentence is longer than that."""
    pieces = re.findall(r"[^。！？!?；;\n]+[。！？!?；;\n]*", text) or [text]
    parts: list[str] = []
    current = ""
    for piece in pieces:
        piece = piece.strip()
        while len(piece.encode("utf-16-le")) // 2 > limit:
            head, piece = piece[:limit], piece[limit:]
            if current:
                parts.append(current)
                current = ""
            parts.append(head)
        if len((current + piece).encode("utf-16-le")) // 2 > limit:
            parts.append(current)
            current = piece
        else:
            current += piece
    if current:
        parts.append(current)
    return [p for p in parts if p]


def to_e164(phone: str) -> str:
    return phone if phone.startswith("+") else "+86" + phone


def send_sms(db: Session, sender: SmsSender, phone: str, body: str, purpose: str) -> int:
    """Refuses an opted-out number before the provider is called; logs the message masked."""
    from .channels import is_opted_out

    if is_opted_out(db, to_e164(phone)):
        raise NumberOptedOut()
    parts = segments(body)
    for part in parts:
        status = sender.send(to_e164(phone), part)
        db.add(SmsMessage(
            to_masked=mask_phone(phone), to_hash=hashlib.sha256(to_e164(phone).encode()).hexdigest(),
            body=re.sub(r"\d{6}", "******", part), purpose=purpose, provider=sender.name, status=status,
        ))
    return len(parts)
