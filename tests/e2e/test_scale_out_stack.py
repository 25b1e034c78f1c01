"""The scale-out shape, chosen by configuration only: backend and Rasa tracker store on PostgreSQL,
Rasa's lock store on Redis (endpoints.scale.yml). Skipped only when those servers are unreachable."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from .conftest import reachable, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory):
    if not (reachable(5432) and reachable(6379)):
        pytest.skip("PostgreSQL (5432) or Redis (6379) not reachable on 127.0.0.1")
    import psycopg

    names = [f"la_e2e_{uuid.uuid4().hex[:8]}", f"la_e2e_tracker_{uuid.uuid4().hex[:8]}"]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        for n in names:
            conn.execute(f'CREATE DATABASE "{n}"')
    try:
        yield from running_stack(tmp_path_factory.mktemp("pgstack"), {
            "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{names[0]}",
            "RASA_TRACKER_URL": f"postgresql://postgres@127.0.0.1:5432/{names[1]}",
            "RASA_ENDPOINTS": "endpoints.scale.yml",
            "RASA_LOCK_STORE_URL": "redis://127.0.0.1:6379/5",
        })
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            for n in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def test_balance_answer_and_conversation_stored_in_postgres(pg_stack):
    import psycopg

    (loan,) = [l for l in pg_stack.backend("/customers/1/loans").json()][:1]
    sender = pg_stack.web_sender(1)
    reply = pg_stack.texts(sender, "我还欠多少钱")
    assert f"¥{Decimal(loan['total_outstanding']):,.2f}" in reply
    tracker_db = pg_stack.env["RASA_TRACKER_URL"]
    with psycopg.connect(tracker_db) as conn:
        (n,) = conn.execute("SELECT count(*) FROM events WHERE sender_id = %s", (sender,)).fetchone()
    assert n > 0
