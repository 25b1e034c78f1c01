"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from backend.core.config import ROOT
from backend.db import make_engine
from backend.models import Base

CORE_TABLES = {"customers", "channel_identities", "loans", "instalments", "payments", "audit_log"}


def _head() -> str:
    return ScriptDirectory.from_config(Config(str(ROOT / "backend" / "alembic.ini"))).get_current_head()


def test_migrated_database_is_at_head_with_every_model_table(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == _head()
            tables = set(inspect(conn).get_table_names())
        assert CORE_TABLES <= tables
        # every table a model declares exists, and nothing else (apart from Alembic's own)
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


def test_models_and_migrations_do_not_drift(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []
    finally:
        engine.dispose()


def test_money_columns_are_integers_of_cents(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            cols = {c["name"]: c["type"] for c in inspect(conn).get_columns("instalments")}
        for name in ("principal", "interest", "fee", "paid_principal", "paid_interest", "paid_fee",
                     "penalty_charged", "paid_penalty"):
            assert "INT" in str(cols[name]).upper(), (name, cols[name])
    finally:
        engine.dispose()
