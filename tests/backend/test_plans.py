"""Repayment-plan (hardship) requests: the plan arithmetic to the cent, every eligibility rule, refusals
that change nothing, the request's states, supervisor approval, and approval replacing the schedule.

Business date 2026-11-23 (testkit.TODAY); the clock's now() is 2026-11-23 10:00 Asia/Shanghai. Rules
from config/business.yml, ``repayment_plans``: total term <= 60 months, one approved plan per loan in
12 months, 分期 3..36 instalments, 延期 1..6, staff review above 50,000 outstanding principal or 90 days
past due, a supervisor above 30,000, a decision within 3 days. Penalty: rate x 1.5 / 360 per day.
"""
from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update

from backend.core.clock import SHANGHAI
from backend.core.config import ROOT, BusinessRules, PlanReviewThresholds, RepaymentPlanRules
from backend.models import AuditLog, Instalment, Loan, PlanRequest, PlanStatus, PlanType
from backend.services import accounts
from backend.services import plans as svc
from testkit import D, HEADERS, PAYMENTS, REPORTS, TODAY, ManualClock, StaffDesk, last_audit_id, ok

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
BASE = "/api/v1/plan-requests"


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def clock(app):
    with app.state.sessionmaker() as db:
        db.execute(delete(PlanRequest))
        db.commit()
    original = app.state.clock
    app.state.clock = ManualClock(T0)
    yield app.state.clock
    app.state.clock = original


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code, err
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message_zh"])
    assert err["message_en"]
    return err


def quote(client, loan_id: int, plan_type: str, months: int | None = None):
    q = f"/api/v1/loans/{loan_id}/plan-quote?plan_type={plan_type}" + (f"&months={months}" if months is not None else "")
    return client.get(q, headers=HEADERS)


def submit(client, cust, loan_id: int, plan_type: str = "instalment", months: int | None = 12, **extra):
    body = {"conversation": f"web:{cust.web_id}", "channel": "web", "customer_id": cust.id, "loan_id": loan_id,
            "reason_category": "income_drop", "plan_type": plan_type, **extra}
    if months is not None:
        body["months"] = months
    return client.post(BASE, headers=HEADERS, json=body)


def act(client, ref: str, action: str, **data):
    """The borrower's withdrawal (the bot's key), or a staff decision (through the console)."""
    if action == "withdraw":
        return client.post(f"{BASE}/{ref}/{action}", headers=HEADERS, json=data)
    return StaffDesk.of(client.app).act(f"{BASE}/{ref}/{action}", data)


def approve(client, ref: str, by: str = "bob", role: str = "agent", **extra):
    ok(act(client, ref, "review", by="alice"))
    return act(client, ref, "approve", by=by, role=role, **extra)


def counts(app) -> dict[str, int]:
    with app.state.sessionmaker() as db:
        return {m.__tablename__: db.scalar(select(func.count()).select_from(m))
                for m in (PlanRequest, AuditLog, Instalment, Loan)}


def loan_rows(app, loan_id: int) -> list[tuple]:
    """Every column of every instalment of the loan, and the loan's status."""
    with app.state.sessionmaker() as db:
        loan = db.get(Loan, loan_id)
        cols = [c.name for c in Instalment.__table__.columns]
        return [loan.status.value] + [tuple(getattr(i, c) for c in cols) for i in loan.instalments]


def stored(app, ref: str) -> dict:
    with app.state.sessionmaker() as db:
        row = db.scalar(select(PlanRequest).where(PlanRequest.reference == ref))
        return {c.name: getattr(row, c.name) for c in PlanRequest.__table__.columns}


def audit_since(app, after: int) -> list[tuple]:
    with app.state.sessionmaker() as db:
        return [(a.actor, a.action, a.entity_type, a.detail)
                for a in db.scalars(select(AuditLog).where(AuditLog.id > after).order_by(AuditLog.id))]


def failed_notice(ref: str, actor: str) -> tuple:
    """The audit row of a decision's notice to the borrower: Rasa is unreachable in this module
    (tests/backend/test_notices.py checks what is sent when it answers)."""
    return (actor, "notice_failed", "plan_request", {"reference": ref, "intent": "EXTERNAL_plan_decision",
                                                     "channel": "web", "via": "console", "error": "ConnectError"})


def rows(figures: dict) -> list[tuple]:
    return [(r["seq"], r["due_date"], r["principal"], r["interest"], r["fee"], r["total"]) for r in figures["schedule"]]


def refusal_codes(q: dict) -> list[str]:
    return [r["code"] for r in q["refusals"]]


# --------------------------------------------------------------------------- configuration

def test_plan_rules_come_from_business_yml():
    rules = BusinessRules.load(ROOT / "config" / "business.yml").repayment_plans
    assert rules == RepaymentPlanRules(
        max_total_term_months=60, approved_plans_window_months=12, max_approved_in_window=1,
        staff_review_thresholds=PlanReviewThresholds(outstanding_principal_above=D("50000"), days_past_due_above=90),
        supervisor_approval_above=D("30000"), instalment_min_months=3, instalment_max_months=36,
        defer_max_instalments=6, waivable=["penalty_interest", "fees"], decision_days=3,
        plan_types=["instalment", "deferral", "waiver"])


@pytest.mark.parametrize("bad", [
    {"instalment_min_months": 12, "instalment_max_months": 6},
    {"instalment_max_months": 72},  # over the 60-month total
    {"waivable": ["principal"]},
    {"waivable": []},
    {"plan_types": ["holiday"]},
    {"defer_max_instalments": 0},
    {"decision_days": 0},
])
def test_bad_plan_rules_are_refused_at_load(bad):
    with pytest.raises(ValidationError):
        RepaymentPlanRules(**bad)


# --------------------------------------------------------------------------- the arithmetic

def test_spread_rounds_down_and_the_last_part_takes_the_remainder():
    assert svc.spread(D("130.81"), 6) == [D("21.80")] * 5 + [D("21.81")]  # 130.81 / 6 = 21.8016..
    assert svc.spread(D("100.00"), 3) == [D("33.33"), D("33.33"), D("33.34")]
    assert svc.spread(D("0.05"), 10) == [D("0.00")] * 9 + [D("0.05")]  # never negative
    assert svc.spread(D("0.00"), 4) == [D("0.00")] * 4
    assert svc.spread(D("12.00"), 4) == [D("3.00")] * 4


def test_instalment_quote_hand_computed_to_the_cent(app, client, clock, book):
    """10,000.00 at 12 %/year over 3 new instalments, nothing overdue, loan started 2026-11-13:
    r = 0.01, (1.01)^3 = 1.030301, A = q2(10000 * 0.01 * 1.030301 / 0.030301) = q2(3400.2211..) = 3400.22
      1  2026-12-13  interest q2(10000.00 * 0.01) = 100.00  principal 3400.22 - 100.00 = 3300.22  balance 6699.78
      2  2027-01-13  interest q2(6699.78 * 0.01) = 67.00    principal 3333.22                     balance 3366.56
      3  2027-02-13  interest q2(3366.56 * 0.01) = 33.67    principal = the balance 3366.56, total 3400.23
    The last instalment absorbs the rounding remainder (3400.23, not 3400.22); total interest 200.67."""
    cust = book.customer("钱多多")
    loan = book.loan(cust.id, "10000", "0.12", 12, date(2026, 11, 13))
    before = counts(app)
    got = ok(quote(client, loan.id, "instalment", 3))
    assert counts(app) == before  # a quote writes nothing
    assert {k: v for k, v in got.items() if k != "quote"} == {
        "loan_id": loan.id, "plan_type": "instalment", "months": 3, "as_of": "2026-11-23", "eligible": True,
        "refusals": [], "needs_staff_review": False, "staff_review_reasons": [], "requires_supervisor": False,
        "decision_days": 3}
    q = got["quote"]
    assert rows(q) == [
        (1, "2026-12-13", "3300.22", "100.00", "0.00", "3400.22"),
        (2, "2027-01-13", "3333.22", "67.00", "0.00", "3400.22"),
        (3, "2027-02-13", "3366.56", "33.67", "0.00", "3400.23"),
    ]
    assert {k: v for k, v in q.items() if k != "schedule"} == {
        "plan_type": "instalment", "months": 3, "as_of": "2026-11-23", "annual_rate": "0.120000",
        "outstanding_principal": "10000.00", "carried_interest": "0.00", "carried_fees": "0.00",
        "carried_penalty_interest": "0.00", "carried_total": "0.00", "amount": "10000.00",
        "monthly_amount": "3400.22", "instalments": 3, "total_interest": "200.67", "total_repayable": "10200.67",
        "first_due_date": "2026-12-13", "last_due_date": "2027-02-13", "total_term_months": 3,
        "waived_penalty_interest": "0.00", "waived_fees": "0.00", "waived_amount": "0.00", "deferred": []}
    assert sum(D(r["principal"]) for r in q["schedule"]) == D("10000.00")


def arrears_loan(book):
    """6,000.00 at 12 % over 6 months from 2026-08-13 (A = 1035.29), instalment 1 paid, 2 (due 10-13) and
    3 (due 11-13) unpaid, a 15.00 fee on instalment 2:
      schedule  1 975.29+60.00  2 985.04+50.25  3 994.89+40.40  4 1004.84+30.45  5 1014.89+20.40  6 1025.05+10.25
      outstanding principal P = 6000.00 - 975.29 = 5024.71
      penalty to 11-23: q2(985.04 * 0.12 * 1.5 / 360 * 41) = q2(20.19332) = 20.19
                        q2(994.89 * 0.12 * 1.5 / 360 * 10) = q2(4.97445) = 4.97   -> 25.16
      carried interest (due on or before S = 2026-11-13): 50.25 + 40.40 = 90.65; fees 15.00
      carried C = 90.65 + 15.00 + 25.16 = 130.81"""
    cust = book.customer("孙丽")
    return cust, book.loan(cust.id, "6000", "0.12", 6, date(2026, 8, 13), paid=1, fees={2: D("15.00")})


# 分期 6 of P = 5024.71: (1.01)^6 = 1.061520150601, A = q2(50.2471 * 1.061520150601 / 0.061520150601)
# = q2(867.0057..) = 867.01; C = 130.81 spread as 21.80 x 5 + 21.81.
#   1 interest q2(50.2471) = 50.25  principal 816.76  balance 4207.95
#   2 interest q2(42.0795) = 42.08  principal 824.93  balance 3383.02
#   3 interest q2(33.8302) = 33.83  principal 833.18  balance 2549.84
#   4 interest q2(25.4984) = 25.50  principal 841.51  balance 1708.33
#   5 interest q2(17.0833) = 17.08  principal 849.93  balance 858.40
#   6 interest q2(8.5840)  =  8.58  principal 858.40 (the balance): 866.98 + 21.81
ARREARS_PLAN = [
    (1, "2026-12-13", "816.76", "50.25", "21.80", "888.81"),
    (2, "2027-01-13", "824.93", "42.08", "21.80", "888.81"),
    (3, "2027-02-13", "833.18", "33.83", "21.80", "888.81"),
    (4, "2027-03-13", "841.51", "25.50", "21.80", "888.81"),
    (5, "2027-04-13", "849.93", "17.08", "21.80", "888.81"),
    (6, "2027-05-13", "858.40", "8.58", "21.81", "888.79"),
]


def test_instalment_plan_folds_in_the_arrears_interest_free(client, clock, book):
    _, loan = arrears_loan(book)
    q = ok(quote(client, loan.id, "instalment", 6))["quote"]
    assert rows(q) == ARREARS_PLAN
    assert (q["outstanding_principal"], q["carried_interest"], q["carried_fees"], q["carried_penalty_interest"],
            q["carried_total"], q["amount"]) == ("5024.71", "90.65", "15.00", "25.16", "130.81", "5155.52")
    assert (q["monthly_amount"], q["total_interest"], q["total_repayable"], q["first_due_date"],
            q["last_due_date"], q["total_term_months"]) == ("888.81", "177.32", "5332.84", "2026-12-13",
                                                            "2027-05-13", 9)  # 3 months since start + 6
    assert sum(D(r[2]) for r in ARREARS_PLAN) == D("5024.71")  # the new principal is the outstanding principal
    assert sum(D(r[4]) for r in ARREARS_PLAN) == D("130.81")


@pytest.mark.parametrize("principal, rate, months", [
    ("5024.71", "0.12", 6), ("10000", "0.0", 7), ("33333.33", "0.2399", 36), ("1000", "0.18", 3),
    ("0.10", "0.12", 3), ("49999.99", "0.0365", 24),
])
def test_new_principals_add_up_and_only_the_last_instalment_differs(principal, rate, months):
    """Through the service on an in-memory loan: whatever the rounding, the principals add up to the
    outstanding principal exactly and every instalment but the last has the level amount."""
    rules = BusinessRules.load(ROOT / "config" / "business.yml")
    loan = Loan(id=1, principal=D(principal), annual_rate=D(rate), term_months=12, start_date=date(2026, 11, 13),
                product="xiaofeidai")
    for s in svc.amortize(D(principal), D(rate), 12, date(2026, 11, 13)):
        loan.instalments.append(Instalment(seq=s.seq, due_date=s.due_date, principal=s.principal, interest=s.interest))
    plan = svc.instalment_plan(loan, svc.position(loan, rules, TODAY), months)
    assert sum(r.principal for r in plan.rows) == D(principal)
    assert len({r.total for r in plan.rows[:-1]}) == 1
    assert [r.due_date for r in plan.rows] == [svc.add_months(date(2026, 11, 13), k) for k in range(1, months + 1)]
    assert all(r.principal >= 0 and r.interest >= 0 for r in plan.rows)


def test_the_due_day_of_the_contract_is_kept_at_month_ends(client, clock, book):
    """A loan started on the 31st: the plan's due dates are add_months(start, m+k), the 31st where the
    month has one (never drifting to the 30th after a short month)."""
    cust = book.customer()
    loan = book.loan(cust.id, "3000", "0.12", 6, date(2026, 10, 31), paid=0)
    q = ok(quote(client, loan.id, "instalment", 4))["quote"]
    assert [r["due_date"] for r in q["schedule"]] == ["2026-12-31", "2027-01-31", "2027-02-28", "2027-03-31"]


def test_deferral_moves_the_next_instalments_to_the_end_without_extra_interest(client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "12000", "0.12", 12, date(2026, 6, 13), paid=5)  # next due 2026-12-13 (seq 6)
    s = {r.seq: r for r in loan.rows}
    q = ok(quote(client, loan.id, "deferral", 2))["quote"]
    assert q["deferred"] == [
        {"seq": 6, "due_date": "2026-12-13", "new_due_date": "2027-07-13", "amount": str(s[6].total)},
        {"seq": 7, "due_date": "2027-01-13", "new_due_date": "2027-08-13", "amount": str(s[7].total)},
    ]
    expected = [(seq, str(s[seq].due_date), s[seq].principal, s[seq].interest) for seq in range(8, 13)] + [
        (6, "2027-07-13", s[6].principal, s[6].interest), (7, "2027-08-13", s[7].principal, s[7].interest)]
    assert [(r["due_date"], r["principal"], r["interest"], r["fee"]) for r in q["schedule"]] == [
        (due, str(p), str(i), "0.00") for _, due, p, i in expected]
    assert q["total_interest"] == str(sum(s[k].interest for k in range(6, 13)))  # unchanged: no extra interest
    assert (q["first_due_date"], q["monthly_amount"], q["instalments"], q["total_term_months"], q["amount"]) == (
        "2027-02-13", str(s[8].total), 7, 14, str(s[6].total + s[7].total))
    assert q["outstanding_principal"] == str(sum(s[k].principal for k in range(6, 13)))


def waiver_loan(book):
    """3,000.00 at 18 % over 3 months from 2026-09-03, r = 0.015, (1.015)^3 = 1.045678375,
    A = q2(45 * 1.045678375 / 0.045678375) = q2(1030.1489) = 1030.15:
      1 due 10-03  interest 45.00                 principal 985.15   (51 days overdue, a 20.00 fee)
      2 due 11-03  interest q2(30.22275) = 30.22  principal 999.93   (20 days overdue)
      3 due 12-03  interest q2(15.2238) = 15.22   principal 1014.92  (total 1030.14, the remainder)
      penalty 1: q2(985.15 * 0.18 * 1.5 / 360 * 51) = q2(37.6819875) = 37.68
      penalty 2: q2(999.93 * 0.18 * 1.5 / 360 * 20) = q2(14.99895)   = 15.00"""
    cust = book.customer("周强")
    return cust, book.loan(cust.id, "3000", "0.18", 3, date(2026, 9, 3), fees={1: D("20.00")})


def test_waiver_shows_the_penalty_and_fees_waived(client, clock, book):
    _, loan = waiver_loan(book)
    assert [(r.principal, r.interest) for r in loan.rows] == [
        (D("985.15"), D("45.00")), (D("999.93"), D("30.22")), (D("1014.92"), D("15.22"))]
    got = ok(quote(client, loan.id, "waiver", 6))  # months mean nothing for a waiver
    q = got["quote"]
    assert (got["months"], q["months"], q["waived_penalty_interest"], q["waived_fees"], q["waived_amount"],
            q["amount"]) == (None, None, "52.68", "20.00", "72.68", "72.68")
    # still owed after the waiver: 1030.15 + 1030.15 + 1030.14 + 20.00 fee + 52.68 penalty - 72.68
    assert q["total_repayable"] == "3090.44"
    summary = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert D(q["total_repayable"]) == D(summary["total_outstanding"]) - D("72.68")
    assert (q["schedule"], q["instalments"], q["monthly_amount"], q["first_due_date"]) == ([], 0, None, None)


# --------------------------------------------------------------------------- eligibility

def test_settled_loans_cannot_apply_and_refusals_write_nothing(app, client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "3000", "0.12", 3, date(2026, 5, 13), paid=3)
    for plan_type, months in (("instalment", 12), ("deferral", 1), ("waiver", None)):
        got = ok(quote(client, loan.id, plan_type, months))
        assert (got["eligible"], got["quote"], refusal_codes(got)) == (False, None, ["loan_settled"])
        assert got["refusals"][0]["message_zh"] == "该笔借款已结清，无需申请还款计划"
    before, state = counts(app), loan_rows(app, loan.id)
    assert_error(submit(client, cust, loan.id), 409, "loan_settled")
    assert counts(app) == before and loan_rows(app, loan.id) == state


def test_the_total_term_is_capped_at_60_months(app, client, clock, book):
    """A 60-month loan from 2024-01-13, 34 instalments paid: 34 months since the start."""
    cust = book.customer()
    loan = book.loan(cust.id, "20000", "0.12", 60, date(2024, 1, 13), paid=34)
    ok_quote = ok(quote(client, loan.id, "instalment", 26))
    assert (ok_quote["eligible"], ok_quote["quote"]["total_term_months"], ok_quote["quote"]["last_due_date"]) == (
        True, 60, "2029-01-13")
    too_long = ok(quote(client, loan.id, "instalment", 27))
    assert (too_long["eligible"], refusal_codes(too_long)) == (False, ["term_too_long"])
    assert "61" in too_long["refusals"][0]["message_zh"] and "60" in too_long["refusals"][0]["message_zh"]
    defer = ok(quote(client, loan.id, "deferral", 1))  # the last due date is already month 60
    assert refusal_codes(defer) == ["term_too_long"]
    before, state = counts(app), loan_rows(app, loan.id)
    assert_error(submit(client, cust, loan.id, months=27), 422, "term_too_long")
    assert_error(submit(client, cust, loan.id, "deferral", 1), 422, "term_too_long")
    assert counts(app) == before and loan_rows(app, loan.id) == state


@pytest.mark.parametrize("plan_type, months, code", [
    ("instalment", 2, "months_out_of_range"), ("instalment", 37, "months_out_of_range"),
    ("instalment", None, "months_required"), ("deferral", 7, "months_out_of_range"),
    ("deferral", None, "months_required"), ("deferral", 6, "not_enough_instalments"),
])
def test_months_out_of_range_are_refused(app, client, clock, book, plan_type, months, code):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 6, date(2026, 7, 13), paid=4)  # 2 instalments to come
    got = ok(quote(client, loan.id, plan_type, months))
    assert (got["eligible"], refusal_codes(got), got["quote"]) == (False, [code], None)
    before, state = counts(app), loan_rows(app, loan.id)
    assert_error(submit(client, cust, loan.id, plan_type, months), 422, code)
    assert counts(app) == before and loan_rows(app, loan.id) == state


def test_months_bounds_are_inclusive(client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    for plan_type, months in (("instalment", 3), ("instalment", 36), ("deferral", 1), ("deferral", 6)):
        assert ok(quote(client, loan.id, plan_type, months))["eligible"], (plan_type, months)
    assert_error(quote(client, loan.id, "instalment", 0), 422, "invalid_input")
    assert_error(quote(client, loan.id, "holiday", 3), 422, "invalid_input")
    assert_error(client.get(f"/api/v1/loans/{loan.id}/plan-quote", headers=HEADERS), 422, "invalid_input")
    assert_error(quote(client, 999999, "instalment", 12), 404, "not_found")


def test_nothing_to_waive_is_refused(client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 6, date(2026, 7, 13), paid=4)
    got = ok(quote(client, loan.id, "waiver"))
    assert refusal_codes(got) == ["nothing_to_waive"]
    assert_error(submit(client, cust, loan.id, "waiver", None), 422, "nothing_to_waive")


@pytest.mark.parametrize("principal, start, paid, reasons", [
    ("50000.00", date(2026, 11, 13), 0, []),  # exactly the threshold: not above it
    ("50000.01", date(2026, 11, 13), 0, ["outstanding_principal_above"]),
    ("6000", date(2026, 7, 25), 0, []),  # instalment 1 due 2026-08-25: 90 days past due
    ("6000", date(2026, 7, 24), 0, ["days_past_due_above"]),  # due 2026-08-24: 91 days
])
def test_staff_review_thresholds(client, clock, book, principal, start, paid, reasons):
    cust = book.customer()
    loan = book.loan(cust.id, principal, "0.12", 24, start, paid=paid)
    got = ok(quote(client, loan.id, "instalment", 24))
    assert (got["eligible"], got["needs_staff_review"], got["staff_review_reasons"]) == (True, bool(reasons), reasons)
    req = ok(submit(client, cust, loan.id, months=24), 201)
    assert (req["needs_staff_review"], req["staff_review_reasons"], req["status"]) == (bool(reasons), reasons,
                                                                                       "submitted")


def test_one_open_request_per_loan(app, client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    ref = ok(submit(client, cust, loan.id), 201)["reference"]
    got = ok(quote(client, loan.id, "deferral", 1))
    assert refusal_codes(got) == ["request_pending"] and ref in got["refusals"][0]["message_zh"]
    before = counts(app)
    assert_error(submit(client, cust, loan.id, "deferral", 1), 409, "request_pending")
    assert counts(app) == before
    ok(act(client, ref, "withdraw", customer_id=cust.id))
    assert ok(quote(client, loan.id, "deferral", 1))["eligible"]


def test_one_approved_plan_per_loan_in_12_months(app, client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    ref = ok(submit(client, cust, loan.id, "deferral", 1), 201)["reference"]
    ok(approve(client, ref))
    got = ok(quote(client, loan.id, "instalment", 12))
    assert refusal_codes(got) == ["recent_plan_approved"] and "2026-11-23" in got["refusals"][0]["message_zh"]
    before, state = counts(app), loan_rows(app, loan.id)
    assert_error(submit(client, cust, loan.id), 409, "recent_plan_approved")
    assert counts(app) == before and loan_rows(app, loan.id) == state

    def approved_on(day: date):
        with app.state.sessionmaker() as db:
            db.execute(update(PlanRequest).where(PlanRequest.reference == ref).values(decided_on=day))
            db.commit()

    approved_on(date(2025, 11, 24))  # within 12 months of 2026-11-23
    assert refusal_codes(ok(quote(client, loan.id, "instalment", 12))) == ["recent_plan_approved"]
    approved_on(date(2025, 11, 23))  # exactly 12 months ago: the window has passed
    assert ok(quote(client, loan.id, "instalment", 12))["eligible"]
    # another loan of the same borrower is not affected
    other = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    approved_on(TODAY)
    assert ok(quote(client, other.id, "instalment", 12))["eligible"]


def test_every_reason_is_listed(client, clock, book, app):
    """A settled loan asked for 99 instalments: both reasons, the most fundamental first."""
    cust = book.customer()
    loan = book.loan(cust.id, "3000", "0.12", 3, date(2026, 5, 13), paid=3)
    assert refusal_codes(ok(quote(client, loan.id, "instalment", 99))) == ["loan_settled", "months_out_of_range"]


def test_plan_types_not_offered_are_refused(app, book, clock):
    cust = book.customer()
    loan_rec = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    rules = app.state.rules.model_copy(update={"repayment_plans": RepaymentPlanRules(plan_types=["instalment"])})
    with app.state.sessionmaker() as db:
        loan = accounts.get_loan(db, loan_rec.id)
        a = svc.assess(db, rules, loan, PlanType.deferral, 1, TODAY)
        assert [e.code for e in a.refusals] == ["plan_type_not_offered"] and a.plan is None
        assert svc.assess(db, rules, loan, PlanType.instalment, 12, TODAY).eligible


# --------------------------------------------------------------------------- the request

def test_submit_stores_a_numbered_request(app, client, clock, book):
    cust, loan = arrears_loan(book)
    cust_id = cust.id
    audit_from, before = last_audit_id(app), counts(app)
    got = ok(submit(client, cust, loan.id, months=6, reason_category="unemployment",
                    reason_text="公司裁员，暂时没有收入，电话13812345678"), 201)
    assert counts(app) == {**before, "plan_requests": before["plan_requests"] + 1,
                           "audit_log": before["audit_log"] + 1}
    assert {k: v for k, v in got.items() if k not in ("id", "quote")} == {
        "reference": "RP20261123-0001", "loan_id": loan.id, "loan_no_last4": loan.loan_no[-4:],
        "customer_id": cust_id, "conversation_masked": f"web:{cust.web_id}", "channel": "web",
        "reason_category": "unemployment", "reason_label": "失业", "reason_text": "公司裁员，暂时没有收入，电话138****5678",
        "plan_type": "instalment", "plan_type_label": "分期", "months": 6, "amount": "5155.52",
        "status": "submitted", "status_label": "已提交", "needs_staff_review": False, "staff_review_reasons": [],
        "requires_supervisor": False, "submitted_on": "2026-11-23", "decision_due_on": "2026-11-26",
        "created_at": "2026-11-23T10:00:00+08:00", "reviewer": None, "review_started_at": None,
        "decided_by": None, "decided_at": None, "decision_reason": None, "withdrawn_at": None,
        "approved_quote": None}
    assert rows(got["quote"]) == ARREARS_PLAN
    row = stored(app, "RP20261123-0001")
    assert (row["reason_text"], row["quote"]["monthly_amount"], row["quote"]["schedule"][0]) == (
        "公司裁员，暂时没有收入，电话138****5678", "888.81",
        {"seq": 1, "due_date": "2026-12-13", "principal": "816.76", "interest": "50.25", "fee": "21.80",
         "total": "888.81"})
    assert audit_since(app, audit_from) == [("actions", "plan_request.submitted", "plan_request", {
        "reference": "RP20261123-0001", "loan_id": loan.id, "customer_id": cust_id, "plan_type": "instalment",
        "months": 6, "amount": "5155.52", "reason_category": "unemployment", "needs_staff_review": False,
        "channel": "web"})]
    assert ok(client.get(f"{BASE}/RP20261123-0001", headers=HEADERS)) == got
    # the next request of the business day gets the next number
    cust2 = book.customer()
    loan2 = book.loan(cust2.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    assert ok(submit(client, cust2, loan2.id, "deferral", 2), 201)["reference"] == "RP20261123-0002"


@pytest.mark.parametrize("bad", [
    {"reason_category": "失业"}, {"plan_type": "holiday"}, {"channel": "email"}, {"channel": "sms"},
    {"conversation": "web:"}, {"months": 0}, {"reason_text": "长" * 1001}, {"status": "approved"},
    {"customer_id": 0},
])
def test_bad_submissions_are_422_and_write_nothing(app, client, clock, book, bad):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    before = counts(app)
    body = {"conversation": f"web:{cust.web_id}", "channel": "web", "customer_id": cust.id, "loan_id": loan.id,
            "reason_category": "other", "plan_type": "instalment", "months": 12, **bad}
    assert_error(client.post(BASE, headers=HEADERS, json=body), 422, "invalid_input")
    assert counts(app) == before


def test_someone_elses_loan_and_unknown_things_are_404(app, client, clock, book):
    cust, other = book.customer(), book.customer()
    loan = book.loan(other.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    before = counts(app)
    assert_error(submit(client, cust, loan.id), 404, "not_found")
    assert_error(submit(client, cust, 999999), 404, "not_found")
    assert_error(client.get(f"{BASE}/RP20261123-9999", headers=HEADERS), 404, "not_found")
    assert_error(client.get("/api/v1/customers/999999/plan-requests", headers=HEADERS), 404, "not_found")
    for action, data in (("withdraw", {"customer_id": cust.id}), ("review", {"by": "alice"}),
                         ("approve", {"by": "alice", "role": "supervisor"}), ("reject", {"by": "alice", "reason": "x"})):
        assert_error(act(client, "RP20261123-9999", action, **data), 404, "not_found")
    assert counts(app) == before


def test_states_and_their_refusals(app, client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    ref = ok(submit(client, cust, loan.id), 201)["reference"]
    frozen, before, state = stored(app, ref), counts(app), loan_rows(app, loan.id)
    assert_error(act(client, ref, "approve", by="bob", role="supervisor"), 409, "not_under_review")
    assert_error(act(client, ref, "reject", by="bob", reason="收入证明不足"), 409, "not_under_review")
    assert stored(app, ref) == frozen and counts(app) == before

    clock.advance(hours=2)
    got = ok(act(client, ref, "review", by="alice"))
    assert (got["status"], got["status_label"], got["reviewer"], got["review_started_at"]) == (
        "under_review", "审核中", "alice", "2026-11-23T12:00:00+08:00")
    frozen, before = stored(app, ref), counts(app)
    assert_error(act(client, ref, "review", by="carol"), 409, "already_under_review")
    for data in ({"by": "bob"}, {"by": "bob", "reason": ""}, {"by": "bob", "reason": "   "}):
        assert_error(act(client, ref, "reject", **data), 422, "reason_required")
    assert stored(app, ref) == frozen and counts(app) == before

    audit_from = last_audit_id(app)
    got = ok(act(client, ref, "reject", by="bob", reason="请补充收入证明后重新申请，客户卡号6222021234567890123"))
    assert (got["status"], got["status_label"], got["decided_by"], got["decided_at"], got["decision_reason"]) == (
        "rejected", "未批准", "bob", "2026-11-23T12:00:00+08:00", "请补充收入证明后重新申请，客户卡号****0123")
    assert loan_rows(app, loan.id) == state  # a rejection leaves the loan alone
    assert audit_since(app, audit_from) == [("bob", "plan_request.rejected", "plan_request", {
        "reference": ref, "loan_id": loan.id, "role": "agent", "via": "console"}), failed_notice(ref, "bob")]

    frozen, before = stored(app, ref), counts(app)
    for action, data in (("review", {"by": "alice"}), ("approve", {"by": "bob", "role": "supervisor"}),
                         ("reject", {"by": "bob", "reason": "再次"}), ("withdraw", {"customer_id": cust.id})):
        err = assert_error(act(client, ref, action, **data), 409, "request_ended")
        assert "未批准" in err["message_zh"]
    assert stored(app, ref) == frozen and counts(app) == before and loan_rows(app, loan.id) == state


@pytest.mark.parametrize("reviewed", [False, True])
def test_the_borrower_withdraws_while_submitted_or_under_review(app, client, clock, book, reviewed):
    cust, stranger = book.customer(), book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    ref = ok(submit(client, cust, loan.id), 201)["reference"]
    if reviewed:
        ok(act(client, ref, "review", by="alice"))
    before = counts(app)
    assert_error(act(client, ref, "withdraw", customer_id=stranger.id), 404, "not_found")
    assert_error(act(client, ref, "withdraw"), 422, "invalid_input")
    assert counts(app) == before
    audit_from = last_audit_id(app)
    got = ok(act(client, ref, "withdraw", customer_id=cust.id))
    assert (got["status"], got["status_label"], got["withdrawn_at"]) == ("withdrawn", "已撤回",
                                                                         "2026-11-23T10:00:00+08:00")
    assert audit_since(app, audit_from) == [("actions", "plan_request.withdrawn", "plan_request", {
        "reference": ref, "from_status": "under_review" if reviewed else "submitted", "customer_id": cust.id})]
    assert_error(act(client, ref, "withdraw", customer_id=cust.id), 409, "request_ended")
    assert_error(act(client, ref, "approve", by="bob", role="supervisor"), 409, "request_ended")


def test_customer_list_newest_first_and_staff_filters(client, clock, book):
    cust = book.customer()
    a = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    b = book.loan(cust.id, "60000", "0.12", 24, date(2026, 11, 13))
    first = ok(submit(client, cust, a.id, "deferral", 2), 201)["reference"]
    second = ok(submit(client, cust, b.id, months=24), 201)["reference"]
    mine = ok(client.get(f"/api/v1/customers/{cust.id}/plan-requests", headers=HEADERS))
    assert [r["reference"] for r in mine] == [second, first]  # 「我的申请怎么样了」: the latest first
    assert (mine[0]["needs_staff_review"], mine[0]["requires_supervisor"]) == (True, True)

    def listed(query: str = "") -> list[str]:
        return [r["reference"] for r in ok(client.get(f"{BASE}{query}", headers=REPORTS))]

    assert listed() == [first, second]  # open ones, oldest first
    assert listed("?needs_staff_review=true") == [second]
    assert listed("?plan_type=deferral") == [first]
    assert listed(f"?loan_id={b.id}") == [second]
    ok(act(client, first, "withdraw", customer_id=cust.id))
    assert listed() == [second]
    assert listed("?status=withdrawn") == [first]
    assert listed("?status=withdrawn&status=submitted") == [first, second]
    assert_error(client.get(f"{BASE}?status=done", headers=REPORTS), 422, "invalid_input")
    assert ok(client.get(f"/api/v1/customers/{book.customer().id}/plan-requests", headers=HEADERS)) == []


# --------------------------------------------------------------------------- approval

def test_approval_replaces_the_schedule(app, client, clock, book):
    cust, loan = arrears_loan(book)
    before_summary = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert (before_summary["status"], before_summary["days_past_due"], before_summary["penalty_interest"]) == (
        "overdue", 41, "25.16")
    ref = ok(submit(client, cust, loan.id, months=6), 201)["reference"]
    ok(act(client, ref, "review", by="alice"))
    clock.advance(hours=3)
    audit_from = last_audit_id(app)
    got = ok(act(client, ref, "approve", by="bob", role="agent", note="已核实失业证明"))
    assert (got["status"], got["status_label"], got["decided_by"], got["decided_at"], got["decision_reason"]) == (
        "approved", "已批准", "bob", "2026-11-23T13:00:00+08:00", "已核实失业证明")
    assert rows(got["approved_quote"]) == ARREARS_PLAN  # same day: the same figures

    schedule = ok(client.get(f"/api/v1/loans/{loan.id}/schedule", headers=HEADERS))
    assert [(r["seq"], r["due_date"], r["principal"], r["interest"], r["fee"], r["total"], r["status"],
             r["amount_outstanding"], r["penalty_interest"]) for r in schedule] == [
        (1, "2026-09-13", "975.29", "60.00", "0.00", "1035.29", "paid", "0.00", "0.00"),
    ] + [(seq + 1, due, p, i, f, t, "pending", t, "0.00") for seq, due, p, i, f, t in ARREARS_PLAN]
    summary = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert {k: summary[k] for k in ("status", "next_due_date", "next_instalment_amount", "amount_due",
                                    "outstanding_principal", "outstanding_interest", "outstanding_fees",
                                    "total_outstanding", "overdue_amount", "days_past_due", "penalty_interest",
                                    "instalments_remaining")} == {
        "status": "restructured", "next_due_date": "2026-12-13", "next_instalment_amount": "888.81",
        "amount_due": "888.81", "outstanding_principal": "5024.71", "outstanding_interest": "177.32",
        "outstanding_fees": "130.81", "total_outstanding": "5332.84", "overdue_amount": "0.00",
        "days_past_due": 0, "penalty_interest": "0.00", "instalments_remaining": 6}
    with app.state.sessionmaker() as db:
        assert sum(i.principal for i in db.get(Loan, loan.id).instalments) == D("6000.00")
    assert audit_since(app, audit_from) == [("bob", "plan_request.approved", "plan_request", {
        "reference": ref, "loan_id": loan.id, "plan_type": "instalment", "months": 6, "role": "agent",
        "amount": "5155.52", "quoted_amount": "5155.52", "replaced_instalments": [2, 3, 4, 5, 6],
        "new_instalments": 6, "loan_status": "restructured", "via": "console"}), failed_notice(ref, "bob")]
    # a payment on the new schedule goes to the first new instalment
    paid = ok(client.post(f"/api/v1/loans/{loan.id}/payments", headers=PAYMENTS,
                          json={"amount": "888.81", "method": "alipay", "reference": f"PLAN{loan.id:06d}"}), 201)
    assert paid["allocation"] == {"penalty": "0.00", "fee": "21.80", "interest": "50.25", "principal": "816.76"}
    after = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert (after["next_due_date"], after["next_instalment_amount"], after["status"]) == (
        "2027-01-13", "888.81", "restructured")


def test_a_restructured_loan_paid_in_full_is_settled(app, client, clock, book):
    cust, loan = arrears_loan(book)
    ref = ok(submit(client, cust, loan.id, months=6), 201)["reference"]
    ok(act(client, ref, "review", by="alice"))
    ok(act(client, ref, "approve", by="bob", role="agent", note="已核实"))
    summary = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert (summary["status"], summary["total_outstanding"]) == ("restructured", "5332.84")
    ok(client.post(f"/api/v1/loans/{loan.id}/payments", headers=PAYMENTS,
                   json={"amount": "5000.00", "method": "bank_transfer", "reference": f"PART{loan.id:06d}"}), 201)
    assert ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))["status"] == "restructured"
    ok(client.post(f"/api/v1/loans/{loan.id}/payments", headers=PAYMENTS,
                   json={"amount": "332.84", "method": "bank_transfer", "reference": f"REST{loan.id:06d}"}), 201)
    after = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert (after["status"], after["total_outstanding"], after["instalments_remaining"]) == ("settled", "0.00", 0)


def test_approval_keeps_what_a_partly_paid_instalment_received(app, client, clock, book):
    """Instalment 2 of the arrears loan got 100.00 before the plan (the ledger takes penalty 20.19, the fee
    15.00, interest 50.25, then principal 14.56): that instalment is kept, cut down to what it received,
    and everything else goes into the plan (P = 5024.71 - 14.56 = 5010.15)."""
    cust, loan = arrears_loan(book)
    ok(client.post(f"/api/v1/loans/{loan.id}/payments", headers=PAYMENTS,
                   json={"amount": "100.00", "method": "alipay", "reference": f"PART{loan.id:06d}"}), 201)
    quoted = ok(quote(client, loan.id, "instalment", 6))["quote"]
    assert (quoted["outstanding_principal"], quoted["carried_interest"], quoted["carried_fees"],
            quoted["carried_penalty_interest"]) == ("5010.15", "40.40", "0.00", "4.97")
    ref = ok(submit(client, cust, loan.id, months=6), 201)["reference"]
    ok(approve(client, ref))
    schedule = ok(client.get(f"/api/v1/loans/{loan.id}/schedule", headers=HEADERS))
    assert [(r["seq"], r["principal"], r["interest"], r["fee"], r["paid_amount"], r["status"])
            for r in schedule[:2]] == [(1, "975.29", "60.00", "0.00", "1035.29", "paid"),
                                       (2, "14.56", "50.25", "15.00", "100.00", "paid")]
    assert [r["seq"] for r in schedule] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert sum(D(r["principal"]) for r in schedule[2:]) == D("5010.15")
    with app.state.sessionmaker() as db:
        loan_row = db.get(Loan, loan.id)
        assert sum(i.principal for i in loan_row.instalments) == D("6000.00")
        # every yuan paid is still on an instalment: instalment 1 (1035.29, booked as paid) and the 100.00
        assert sum(i.paid_principal + i.paid_interest + i.paid_fee + i.paid_penalty
                   for i in loan_row.instalments) == D("1135.29")


def test_approving_a_deferral(app, client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "12000", "0.12", 12, date(2026, 6, 13), paid=5)
    s = {r.seq: r for r in loan.rows}
    ref = ok(submit(client, cust, loan.id, "deferral", 2), 201)["reference"]
    ok(approve(client, ref))
    schedule = ok(client.get(f"/api/v1/loans/{loan.id}/schedule", headers=HEADERS))
    assert [(r["seq"], r["due_date"], r["total"], r["status"]) for r in schedule] == (
        [(k, str(s[k].due_date), str(s[k].total), "paid") for k in range(1, 6)]
        + [(k - 2, str(s[k].due_date), str(s[k].total), "pending") for k in range(8, 13)]
        + [(11, "2027-07-13", str(s[6].total), "pending"), (12, "2027-08-13", str(s[7].total), "pending")])
    summary = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert (summary["status"], summary["next_due_date"], summary["next_instalment_amount"],
            summary["outstanding_principal"], summary["outstanding_interest"]) == (
        "restructured", "2027-02-13", str(s[8].total), str(sum(s[k].principal for k in range(6, 13))),
        str(sum(s[k].interest for k in range(6, 13))))


def test_approving_a_waiver(app, client, clock, book):
    cust, loan = waiver_loan(book)
    before = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    ref = ok(submit(client, cust, loan.id, "waiver", None), 201)["reference"]
    assert (stored(app, ref)["months"], stored(app, ref)["amount"]) == (None, D("72.68"))
    ok(approve(client, ref))
    after = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert (after["penalty_interest"], after["outstanding_fees"], after["status"], after["days_past_due"]) == (
        "0.00", "0.00", "overdue", 51)  # a waiver is not a restructuring: still overdue
    assert D(after["total_outstanding"]) == D(before["total_outstanding"]) - D("72.68")
    # penalty accrues again from the approval date on principal still overdue
    later = ok(client.get(f"/api/v1/loans/{loan.id}?as_of=2026-11-24", headers=HEADERS))
    # one day: q2(985.15 * 0.18 * 1.5 / 360) = q2(0.7388625) = 0.74; q2(999.93 * 0.00075) = q2(0.7499475) = 0.75
    assert later["penalty_interest"] == "1.49"


def test_supervisor_only_above_the_amount(app, client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "40000", "0.12", 12, date(2026, 11, 13))
    ref = ok(submit(client, cust, loan.id, months=24), 201)["reference"]
    assert ok(client.get(f"{BASE}/{ref}", headers=HEADERS))["requires_supervisor"] is True
    ok(act(client, ref, "review", by="alice"))
    frozen, before, state = stored(app, ref), counts(app), loan_rows(app, loan.id)
    err = assert_error(act(client, ref, "approve", by="alice", role="agent"), 403, "supervisor_required")
    assert "30000" in err["message_zh"]
    assert stored(app, ref) == frozen and counts(app) == before and loan_rows(app, loan.id) == state
    got = ok(act(client, ref, "approve", by="sam", role="supervisor"))
    assert (got["status"], got["decided_by"]) == ("approved", "sam")
    assert stored(app, ref)["decided_role"] == "supervisor"
    # an agent may reject a large plan
    cust2 = book.customer()
    loan2 = book.loan(cust2.id, "40000", "0.12", 12, date(2026, 11, 13))
    ref2 = ok(submit(client, cust2, loan2.id, months=24), 201)["reference"]
    ok(act(client, ref2, "review", by="alice"))
    assert ok(act(client, ref2, "reject", by="alice", reason="风险较高"))["status"] == "rejected"


def test_small_plans_need_no_supervisor(client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "30000", "0.12", 12, date(2026, 11, 13))  # exactly the limit: not above it
    ref = ok(submit(client, cust, loan.id, months=24), 201)["reference"]
    assert ok(approve(client, ref, role="agent"))["status"] == "approved"


def test_approval_when_no_longer_eligible_is_409_and_changes_nothing(app, client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    ref = ok(submit(client, cust, loan.id), 201)["reference"]
    ok(act(client, ref, "review", by="alice"))
    # the borrower pays off the whole schedule before the decision
    ok(client.post(f"/api/v1/loans/{loan.id}/payments", headers=PAYMENTS,
                   json={"amount": str(sum(D(r["amount_outstanding"]) for r in ok(client.get(
                       f"/api/v1/loans/{loan.id}/schedule", headers=HEADERS)))), "method": "alipay",
                         "reference": f"SETTLE{loan.id:06d}"}), 201)
    frozen, before, state = stored(app, ref), counts(app), loan_rows(app, loan.id)
    err = assert_error(act(client, ref, "approve", by="sam", role="supervisor"), 409, "loan_settled")
    assert err["message_zh"].startswith("该申请已不符合条件")
    assert stored(app, ref) == frozen and counts(app) == before and loan_rows(app, loan.id) == state
    assert ok(act(client, ref, "reject", by="sam", reason="借款已结清"))["status"] == "rejected"


def test_two_staff_deciding_at_once_cannot_both_win(app, client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    ref = ok(submit(client, cust, loan.id), 201)["reference"]
    ok(act(client, ref, "review", by="alice"))
    rules = app.state.rules
    with app.state.sessionmaker() as late:
        assert svc.get_request(late, ref).status == PlanStatus.under_review
        with app.state.sessionmaker() as first:
            svc.reject(first, rules, ref, "alice", "agent", "不符合", TODAY, T0, "test")
            first.commit()
        before, state = counts(app), loan_rows(app, loan.id)
        with pytest.raises(svc.AppError) as refused:
            svc.approve(late, rules, ref, "bob", "supervisor", None, TODAY, T0, "test")
        assert (refused.value.status, refused.value.code) == (409, "request_ended")
        late.rollback()
    assert counts(app) == before and loan_rows(app, loan.id) == state
    assert stored(app, ref)["status"] == PlanStatus.rejected


def test_audit_trail_names_each_actor(app, client, clock, book):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    audit_from = last_audit_id(app)
    ref = ok(submit(client, cust, loan.id, "deferral", 1), 201)["reference"]
    ok(approve(client, ref, by="bob", role="supervisor"))
    assert [(actor, action) for actor, action, _, _ in audit_since(app, audit_from)] == [
        ("actions", "plan_request.submitted"), ("alice", "plan_request.review_started"),
        ("bob", "plan_request.approved"), ("bob", "notice_failed")]
    assert audit_since(app, audit_from)[1][3] == {"reference": ref, "via": "console"}
