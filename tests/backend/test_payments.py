"""POST /api/v1/loans/{id}/payments: allocation, status changes, validation and atomicity."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from testkit import HEADERS, PAYMENTS, TODAY, D, q

START = date(2026, 9, 13)  # 6 monthly instalments from 2026-10-13; the 2nd (2026-11-13) is 10 days overdue today
RATE = D("0.12")


def penalty(principal: Decimal, days: int) -> Decimal:
    return q(principal * RATE * Decimal("1.5") / 360 * days)


def pay(client, loan_id, amount, reference, **extra):
    body = {"amount": amount, "method": "bank_transfer", "reference": reference, **extra}
    return client.post(f"/api/v1/loans/{loan_id}/payments", headers=PAYMENTS, json=body)


def dec(d: dict) -> dict:
    return {k: Decimal(v) for k, v in d.items()}


@pytest.fixture(scope="module")
def cust(book):
    return book.customer("李娜")


@pytest.fixture
def overdue_loan(book, cust):
    """6000 @ 12% over 6 months, instalment 1 paid, instalment 2 (985.04 + 50.25) 10 days overdue."""
    return book.loan(cust.id, "6000", "0.12", 6, START, product="xinyongdai", paid=1)


_refs = iter(range(1, 10**6))


def ref(prefix: str = "PAY") -> str:
    return f"{prefix}{next(_refs):07d}"


# --------------------------------------------------------------------------- allocation

def test_allocation_penalty_then_fee_then_interest_then_principal(client, book, cust):
    loan = book.loan(cust.id, "6000", "0.12", 6, START, product="xinyongdai", paid=1, fees={2: D("15.00")})
    rows = loan.rows
    pen = penalty(rows[1].principal, 10)
    assert pen == D("4.93")
    amount = pen + D("15.00") + rows[1].interest + D("100.00")
    assert amount == D("170.18")
    before = book.counts()
    reference = ref()

    resp = pay(client, loan.id, str(amount), reference)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert dec(body["allocation"]) == {"penalty": D("4.93"), "fee": D("15.00"), "interest": D("50.25"),
                                       "principal": D("100.00")}
    assert body["allocation"] == {"penalty": "4.93", "fee": "15.00", "interest": "50.25", "principal": "100.00"}
    assert body["payment"]["amount"] == "170.18"
    assert body["payment"]["paid_on"] == TODAY.isoformat()
    assert (body["payment"]["method"], body["payment"]["reference"]) == ("bank_transfer", reference)

    summary = body["loan"]
    left = rows[1].principal - D("100.00")
    assert summary["status"] == "overdue"
    assert summary["days_past_due"] == 10
    assert Decimal(summary["penalty_interest"]) == 0  # booked and paid up to today
    assert Decimal(summary["overdue_amount"]) == left
    assert Decimal(summary["outstanding_principal"]) == D("6000") - rows[0].principal - D("100.00")

    inst = book.instalments(loan.id)[1]
    assert (inst.paid_penalty, inst.penalty_charged, inst.paid_fee, inst.paid_interest, inst.paid_principal) == (
        D("4.93"), D("4.93"), D("15.00"), D("50.25"), D("100.00"))
    assert inst.penalty_accrued_to == TODAY
    assert inst.status.value == "overdue"
    assert inst.settled_on is None
    assert [i.paid_principal for i in book.instalments(loan.id)[2:]] == [0, 0, 0, 0]

    # penalty accrual restarts from today on what is left of the principal
    later = client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS, params={"as_of": "2026-11-30"}).json()
    assert Decimal(later["penalty_interest"]) == penalty(left, 7)

    # exactly one payment and one audit row, by the caller named for the key
    assert book.counts() == {"payments": before["payments"] + 1, "audit_log": before["audit_log"] + 1}
    audit = book.audit_rows("payment.recorded")[-1]
    assert (audit.actor, audit.action, audit.entity_type, audit.entity_id) == (
        "payments", "payment.recorded", "loan", str(loan.id))
    assert audit.detail == {"amount": "170.18", "reference": reference, "allocation": {
        "penalty": "4.93", "fee": "15.00", "interest": "50.25", "principal": "100.00"}}
    listed = client.get(f"/api/v1/loans/{loan.id}/payments", headers=HEADERS).json()
    assert [(p["amount"], p["reference"]) for p in listed] == [("170.18", reference)]


def test_paying_the_overdue_instalment_in_full_flips_it_to_paid(client, book, overdue_loan):
    rows = overdue_loan.rows
    amount = rows[1].total + penalty(rows[1].principal, 10)
    assert amount == D("1040.22")
    resp = pay(client, overdue_loan.id, "1040.22", ref())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert dec(body["allocation"]) == {"penalty": D("4.93"), "fee": 0, "interest": rows[1].interest,
                                       "principal": rows[1].principal}
    assert body["loan"]["status"] == "active"
    assert body["loan"]["days_past_due"] == 0
    assert Decimal(body["loan"]["amount_due"]) == rows[2].total
    insts = book.instalments(overdue_loan.id)
    assert [i.status.value for i in insts] == ["paid", "paid", "pending", "pending", "pending", "pending"]
    assert insts[1].settled_on == TODAY
    assert book.loan_state(overdue_loan.id)["status"] == "active"
    schedule = client.get(f"/api/v1/loans/{overdue_loan.id}/schedule", headers=HEADERS).json()
    assert schedule[1]["status"] == "paid"
    assert Decimal(schedule[1]["paid_amount"]) == amount
    assert Decimal(schedule[1]["amount_outstanding"]) == 0


def test_payment_runs_oldest_instalment_first(client, book, overdue_loan):
    rows = overdue_loan.rows
    resp = pay(client, overdue_loan.id, "1240.22", ref())
    assert resp.status_code == 201, resp.text
    # 1040.22 settles instalment 2; the other 200.00 goes to instalment 3: interest 40.40, then principal 159.60
    assert dec(resp.json()["allocation"]) == {
        "penalty": D("4.93"), "fee": 0, "interest": rows[1].interest + rows[2].interest,
        "principal": rows[1].principal + D("200.00") - rows[2].interest}
    insts = book.instalments(overdue_loan.id)
    assert (insts[2].paid_interest, insts[2].paid_principal) == (D("40.40"), D("159.60"))
    assert [i.status.value for i in insts] == ["paid", "paid", "partial", "pending", "pending", "pending"]


def test_paying_everything_settles_the_loan(client, book, overdue_loan):
    rows = overdue_loan.rows
    total = sum(r.total for r in rows[1:]) + penalty(rows[1].principal, 10)
    summary = client.get(f"/api/v1/loans/{overdue_loan.id}", headers=HEADERS).json()
    assert Decimal(summary["total_outstanding"]) == total
    resp = pay(client, overdue_loan.id, str(total), ref())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert dec(body["allocation"]) == {"penalty": D("4.93"), "fee": 0, "interest": sum(r.interest for r in rows[1:]),
                                       "principal": D("6000") - rows[0].principal}
    assert body["loan"]["status"] == "settled"
    assert Decimal(body["loan"]["total_outstanding"]) == 0
    assert body["loan"]["instalments_remaining"] == 0
    assert body["loan"]["next_due_date"] is None
    state = book.loan_state(overdue_loan.id)
    assert state["status"] == "settled"
    assert state["settled_on"] == TODAY
    assert {i[7] for i in state["instalments"]} == {"paid"}

    # a settled loan takes no more payments and has no payoff quote; nothing is written
    before = book.counts()
    resp = pay(client, overdue_loan.id, "1.00", ref())
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "loan_settled"
    assert resp.json()["error"]["message_zh"] and resp.json()["error"]["message_en"]
    assert book.counts() == before
    assert book.loan_state(overdue_loan.id) == state
    assert client.get(f"/api/v1/loans/{overdue_loan.id}/payoff", headers=HEADERS).status_code == 409


def test_backdated_payment(client, book, overdue_loan):
    rows = overdue_loan.rows
    # paid on 2026-11-18, 5 days after the due date: 5 days of penalty, then interest, then principal
    pen5 = penalty(rows[1].principal, 5)
    assert pen5 == D("2.46")
    resp = pay(client, overdue_loan.id, str(pen5 + rows[1].interest + D("300.00")), ref(), paid_on="2026-11-18")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["payment"]["paid_on"] == "2026-11-18"
    assert dec(body["allocation"]) == {"penalty": pen5, "fee": 0, "interest": rows[1].interest, "principal": D("300.00")}
    # from the 18th, penalty accrues on the 685.04 left: 5 more days to today
    left = rows[1].principal - D("300.00")
    assert Decimal(body["loan"]["penalty_interest"]) == penalty(left, 5)
    assert body["loan"]["days_past_due"] == 10
    assert body["loan"]["status"] == "overdue"


def test_payment_dated_before_the_due_date_leaves_an_overdue_loan_overdue(client, book, overdue_loan):
    """Statuses after a payment describe today, not the (earlier) payment date."""
    rows = overdue_loan.rows
    resp = pay(client, overdue_loan.id, "100.00", ref(), paid_on="2026-11-10")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert dec(body["allocation"]) == {"penalty": 0, "fee": 0, "interest": rows[1].interest,
                                       "principal": D("100.00") - rows[1].interest}
    left = rows[1].principal - (D("100.00") - rows[1].interest)
    assert body["loan"]["days_past_due"] == 10
    assert Decimal(body["loan"]["penalty_interest"]) == penalty(left, 10)
    assert body["loan"]["status"] == "overdue"
    state = book.loan_state(overdue_loan.id)
    assert state["status"] == "overdue"
    assert state["instalments"][1][7] == "overdue"


# --------------------------------------------------------------------------- rejected payments write nothing

def _total_outstanding(loan) -> Decimal:
    return sum(r.total for r in loan.rows[1:]) + penalty(loan.rows[1].principal, 10)


BAD = {
    "negative amount": ({"amount": "-5.00"}, 422, "invalid_input"),
    "zero amount": ({"amount": "0.00"}, 422, "invalid_input"),
    "three decimals (string)": ({"amount": "100.005"}, 422, "invalid_input"),
    "three decimals (number)": ({"amount": 100.005}, 422, "invalid_input"),
    "not a number": ({"amount": "abc"}, 422, "invalid_input"),
    "unknown method": ({"method": "bitcoin"}, 422, "invalid_input"),
    "extra field": ({"note": "x"}, 422, "invalid_input"),
    "missing reference": ({"reference": None}, 422, "invalid_input"),
    "bad reference": ({"reference": "REF 0001"}, 422, "invalid_input"),
    "future date": ({"paid_on": (TODAY + timedelta(days=1)).isoformat()}, 422, "date_in_future"),
    "bad date": ({"paid_on": "2026-02-30"}, 422, "invalid_input"),
    "over outstanding": ("over", 422, "amount_exceeds_outstanding"),
    "duplicate reference": ("dup", 409, "duplicate_reference"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_payment_is_rejected_and_nothing_is_written(client, book, overdue_loan, case):
    change, status, code = BAD[case]
    existing_ref = ref("DUP")
    assert pay(client, overdue_loan.id, "10.00", existing_ref).status_code == 201  # an earlier payment

    payload = {"amount": "50.00", "method": "alipay", "reference": ref()}
    if change == "over":
        outstanding = _total_outstanding(overdue_loan) - D("10.00") + D("0.01")  # the earlier 10.00 paid penalty
        payload["amount"] = str(outstanding)
        # exactly the outstanding total would be accepted: one cent more is not
        current = Decimal(client.get(f"/api/v1/loans/{overdue_loan.id}", headers=HEADERS).json()["total_outstanding"])
        assert Decimal(payload["amount"]) == current + D("0.01")
    elif change == "dup":
        payload["reference"] = existing_ref
    else:
        payload.update(change)
        payload = {k: v for k, v in payload.items() if v is not None}

    before_counts = book.counts()
    before_state = book.loan_state(overdue_loan.id)
    audit_before = [(a.id, a.action) for a in book.audit_rows()]

    resp = client.post(f"/api/v1/loans/{overdue_loan.id}/payments", headers=PAYMENTS, json=payload)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert err["message_zh"] and err["message_en"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message_zh"])

    assert book.counts() == before_counts
    assert book.loan_state(overdue_loan.id) == before_state
    assert [(a.id, a.action) for a in book.audit_rows()] == audit_before


def test_duplicate_reference_on_another_loan_is_rejected(client, book, cust):
    a = book.loan(cust.id, "3000", "0.12", 3, date(2026, 11, 1), product="xiaofeidai")
    b = book.loan(cust.id, "3000", "0.12", 3, date(2026, 11, 1), product="xiaofeidai")
    r = ref("XLOAN")
    assert pay(client, a.id, "20.00", r).status_code == 201
    before = book.counts()
    state = book.loan_state(b.id)
    resp = pay(client, b.id, "20.00", r)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "duplicate_reference"
    assert book.counts() == before
    assert book.loan_state(b.id) == state


def test_non_json_body_is_422(client, overdue_loan, book):
    before = book.counts()
    resp = client.post(f"/api/v1/loans/{overdue_loan.id}/payments", headers={**PAYMENTS, "content-type": "application/json"},
                       content=b"amount=10")
    assert resp.status_code == 422
    assert resp.json()["error"]["message_en"]
    assert book.counts() == before


def test_payment_is_acknowledged_only_after_it_is_committed(app, book, overdue_loan):
    """If the transaction cannot be committed, the caller must not get a 201 (and nothing is stored)."""
    def refuse_commit(session):
        raise RuntimeError("simulated commit failure")

    before_counts = book.counts()
    before_state = book.loan_state(overdue_loan.id)
    event.listen(app.state.sessionmaker, "before_commit", refuse_commit)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            resp = pay(c, overdue_loan.id, "10.00", ref())
    finally:
        event.remove(app.state.sessionmaker, "before_commit", refuse_commit)
    assert resp.status_code == 500, resp.text
    assert resp.json()["error"]["code"] == "internal_error"
    assert book.counts() == before_counts
    assert book.loan_state(overdue_loan.id) == before_state
