"""Early-settlement intents (POST /api/v1/loans/{id}/settlement-intents): the amount is the payoff the
backend computes for the date (exactly GET /loans/{id}/payoff?date=), never the bot's; every refusal
writes nothing and answers with its documented code; a newer intent replaces the loan's earlier one;
the customer's list and the console's customer panel show them.

Business date 2026-11-23 (testkit.TODAY), now() 2026-11-23 10:00 Asia/Shanghai. Rules from
config/business.yml: early_settlement.intent_max_days_ahead = 90 (latest 2027-02-21); 经营贷 charges a 2%
early-settlement fee until 6 instalments are paid.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backend.core.clock import SHANGHAI
from backend.core.config import ROOT, BusinessRules, EarlySettlementRules
from backend.models import AuditLog, SettlementIntent
from backend.services import staff
from testkit import HEADERS, TODAY, D, ManualClock, assert_error, audit_since, console_sign_in, last_audit_id, ok

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
PASSWORD = "console-test-pass-1"


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def clock(app):
    original = app.state.clock
    app.state.clock = ManualClock(T0)
    yield app.state.clock
    app.state.clock = original


@pytest.fixture
def cust(book):
    return book.customer("陈静")


@pytest.fixture
def loan(book, cust):
    """24,000.00 at 9.99 % over 12 months from 2026-10-03 (经营贷), instalment 1 paid; last due 2027-10-03."""
    return book.loan(cust.id, "24000", "0.0999", 12, date(2026, 10, 3), product="jingyingdai", paid=1)


def body(cust, settle_on, channel: str = "wechat", **extra) -> dict:
    conv = {"wechat": f"wechat:{cust.wechat_id}", "sms": f"sms:{cust.sms_id}", "web": f"web:{cust.id}"}[channel]
    return {"customer_id": cust.id, "conversation": conv, "channel": channel,
            "settle_on": settle_on if isinstance(settle_on, str) else settle_on.isoformat(), **extra}


def record(client, loan_id: int, data: dict):
    return client.post(f"/api/v1/loans/{loan_id}/settlement-intents", headers=HEADERS, json=data)


def payoff(client, loan_id: int, on: date) -> dict:
    return ok(client.get(f"/api/v1/loans/{loan_id}/payoff?date={on.isoformat()}", headers=HEADERS))


def counts(app) -> dict[str, int]:
    with app.state.sessionmaker() as db:
        return {m.__tablename__: db.scalar(select(func.count()).select_from(m)) for m in (SettlementIntent, AuditLog)}


def statuses(app, loan_id: int) -> list[tuple]:
    with app.state.sessionmaker() as db:
        return [(i.id, i.status.value, i.settle_on, i.quoted_total) for i in db.scalars(
            select(SettlementIntent).where(SettlementIntent.loan_id == loan_id).order_by(SettlementIntent.id))]


# --------------------------------------------------------------------------- configuration

def test_the_limit_comes_from_business_yml():
    assert BusinessRules.load(ROOT / "config" / "business.yml").early_settlement == EarlySettlementRules(
        intent_max_days_ahead=90)


# --------------------------------------------------------------------------- recording

def test_the_amount_is_the_payoff_for_that_date(app, client, clock, book, cust, loan):
    """Today: principal 24000 - 1910.07 = 22089.93; 20 days of interest since 2026-11-03,
    q2(22089.93 * 0.0999 / 360 * 20) = 122.60 (below instalment 2's 183.90); 2 % fee 441.80;
    total 22654.33 (tests/backend/test_api_read.py works the same loan)."""
    expected = payoff(client, loan.id, TODAY)
    assert expected["total"] == "22654.33"
    before, audit_from = counts(app), last_audit_id(app)
    got = ok(record(client, loan.id, body(cust, TODAY)), 201)
    intent_id = got.pop("id")
    assert got == {
        "loan_id": loan.id, "loan_no_last4": loan.loan_no[-4:], "customer_id": cust.id, "channel": "wechat",
        "status": "recorded", "settle_on": "2026-11-23", "total": "22654.33", "quote": expected,
        "quoted_on": "2026-11-23", "created_at": "2026-11-23T10:00:00+08:00"}
    assert counts(app) == {k: v + 1 for k, v in before.items()}
    with app.state.sessionmaker() as db:
        row = db.get(SettlementIntent, intent_id)
        assert (row.quoted_total, row.quote, row.conversation, row.channel.value) == (
            D("22654.33"), expected, f"wechat:{cust.wechat_id}", "wechat")
    assert audit_since(app, audit_from) == [("actions", "settlement_intent.recorded", "settlement_intent",
                                             str(intent_id), {
        "loan_id": loan.id, "customer_id": cust.id, "settle_on": "2026-11-23", "total": "22654.33",
        "channel": "wechat", "replaced": []})]


@pytest.mark.parametrize("days", [1, 9, 10, 30, 90])  # 2026-12-03 is a due date (days=10); 90 is the last day
def test_any_allowed_date_is_quoted_exactly_as_the_payoff_endpoint(app, client, clock, book, days):
    cust = book.customer("林峰")
    loan = book.loan(cust.id, "8000", "0.1580", 12, date(2026, 7, 3), product="xinyongdai", paid=3,
                     late_days={3: 2}, fees={4: D("25.00")})
    on = TODAY + timedelta(days=days)
    expected = payoff(client, loan.id, on)
    got = ok(record(client, loan.id, body(cust, on, "sms")), 201)
    assert (got["settle_on"], got["total"], got["quote"]) == (on.isoformat(), expected["total"], expected)


def test_an_overdue_loan_includes_penalty_in_the_recorded_amount(app, client, clock, book):
    cust = book.customer("赵磊")
    loan = book.loan(cust.id, "6000", "0.12", 6, date(2026, 8, 13), paid=1, fees={2: D("15.00")})
    on = TODAY + timedelta(days=5)
    expected = payoff(client, loan.id, on)
    assert D(expected["penalty_interest"]) > 0
    got = ok(record(client, loan.id, body(cust, on, "web")), 201)
    assert (got["total"], got["quote"]) == (expected["total"], expected)


def test_a_newer_intent_replaces_the_earlier_one_and_the_list_is_newest_first(app, client, clock, cust, loan, book):
    first = ok(record(client, loan.id, body(cust, TODAY + timedelta(days=7))), 201)
    clock.advance(minutes=3)
    audit_from = last_audit_id(app)
    second = ok(record(client, loan.id, body(cust, TODAY + timedelta(days=14), "sms")), 201)
    other_loan = book.loan(cust.id, "3000", "0.12", 6, date(2026, 10, 20))
    clock.advance(minutes=3)
    third = ok(record(client, other_loan.id, body(cust, TODAY + timedelta(days=3))), 201)
    assert [s for _, s, _, _ in statuses(app, loan.id)] == ["cancelled", "recorded"]
    assert audit_since(app, audit_from)[0][4]["replaced"] == [first["id"]]
    listed = ok(client.get(f"/api/v1/customers/{cust.id}/settlement-intents", headers=HEADERS))
    assert [(i["id"], i["status"], i["settle_on"], i["total"]) for i in listed] == [
        (third["id"], "recorded", "2026-11-26", third["total"]),
        (second["id"], "recorded", "2026-12-07", second["total"]),
        (first["id"], "cancelled", "2026-11-30", first["total"])]
    assert listed[1] == second


def test_the_list_needs_a_known_customer_and_the_api_key(client, clock, cust):
    assert ok(client.get(f"/api/v1/customers/{cust.id}/settlement-intents", headers=HEADERS)) == []
    assert_error(client.get("/api/v1/customers/987654/settlement-intents", headers=HEADERS), 404, "not_found")
    assert client.get(f"/api/v1/customers/{cust.id}/settlement-intents").status_code == 401


# --------------------------------------------------------------------------- refusals write nothing

REFUSALS = [
    # (case, status, code, a piece of the Chinese message)
    ("yesterday", 422, "date_in_past", "不能早于今天"),
    ("91_days", 422, "date_too_far", "90天以内（最晚2027年2月21日）"),
    ("after_maturity", 422, "date_after_maturity", "最后一期"),
    ("not_the_owner", 404, "not_found", "该客户名下的这笔借款"),
    ("unknown_customer", 404, "not_found", "该客户"),
    ("unknown_loan", 404, "not_found", "该笔借款"),
    ("settled", 409, "loan_settled", "已结清"),
    ("total_from_the_bot", 422, "invalid_input", None),
    ("no_date", 422, "invalid_input", None),
    ("bad_date", 422, "invalid_input", None),
    ("other_channels_conversation", 422, "invalid_input", None),
    ("no_external_id", 422, "invalid_input", None),
    ("unknown_channel", 422, "invalid_input", None),
    ("customer_zero", 422, "invalid_input", None),
]


@pytest.mark.parametrize("case, status, code, zh", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_changes_nothing(app, client, clock, book, cust, loan, case, status, code, zh):
    ok(record(client, loan.id, body(cust, TODAY + timedelta(days=20))), 201)  # an intent that must stay as it is
    other = book.customer("何兵")
    short = book.loan(cust.id, "3000", "0.12", 3, date(2026, 10, 20))  # last due 2027-01-20
    settled = book.loan(cust.id, "3000", "0.12", 3, date(2026, 7, 20), paid=3)
    fine = TODAY + timedelta(days=10)
    loan_id, data = {
        "yesterday": (loan.id, body(cust, TODAY - timedelta(days=1))),
        "91_days": (loan.id, body(cust, TODAY + timedelta(days=91))),
        "after_maturity": (short.id, body(cust, date(2027, 1, 21))),
        "not_the_owner": (loan.id, body(other, fine)),
        "unknown_customer": (loan.id, {**body(cust, fine), "customer_id": 987654}),
        "unknown_loan": (987654, body(cust, fine)),
        "settled": (settled.id, body(cust, fine)),
        "total_from_the_bot": (loan.id, body(cust, fine, total="100.00")),
        "no_date": (loan.id, {k: v for k, v in body(cust, fine).items() if k != "settle_on"}),
        "bad_date": (loan.id, body(cust, "2026-13-01")),
        "other_channels_conversation": (loan.id, {**body(cust, fine, "web"), "channel": "wechat"}),
        "no_external_id": (loan.id, {**body(cust, fine), "conversation": "wechat:"}),
        "unknown_channel": (loan.id, {**body(cust, fine), "channel": "email"}),
        "customer_zero": (loan.id, {**body(cust, fine), "customer_id": 0}),
    }[case]
    before, kept = counts(app), statuses(app, loan.id) + statuses(app, short.id) + statuses(app, settled.id)
    err = assert_error(record(client, loan_id, data), status, code)
    if zh:
        assert zh in err["message_zh"], err
    assert counts(app) == before
    assert statuses(app, loan.id) + statuses(app, short.id) + statuses(app, settled.id) == kept


def test_a_smaller_configured_limit_is_applied(app, client, clock, cust, loan):
    original = app.state.rules
    app.state.rules = original.model_copy(update={"early_settlement": EarlySettlementRules(intent_max_days_ahead=10)})
    try:
        err = assert_error(record(client, loan.id, body(cust, TODAY + timedelta(days=11))), 422, "date_too_far")
        assert err["message_zh"] == "提前结清日期需在10天以内（最晚2026年12月3日）"
        ok(record(client, loan.id, body(cust, TODAY + timedelta(days=10))), 201)
    finally:
        app.state.rules = original


# --------------------------------------------------------------------------- the console's customer panel

def test_the_customer_panel_shows_recorded_intents(app, client, clock, book, cust, loan):
    with app.state.sessionmaker() as db:
        staff.create_user(db, "agent1", "客服小王", "agent", PASSWORD, T0, "test")
        db.commit()
    ok(record(client, loan.id, body(cust, TODAY + timedelta(days=7))), 201)
    clock.advance(minutes=1)
    latest = ok(record(client, loan.id, body(cust, TODAY + timedelta(days=14))), 201)  # replaces the first
    case = ok(client.post("/api/v1/handoffs", headers=HEADERS, json={
        "conversation": f"wechat:{cust.wechat_id}", "channel": "wechat", "reason": "request_human",
        "summary": "客户想提前结清", "customer_id": cust.id}), 201)
    panel = ok(console_sign_in(app, "agent1", PASSWORD).get(f"/console/api/cases/{case['id']}"))["customer"]
    assert panel["settlement_intents"] == [{
        "loan_no_last4": loan.loan_no[-4:], "settle_on": "2026-12-07", "total": latest["total"],
        "recorded_on": "2026-11-23"}]
    script = client.get("/static/console.js").text
    assert "提前结清意向" in script and "c.settlement_intents" in script
