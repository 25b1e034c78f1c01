"""The end-to-end tests read and change the stack's SQLite database directly (the borrowers' phone and
ID numbers, channel ids, conversation ids with an SMS number). Those are stored encrypted or tokenised
(backend/core/crypto.py, migrations 0012 and 0013), so ``decrypting_views`` gives a test's connection
temporary views of the same names that show them in clear: ``SELECT phone FROM customers`` still
reads 13812345678 (temporary objects shadow the main tables for unqualified names). The connection
sends the tests' writes to those tables (``UPDATE customers SET preferred_channel ...``, ``INSERT INTO
outreach_notices ...``) to the real tables; a write of an encrypted column in plain SQL is refused
(it would store a number in clear). Test scaffolding only: the keys come from the stack's environment."""
from __future__ import annotations

import json
import re
import sqlite3

from backend.core.crypto import PiiCipher, detokenize_conversation

# table -> {column: how it is stored}; "enc": Fernet, "tok": a tokenised conversation, "tokjson": JSON
# whose top-level "conversation" is tokenised
PII_COLUMNS = {
    "customers": {"phone": "enc", "id_number": "enc"},
    "channel_identities": {"external_id": "enc"},
    "outreach_notices": {"conversation": "tok"},
    "complaint_tickets": {"conversation": "tok"},
    "otp_challenges": {"conversation": "tok"},
    "handoff_cases": {"conversation": "tok", "active_conversation": "tok"},
    "plan_requests": {"conversation": "tok"},
    "settlement_intents": {"conversation": "tok"},
    "audit_log": {"entity_id": "tok", "detail": "tokjson"},
}
_SHOW = {"enc": "pii_dec", "tok": "conv_detok", "tokjson": "conv_detok_json"}
_WRITE = re.compile(r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+(\w+)",
                    re.IGNORECASE)


def write_through(sql: str) -> str:
    """A write to a decrypted view goes to the table behind it (``main.<table>``)."""
    m = _WRITE.match(sql)
    if not m or m.group(1).lower() not in PII_COLUMNS:
        return sql
    table = m.group(1).lower()
    for column in PII_COLUMNS[table]:
        if re.search(rf"\b{column}\b", sql[m.end():], re.IGNORECASE):
            raise NotImplementedError(f"{table}.{column} is stored encrypted: change it through the backend, "
                                      "not in plain SQL")
    return sql[:m.start(1)] + "main." + sql[m.start(1):]


class PiiConnection(sqlite3.Connection):
    def execute(self, sql, parameters=(), /):
        return super().execute(write_through(sql), parameters)

    def executemany(self, sql, parameters, /):
        return super().executemany(write_through(sql), parameters)


def connect(path: str, env: dict[str, str]) -> sqlite3.Connection:
    return decrypting_views(sqlite3.connect(path, factory=PiiConnection), env)


def decrypting_views(conn: sqlite3.Connection, env: dict[str, str]) -> sqlite3.Connection:
    c = PiiCipher(env["PII_ENCRYPTION_KEY"], env["PII_HASH_KEY"])
    conn.create_function("pii_dec", 1, lambda v: None if v is None else c.decrypt(v), deterministic=True)
    conn.create_function("conv_detok", 1, lambda v: detokenize_conversation(v, c), deterministic=True)
    conn.create_function("conv_detok_json", 1, lambda v: _detok_json(v, c), deterministic=True)
    for table, pii in PII_COLUMNS.items():
        cols = [row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")]
        if not cols:
            continue
        shown = ", ".join(f"{_SHOW[pii[col]]}({col}) AS {col}" if col in pii else col for col in cols)
        conn.execute(f"CREATE TEMP VIEW IF NOT EXISTS {table} AS SELECT {shown} FROM main.{table}")
    return conn


def _detok_json(value, c: PiiCipher):
    """A JSON text with its top-level "conversation" in clear (other texts unchanged)."""
    if not isinstance(value, str) or '"conversation"' not in value:
        return value
    data = json.loads(value)
    if not isinstance(data, dict) or not isinstance(data.get("conversation"), str):
        return value
    clear = detokenize_conversation(data["conversation"], c)
    return value if clear == data["conversation"] else json.dumps({**data, "conversation": clear}, ensure_ascii=False)
