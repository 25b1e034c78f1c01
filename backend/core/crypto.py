"""Personal data at rest (PIPL Art. 51): field encryption and keyed lookup hashes.

* ``encrypt`` / ``decrypt``: Fernet (AES-128-CBC + HMAC-SHA256, random IV: the same number encrypts
  differently every time). ``PII_ENCRYPTION_KEY`` is one Fernet key or several, comma-separated: the
  first encrypts, every one decrypts (rotation: put the new key first, re-encrypt, drop the old one).
* ``lookup_hash``: HMAC-SHA256 with ``PII_HASH_KEY`` (hex, 64 characters). Equal values give equal
  hashes, so a row is found by its phone number without the number being stored in clear; without
  the key the hash cannot be reversed by trying every mobile number.
* ``EncryptedString``: the SQLAlchemy column type. Rows hold the Fernet token; Python code reads and
  writes the clear value. When the column has a lookup-hash column (``hash_column``), comparing it
  with a value (``Customer.phone == "13812345678"``, ``.in_([...])``, ``!=``) compares the hashes
  instead, so every query by phone goes through the hash without the caller knowing. Other
  comparisons (LIKE, <, >) on an encrypted column are refused: they would silently match nothing.
* ``HashedConversation``: a conversation id whose SMS part (a phone number) is kept as a keyed hash
  only ("sms:#<hash>"), for rows that count conversations and never reach one again.
* ``TokenizedConversation`` / ``TokenizedConversationJSON``: a conversation id whose SMS number is
  stored as a deterministic AES-SIV token ("sms:~<token>"; the web chat's sign-in id "weblogin:<phone>"
  likewise), for rows that must reach the conversation again (outreach notices, complaints, plan
  requests, settlement intents, handoff cases, verification challenges, the audit log); equality in
  SQL keeps working (equal numbers, equal tokens).

Keys come from the process settings (backend.core.config.Settings: environment, then .env). The
development defaults are published (.env.example) and listed in config.PUBLISHED_DEV_SECRETS.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import JSON, String, Text
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator


class PiiKeyError(RuntimeError):
    """A missing or malformed PII key, or a value the configured keys cannot decrypt."""


class PiiCipher:
    def __init__(self, encryption_keys: str, hash_key: str) -> None:
        keys = [k.strip() for k in (encryption_keys or "").split(",") if k.strip()]
        if not keys:
            raise PiiKeyError("PII_ENCRYPTION_KEY is empty: set one Fernet key (Fernet.generate_key())")
        if not (hash_key or "").strip():
            raise PiiKeyError("PII_HASH_KEY is empty: set a long random value")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError):
            raise PiiKeyError("PII_ENCRYPTION_KEY: each key must be 32 url-safe base64-encoded bytes "
                              "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
                              ) from None
        self._hash_key = hash_key.strip().encode()
        # Deterministic tokens (AES-SIV) under keys derived from the same Fernet keys.
        self._sivs = [AESSIV(HKDF(hashes.SHA256(), 64, salt=None, info=b"loan-assistant conversation token")
                             .derive(base64.urlsafe_b64decode(k))) for k in keys]

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise PiiKeyError("a stored personal field cannot be decrypted with PII_ENCRYPTION_KEY "
                              "(wrong key, or a clear value written past the encryption)") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt under the first key (key rotation)."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def tokenize(self, value: str) -> str:
        """Deterministic encryption (AES-SIV): equal values give equal tokens (url-safe base64)."""
        raw = self._sivs[0].encrypt(value.encode("utf-8"), None)
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def detokenize(self, token: str) -> str:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        for siv in self._sivs:
            try:
                return siv.decrypt(raw, None).decode("utf-8")
            except InvalidTag:
                continue
        raise PiiKeyError("a stored conversation token cannot be decrypted with PII_ENCRYPTION_KEY")

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@lru_cache
def cipher() -> PiiCipher:
    """The cipher of this process, from its settings (environment, then .env, then the dev defaults)."""
    from backend.core.config import get_settings

    s = get_settings()
    return PiiCipher(s.pii_encryption_key, s.pii_hash_key)


def encrypt(value: str) -> str:
    return cipher().encrypt(value)


def decrypt(token: str) -> str:
    return cipher().decrypt(token)


def lookup_hash(value: str) -> str:
    return cipher().lookup_hash(value)


HASH_LENGTH = 64  # hex HMAC-SHA256


def hash_default(source: str):
    """A column default computing the lookup hash of column ``source`` from the same INSERT's values:
    rows inserted with Core (bulk inserts) get their hash too. ORM objects set it themselves
    (see the models' validators), so that updates keep it right."""

    def default(context):
        value = context.get_current_parameters().get(source)
        return None if value is None else lookup_hash(str(value))

    return default


_REFUSED = {
    operators.like_op, operators.not_like_op, operators.ilike_op, operators.not_ilike_op,
    operators.contains_op, operators.startswith_op, operators.endswith_op,
    operators.lt, operators.le, operators.gt, operators.ge, operators.between_op,
}


class EncryptedString(TypeDecorator):
    """A string stored encrypted (Fernet token, TEXT). ``length`` is the longest clear value (what
    String(length) was before; callers read it as ``column.type.length``). ``hash_column`` names
    the lookup-hash column of the same table that equality comparisons go through."""

    impl = Text
    cache_ok = True

    def __init__(self, length: int | None = None, hash_column: str | None = None) -> None:
        super().__init__()
        self.length = length
        self.hash_column = hash_column

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = str(value)
        if self.length is not None and len(value) > self.length:
            raise ValueError(f"value longer than {self.length} characters")
        return cipher().encrypt(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return cipher().decrypt(value)

    class comparator_factory(TypeDecorator.Comparator):  # noqa: N801 - SQLAlchemy's name
        def operate(self, op, *other, **kwargs):
            hash_column = getattr(self.type, "hash_column", None)
            if op in (operators.eq, operators.ne, operators.in_op, operators.not_in_op) and other \
                    and other[0] is not None:
                if not hash_column:
                    raise TypeError("an encrypted column without a lookup hash cannot be compared")
                target = self.expr.table.c[hash_column]
                value = other[0]
                if op in (operators.in_op, operators.not_in_op):
                    hashed = [lookup_hash(str(v)) for v in value]
                else:
                    hashed = lookup_hash(str(value))
                return op(target, hashed, **kwargs)
            if op in _REFUSED:
                raise TypeError("an encrypted column can only be compared for equality (through its lookup hash)")
            return super().operate(op, *other, **kwargs)


# The SMS part of a conversation id: an E.164 or bare mobile number (not an anonymised placeholder).
_NUMBER = re.compile(r"\+?\d{5,20}")
# Channels of conversation ids whose external part is a phone number and that TokenizedConversation
# tokenises: SMS, and the web chat's sign-in ("weblogin:13812345678", verification codes).
TOKENISED_CHANNELS = ("sms", "weblogin")


def _sms_number(value: str | None) -> str | None:
    if value is None or not value.startswith("sms:"):
        return None
    rest = value.removeprefix("sms:")
    return rest if _NUMBER.fullmatch(rest) else None


def hash_conversation(value: str | None, c: PiiCipher | None = None) -> str | None:
    """``sms:+8613812345678`` -> ``sms:#<lookup hash>``; other values unchanged."""
    number = _sms_number(value)
    return value if number is None else "sms:#" + (c or cipher()).lookup_hash(number)


def tokenize_conversation(value: str | None, c: PiiCipher | None = None) -> str | None:
    """``sms:+8613812345678`` -> ``sms:~<token>`` (deterministic encryption of the number: equal
    conversations stay equal in SQL, the number comes back with the key), the same for the other
    TOKENISED_CHANNELS (``weblogin:13812345678`` -> ``weblogin:~<token>``); other values unchanged."""
    if value is None:
        return None
    channel, sep, rest = value.partition(":")
    if not sep or channel not in TOKENISED_CHANNELS or not _NUMBER.fullmatch(rest):
        return value
    return f"{channel}:~" + (c or cipher()).tokenize(rest)


def detokenize_conversation(value: str | None, c: PiiCipher | None = None) -> str | None:
    if value is None:
        return None
    channel, sep, rest = value.partition(":")
    if not sep or channel not in TOKENISED_CHANNELS or not rest.startswith("~"):
        return value
    return f"{channel}:" + (c or cipher()).detokenize(rest.removeprefix("~"))


class HashedConversation(TypeDecorator):
    """A Rasa sender id "<channel>:<external id>" whose SMS number is stored as "sms:#<lookup hash>"
    (equal conversations stay equal, the number is gone: for rows that count conversations and never
    reach one again). WeChat openids, web ids and placeholders are kept as they are; reading returns
    what is stored. Comparisons with a clear id work (the compared value is hashed the same way)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return hash_conversation(value)

    def process_result_value(self, value, dialect):
        return value


class TokenizedConversation(TypeDecorator):
    """A Rasa sender id whose SMS number is stored tokenised, "sms:~<token>" (AES-SIV, deterministic),
    for rows that must reach the conversation again (outreach notices: the delivery check in Rasa's
    tracker). Python code reads the clear id; equality and IN work in SQL; so does a LIKE on what is
    not a number (the channel prefix, placeholders)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return tokenize_conversation(value)

    def process_result_value(self, value, dialect):
        return detokenize_conversation(value)


class TokenizedConversationJSON(TypeDecorator):
    """JSON whose top-level ``conversation`` value is stored as TokenizedConversation stores it."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if isinstance(value, dict) and isinstance(value.get("conversation"), str):
            value = {**value, "conversation": tokenize_conversation(value["conversation"])}
        return value

    def process_result_value(self, value, dialect):
        if isinstance(value, dict) and isinstance(value.get("conversation"), str):
            value = {**value, "conversation": detokenize_conversation(value["conversation"])}
        return value
