"""Alembic environment: migrates the database named by DATABASE_URL (or the -x url=... override)."""
from __future__ import annotations

from alembic import context

from backend.core.config import get_settings
from backend.db import make_engine
from backend.models import Base

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or get_settings().database_url


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
