"""Shared fixtures for the backend tests.

* ``db_url``: a freshly migrated database (real Alembic migrations), once on SQLite and once on
  PostgreSQL (127.0.0.1:5432, user postgres). One database per test module; the PostgreSQL
  parameter is skipped only if the server cannot be reached.
* ``app`` / ``client``: the real FastAPI app from ``create_app`` with a pinned business date and a
  Rasa URL where nothing listens (tests of what is sent to Rasa use fake_rasa.FakeRasa).
* ``book``: inserts customers, identities and loans (schedules from money.amortize) straight
  through the app's sessionmaker (see testkit.Book); ``empty_book`` first empties every borrower,
  loan and outreach table (outreach tests plan over the whole book).
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from backend.cli import migrate  # noqa: E402
from backend.core.config import Settings  # noqa: E402
from backend.main import create_app  # noqa: E402
from testkit import BACKEND_API_KEYS, TODAY, Book, StaffDesk, wipe  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


# --------------------------------------------------------------------------- databases

def _pg_admin():
    return psycopg.connect(PG_ADMIN, autocommit=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'loan.db'}"
        migrate(url)
        yield url
        return

    try:
        admin = _pg_admin()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {exc}")
    name = f"loan_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = PG_URL.format(name=name)
        migrate(url)
        yield url
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Nothing listens on port 9: a test that does not bring its own Rasa (fake_rasa) never reaches a real one.
UNREACHABLE_RASA = "http://127.0.0.1:9"


def make_settings(url: str, frozen: str = TODAY.isoformat()) -> Settings:
    return Settings(DATABASE_URL=url, BACKEND_API_KEYS=BACKEND_API_KEYS, APP_FROZEN_DATE=frozen,
                    RASA_URL=UNREACHABLE_RASA, RASA_API_TOKEN="unreachable")


@pytest.fixture(scope="module")
def app(db_url):
    application = create_app(make_settings(db_url))
    application.state.outbox_poll_seconds = 0  # no outbox thread: tests deliver with worker.run_once(app)
    yield application
    StaffDesk.of(application).__exit__(None, None, None)
    application.state.engine.dispose()


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def desk(app) -> StaffDesk:
    """Staff decisions through the console (testkit.StaffDesk)."""
    return StaffDesk.of(app)


@pytest.fixture(scope="module")
def book(app) -> Book:
    return Book(app.state.sessionmaker)


@pytest.fixture
def empty_book(app, book) -> Book:
    """The module's database without any borrower, loan or outreach row: for tests that plan over the
    whole book (outreach) and must see only their own data."""
    wipe(app.state.sessionmaker)
    return book
