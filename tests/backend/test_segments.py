"""Customer segments: the rules in config/business.yml and the daily recompute endpoint."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backend.core.config import ROOT, load_rules
from backend.models import Loan, Customer
from backend.services.segments import SegmentMetrics, pick_tier
from testkit import HEADERS, SCHEDULER

RULES = load_rules(ROOT / "config" / "business.yml")


# --------------------------------------------------------------------------- rules from the config

@pytest.mark.parametrize("dpd, episodes, tier", [
    (0, 0, "low"),
    (1, 0, "medium"),
    (1, 1, "medium"),
    (10, 1, "medium"),
    (30, 2, "medium"),
    (31, 1, "high"),
    (90, 3, "high"),
    (0, 1, "medium"),  # repaid late once in the last 12 months
    (0, 2, "medium"),
    (0, 3, "high"),  # three late instalments
])
def test_risk_tier_rules(dpd, episodes, tier):
    assert pick_tier(RULES.risk_tier_rules, SegmentMetrics(dpd, episodes, Decimal("5000"))) == tier


@pytest.mark.parametrize("outstanding, episodes, tier", [
    ("100000", 0, "vip"),
    ("250000.50", 0, "vip"),
    ("99999.99", 0, "standard"),
    ("100000", 1, "standard"),  # a single overdue episode loses vip
    ("10000", 0, "standard"),
    ("10000", 5, "standard"),
    ("9999.99", 0, "basic"),
    ("0", 0, "basic"),
])
def test_value_tier_rules(outstanding, episodes, tier):
    assert pick_tier(RULES.value_tier_rules, SegmentMetrics(0, episodes, Decimal(outstanding))) == tier


def test_config_rule_order():
    assert [r.tier for r in RULES.risk_tier_rules] == ["high", "medium", "low"]
    assert [r.tier for r in RULES.value_tier_rules] == ["vip", "standard", "basic"]


# --------------------------------------------------------------------------- recompute over the API

@pytest.fixture(scope="module")
def population(book):
    """Customers built to land in known tiers on 2026-11-23. Loans are inserted with the stored
    status left at 'active' (refresh=False) so the job's status refresh is visible too."""
    out = {}

    def add(key, loans, name="测试客户"):
        c = book.customer(name)
        out[key] = (c, [book.loan(c.id, refresh=False, **spec) for spec in loans])

    # instalment 1 due 2026-10-09 unpaid: 45 days past due
    add("dpd45", [dict(principal="6000", rate="0.12", term=6, start=date(2026, 9, 9))])
    # first unpaid due 2026-10-23: 31 days; 2026-10-24: 30 days
    add("dpd31", [dict(principal="6000", rate="0.12", term=6, start=date(2026, 9, 23))])
    add("dpd30", [dict(principal="6000", rate="0.12", term=6, start=date(2026, 9, 24))])
    # 10 days past due on 20000: medium risk, standard value
    add("dpd10", [dict(principal="20000", rate="0.12", term=6, start=date(2026, 9, 13), paid=1)])
    # 150000, nothing due yet: low, vip
    add("vip", [dict(principal="150000", rate="0.0720", term=36, start=date(2026, 11, 1))])
    # exactly 100000 outstanding: vip
    add("vip_edge", [dict(principal="100000", rate="0.0720", term=36, start=date(2026, 11, 1))])
    add("below_vip", [dict(principal="99999.99", rate="0.0720", term=36, start=date(2026, 11, 1))])
    # 150000 but one instalment repaid 4 days late this year: medium, standard (not vip)
    add("vip_late_once", [dict(principal="150000", rate="0.0720", term=36, start=date(2026, 6, 1), paid=5,
                               late_days={3: 4})])
    # three late repayments in the last 12 months, nothing overdue now: high
    add("late3", [dict(principal="5000", rate="0.12", term=12, start=date(2026, 5, 23), paid=5,
                       late_days={1: 3, 2: 5, 4: 2})])
    # late once, but more than 12 months ago (settled): low
    add("late_long_ago", [dict(principal="3000", rate="0.12", term=3, start=date(2025, 1, 10), paid=3,
                               late_days={1: 10})])
    add("no_loans", [])
    # worst loan decides days past due; outstanding principal adds up across loans
    add("two_loans", [dict(principal="60000", rate="0.0720", term=12, start=date(2026, 11, 5)),
                      dict(principal="50000", rate="0.12", term=6, start=date(2026, 10, 1))])
    return out


EXPECTED = {
    "dpd45": ("high", "basic"),
    "dpd31": ("high", "basic"),
    "dpd30": ("medium", "basic"),
    "dpd10": ("medium", "standard"),
    "vip": ("low", "vip"),
    "vip_edge": ("low", "vip"),
    "below_vip": ("low", "standard"),
    "vip_late_once": ("medium", "standard"),
    "late3": ("high", "basic"),
    "late_long_ago": ("low", "basic"),
    "no_loans": ("low", "basic"),
    # the 50000 loan's first instalment (due 2026-11-01) is 22 days overdue -> medium; 110000 outstanding
    # but with an overdue episode -> standard, not vip
    "two_loans": ("medium", "standard"),
}


def test_recompute_updates_every_customer(client, app, book, population):
    # before the job: defaults, and stored loan statuses not yet refreshed
    for key, (c, loans) in population.items():
        body = client.get(f"/api/v1/customers/{c.id}", headers=HEADERS).json()
        assert (body["risk_tier"], body["value_tier"]) == ("low", "basic"), key
    dpd45_loan = population["dpd45"][1][0]
    with app.state.sessionmaker() as db:
        assert db.get(Loan, dpd45_loan.id).status.value == "active"  # stored status is stale...
    # ...but the API derives it from today's arrears.
    assert client.get(f"/api/v1/loans/{dpd45_loan.id}", headers=HEADERS).json()["status"] == "overdue"

    audit_before = len(book.audit_rows("segments.recomputed"))
    resp = client.post("/api/v1/segments/recompute", headers=SCHEDULER)
    assert resp.status_code == 200, resp.text
    counts = resp.json()

    expected = EXPECTED
    got = {}
    for key, (c, _) in population.items():
        body = client.get(f"/api/v1/customers/{c.id}", headers=HEADERS).json()
        got[key] = (body["risk_tier"], body["value_tier"])
    assert got == expected

    # counts per risk tier, over every customer in the database
    with app.state.sessionmaker() as db:
        n_customers = db.scalar(select(func.count()).select_from(Customer))
        assert all(c.segment_computed_at is not None for c in db.scalars(select(Customer)))
    assert n_customers == len(population)
    tally: dict[str, int] = {}
    for risk, _ in expected.values():
        tally[f"risk:{risk}"] = tally.get(f"risk:{risk}", 0) + 1
    assert counts == tally

    # loan statuses were refreshed by the job
    assert client.get(f"/api/v1/loans/{dpd45_loan.id}", headers=HEADERS).json()["status"] == "overdue"
    vip_loan = population["vip"][1][0]
    assert client.get(f"/api/v1/loans/{vip_loan.id}", headers=HEADERS).json()["status"] == "active"
    settled = population["late_long_ago"][1][0]
    assert client.get(f"/api/v1/loans/{settled.id}", headers=HEADERS).json()["status"] == "settled"

    # one audit row for the run, by the caller named for the key
    rows = book.audit_rows("segments.recomputed")
    assert len(rows) == audit_before + 1
    assert (rows[-1].actor, rows[-1].entity_type, rows[-1].entity_id) == ("scheduler", "customer", "*")
    assert rows[-1].detail == counts

    # running it again changes nothing
    assert client.post("/api/v1/segments/recompute", headers=SCHEDULER).json() == counts


def test_two_loans_outstanding_adds_up(client, population):
    c, loans = population["two_loans"]
    figures = client.get(f"/api/v1/customers/{c.id}/loans", headers=HEADERS).json()
    assert sum(Decimal(f["outstanding_principal"]) for f in figures) == Decimal("110000.00")
    assert max(f["days_past_due"] for f in figures) == 22
