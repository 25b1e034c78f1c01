"""The demo book (backend.demo_data.generate): realistic, internally consistent and deterministic.

SQLite only (generation is the slow part and is database-independent).
"""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from backend.cli import migrate
from backend.core.clock import SHANGHAI
from backend.core.config import ROOT, Settings, load_rules
from backend.db import make_engine, make_sessionmaker
from backend.demo_data import generate
from backend.main import create_app
from backend.models import Channel, Customer, Loan, LoanStatus
from backend.services.ledger import position
from testkit import BACKEND_API_KEYS, HEADERS, id_checksum

AS_OF = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
SEED = 20261122
COUNT = 200
RULES = load_rules(ROOT / "config" / "business.yml")


def _generate(url: str):
    migrate(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        book = generate(db, RULES, count=COUNT, seed=SEED, as_of=AS_OF, now=NOW)
        db.commit()
    return engine, book


def _snapshot(engine):
    with make_sessionmaker(engine)() as db:
        customers = db.scalars(
            select(Customer).order_by(Customer.id).options(
                selectinload(Customer.identities),
                selectinload(Customer.loans).selectinload(Loan.instalments),
                selectinload(Customer.loans).selectinload(Loan.payments),
            )
        ).all()
        db.expunge_all()
    return customers


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    engine_a, book_a = _generate(f"sqlite:///{base / 'a.db'}")
    engine_b, book_b = _generate(f"sqlite:///{base / 'b.db'}")
    a, b = _snapshot(engine_a), _snapshot(engine_b)
    yield {"url": f"sqlite:///{base / 'a.db'}", "a": a, "b": b, "book_a": book_a, "book_b": book_b}
    engine_a.dispose()
    engine_b.dispose()


def loans_of(customers):
    return [loan for c in customers for loan in c.loans]


def test_id_checksum_helper_is_right():
    # the well-known GB 11643 example number ends in X
    assert id_checksum("11010519491231002") == "X"
    # the test's implementation and the generator's agree on every check value
    import random

    from backend.demo_data import id_checksum as generator_checksum
    rng = random.Random(1)
    samples = [f"{rng.randrange(10**17):017d}" for _ in range(500)]
    assert {id_checksum(s) for s in samples} == set("0123456789X")
    assert all(id_checksum(s) == generator_checksum(s) for s in samples)


def test_at_least_200_customers_with_chinese_names(demo):
    customers = demo["a"]
    assert len(customers) >= 200
    assert demo["book_a"].customers == len(customers)
    for c in customers:
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", c.name), c.name


def test_mobiles_are_unique_and_valid(demo):
    phones = [c.phone for c in demo["a"]]
    assert len(set(phones)) == len(phones)
    for p in phones:
        assert re.fullmatch(r"1[3-9]\d{9}", p), p
    # each borrower is reachable by SMS at that number, and has a web identity
    for c in demo["a"]:
        channels = {(i.channel, i.external_id) for i in c.identities}
        assert (Channel.sms, "+86" + c.phone) in channels
        assert Channel.web in {ch for ch, _ in channels}


def test_id_numbers_have_valid_checksums(demo):
    for c in demo["a"]:
        n = c.id_number
        assert re.fullmatch(r"\d{17}[\dX]", n), n
        assert n[17] == id_checksum(n[:17]), n
        birth = date(int(n[6:10]), int(n[10:12]), int(n[12:14]))  # a real calendar date
        assert date(1960, 1, 1) <= birth <= date(2008, 11, 23)


def test_loans_in_every_status(demo):
    loans = loans_of(demo["a"])
    assert len(loans) == demo["book_a"].loans
    statuses = {loan.status for loan in loans}
    assert {LoanStatus.active, LoanStatus.overdue, LoanStatus.settled, LoanStatus.restructured} <= statuses
    counts = {s: sum(1 for loan in loans if loan.status == s) for s in LoanStatus}
    assert counts[LoanStatus.overdue] >= 10
    assert counts[LoanStatus.settled] >= 5


def test_overdue_loans_are_1_to_90_days_past_due(demo):
    overdue = [loan for loan in loans_of(demo["a"]) if loan.status == LoanStatus.overdue]
    assert overdue
    dpds = [position(loan, RULES, AS_OF).days_past_due for loan in overdue]
    assert all(1 <= d <= 90 for d in dpds), sorted(dpds)
    assert len(set(dpds)) > 5  # a spread, not one value


def test_stored_statuses_agree_with_the_ledger(demo):
    for loan in loans_of(demo["a"]):
        pos = position(loan, RULES, AS_OF)
        if loan.status == LoanStatus.restructured:
            continue
        assert (loan.status == LoanStatus.overdue) == (pos.days_past_due > 0), loan.loan_no
        assert (loan.status == LoanStatus.settled) == (pos.total_outstanding == 0), loan.loan_no
        if loan.status == LoanStatus.settled:
            assert loan.settled_on is not None and loan.settled_on < AS_OF


def test_payments_match_what_the_instalments_received(demo):
    n_payments = 0
    for loan in loans_of(demo["a"]):
        paid = sum(i.paid_principal + i.paid_interest + i.paid_fee + i.paid_penalty for i in loan.instalments)
        assert sum(p.amount for p in loan.payments) == paid, loan.loan_no
        assert sum(i.principal for i in loan.instalments) == loan.principal, loan.loan_no
        assert all(p.paid_on < AS_OF for p in loan.payments)
        n_payments += len(loan.payments)
    assert n_payments == demo["book_a"].payments > 0


def test_segments_are_computed(demo):
    customers = demo["a"]
    assert all(c.segment_computed_at is not None for c in customers)
    assert {c.risk_tier for c in customers} == {"low", "medium", "high"}
    assert {"basic", "standard"} <= {c.value_tier for c in customers}


def test_generation_is_deterministic(demo):
    a, b = demo["a"], demo["b"]
    assert [c.name for c in a] == [c.name for c in b]
    assert [c.phone for c in a] == [c.phone for c in b]
    assert [c.id_number for c in a] == [c.id_number for c in b]
    assert [(loan.loan_no, loan.principal, loan.annual_rate, loan.status) for loan in loans_of(a)] == [
        (loan.loan_no, loan.principal, loan.annual_rate, loan.status) for loan in loans_of(b)]
    assert [sorted(i.external_id for i in c.identities) for c in a] == [
        sorted(i.external_id for i in c.identities) for c in b]
    assert demo["book_a"] == demo["book_b"]


def test_demo_book_is_served_by_the_api(demo):
    app = create_app(Settings(DATABASE_URL=demo["url"], BACKEND_API_KEYS=BACKEND_API_KEYS,
                              APP_FROZEN_DATE=AS_OF.isoformat()))
    overdue_customer = next(c for c in demo["a"] if any(loan.status == LoanStatus.overdue for loan in c.loans))
    loan = next(loan for loan in overdue_customer.loans if loan.status == LoanStatus.overdue)
    try:
        with TestClient(app) as client:
            ident = client.get(f"/api/v1/identities/sms/+86{overdue_customer.phone}", headers=HEADERS).json()
            assert ident["customer_id"] == overdue_customer.id
            assert ident["customer"]["name"] == overdue_customer.name
            summary = client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS).json()
            assert summary["status"] == "overdue"
            assert summary["days_past_due"] == position(loan, RULES, AS_OF).days_past_due
    finally:
        app.state.engine.dispose()


def test_settled_loans_carry_the_day_of_their_last_payment(demo):
    settled = [loan for loan in loans_of(demo["a"]) if loan.status == LoanStatus.settled]
    assert settled
    for loan in settled:
        assert loan.settled_on == max(p.paid_on for p in loan.payments), loan.loan_no
    owner = next(c for c in demo["a"] if any(loan.status == LoanStatus.settled for loan in c.loans))
    loan = next(loan for loan in owner.loans if loan.status == LoanStatus.settled)
    app = create_app(Settings(DATABASE_URL=demo["url"], BACKEND_API_KEYS=BACKEND_API_KEYS,
                              APP_FROZEN_DATE=AS_OF.isoformat()))
    try:
        with TestClient(app) as client:
            loans = client.get(f"/api/v1/customers/{owner.id}/loans", headers=HEADERS).json()
            shown = next(x for x in loans if x["id"] == loan.id)
            assert (shown["status"], shown["settled_on"]) == ("settled", loan.settled_on.isoformat())
    finally:
        app.state.engine.dispose()
