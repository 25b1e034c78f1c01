"""Sending SMS. The sender is an interface so a domestic provider can sit beside Twilio.

The backend records every message in sms_messages with the number masked and codes blanked;
the text itself only goes to the provider.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

import texts
from backend.core.errors import AppError
from backend.models import SmsMessage

from .masking import mask_numbers, mask_phone


class SmsSender(Protocol):
    name: str

    def send(self, to: str, body: str) -> str:
        """Deliver ``body`` to E.164 number ``to``; returns the provider's status."""


# A one-time code: six digits on their own, or 4-8 digits shortly after 验证码 / 校验码 / 动态码 / code.
_CODE = re.compile(r"(?<!\d)\d{6}(?!\d)|(?<=验证码|校验码|动态码)([^\d\n]{0,6})\d{4,8}(?!\d)"
                   r"|(?i:(?<=code)(?=[^\d\n]{0,6}\d{4,8}(?!\d)))([^\d\n]{0,6})\d{4,8}(?!\d)")


def mask_codes(text: str) -> str:
    """「验证码是123456」 -> 「验证码是******」: one-time codes out of a message kept for reading later."""
    return _CODE.sub(lambda m: (m.group(1) or m.group(2) or "") + "******", text)


class OutboxSender:
    """Development provider: appends messages to a JSON-lines file instead of a network call.

    The file is not a safe place for personal data: the number is written masked (138****5678) and
    one-time codes as ******, unless ``show_codes`` (SMS_OUTBOX_SHOW_CODES=true: local demos and the
    end-to-end tests, which read the codes there). ``show_codes`` None: the process settings."""

    name = "outbox"

    def __init__(self, path: Path, show_codes: bool | None = None) -> None:
        self.path = path
        if show_codes is None:
            from backend.core.config import get_settings

            show_codes = get_settings().sms_outbox_show_codes
        self.show_codes = show_codes

    def send(self, to: str, body: str) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.show_codes:
            to, body = mask_phone(to), mask_codes(mask_numbers(body))
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"to": to, "body": body, "at": datetime.now().isoformat()}, ensure_ascii=False) + "\n")
        return "queued"


# Twilio's error for a recipient who replied STOP to this sender (it blocks further messages itself).
TWILIO_UNSUBSCRIBED = 21610


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
        # The client logs every request's headers at INFO; one line per SMS is noise, not audit.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
        self.from_number = from_number

    def send(self, to: str, body: str) -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            return self.client.messages.create(to=to, from_=self.from_number, body=body).status
        except TwilioRestException as exc:
            if exc.code == TWILIO_UNSUBSCRIBED:
                raise NumberOptedOut() from None
            raise SmsProviderError() from None
        except (TwilioException, OSError):  # network errors (requests' exceptions are OSErrors)
            raise SmsProviderError() from None


class NumberOptedOut(AppError):
    def __init__(self) -> None:
        super().__init__(409, "number_opted_out", texts.text("errors.sms.number_opted_out"),
                         "The number has opted out of SMS")


class SmsProviderError(AppError):
    def __init__(self) -> None:
        super().__init__(502, "sms_provider_error", texts.text("errors.sms.provider_error"),
                         "The SMS provider did not accept the message")


SENTENCE_ENDS = "。！？!?；;\n"
# Where a sentence longer than one segment may be cut: after a comma, enumeration mark, colon,
# closing bracket or space, so that figures such as ¥12,345.67 are never cut in two.
SOFT_BREAKS = "，、：:）)」』 \u3000"


def _units(text: str) -> int:
    """Length in UCS-2 code units, as the carrier counts a segment (astral characters count 2)."""
    return len(text.encode("utf-16-le")) // 2


def _cut(piece: str, limit: int) -> list[str]:
    """Split one sentence longer than ``limit`` at its last soft break that fits, else hard."""
    chunks: list[str] = []
    while _units(piece.rstrip("\n")) > limit:
        n = units = 0
        for ch in piece:
            units += 2 if ord(ch) > 0xFFFF else 1
            if units > limit:
                break
            n += 1
        soft = max(piece.rfind(c, 0, n) for c in SOFT_BREAKS)
        if soft > 0:
            n = soft + 1
        chunks.append(piece[:n].strip())
        piece = piece[n:].lstrip()
    if piece.strip():
        chunks.append(piece)
    return chunks


def segments(text: str, limit: int = 70) -> list[str]:
    """Split a Chinese message at sentence ends into parts of at most ``limit`` UCS-2 characters
    (one SMS segment each). Sentences are packed whole; line breaks inside a part are kept; a
    sentence longer than a segment is cut after a comma or space rather than inside a figure."""
    pieces = re.findall(f"[^{SENTENCE_ENDS}]+[{SENTENCE_ENDS}]*", text) or [text]
    parts: list[str] = []
    current = ""
    for raw in pieces:
        piece = raw.strip()
        if not piece:
            continue
        if raw.rstrip(" \t\r\u3000").endswith("\n"):
            piece += "\n"  # keep the line break (numbered choices, one per line)
        for chunk in _cut(piece, limit):
            if current and _units((current + chunk).rstrip("\n")) > limit:
                parts.append(current)
                current = chunk
            else:
                current += chunk
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


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
