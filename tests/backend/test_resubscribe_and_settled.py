"""Resubscribing to reminders (POST /customers/{id}/resubscribe, consent_reminders on the customer
payload) and the settlement date of a paid-off loan (``settled_on`` on the loan payload)."""
from __future__ import annotations

from datetime import date

from backend.models import Customer
from testkit import HEADERS, PAYMENTS, TODAY, assert_error, audit_since, last_audit_id, ok


def customer(client, customer_id: int) -> dict:
    return ok(client.get(f"/api/v1/customers/{customer_id}", headers=HEADERS))


# --------------------------------------------------------------------------- resubscribe

def test_unsubscribe_then_resubscribe_turns_reminders_back_on(app, client, book):
    cust = book.customer("孙丽")
    assert customer(client, cust.id)["consent_reminders"] is True
    audit_from = last_audit_id(app)
    r = client.post(f"/api/v1/customers/{cust.id}/unsubscribe", headers=HEADERS)
    assert r.status_code == 204 and r.content == b""
    assert (customer(client, cust.id)["consent_reminders"], customer(client, cust.id)["consent_marketing"]) == (
        False, False)
    r = client.post(f"/api/v1/customers/{cust.id}/resubscribe", headers=HEADERS)
    assert r.status_code == 204 and r.content == b""
    shown = customer(client, cust.id)
    # reminders only: marketing consent is not given back by asking for reminders
    assert (shown["consent_reminders"], shown["consent_marketing"]) == (True, False)
    with app.state.sessionmaker() as db:
        assert db.get(Customer, cust.id).consent_reminders is True
    assert audit_since(app, audit_from) == [
        ("actions", "customer.unsubscribed", "customer", str(cust.id), {}),
        ("actions", "customer.resubscribed", "customer", str(cust.id), {"was_subscribed": False}),
    ]


def test_resubscribing_when_already_subscribed_is_harmless(app, client, book):
    cust = book.customer("周杰")
    audit_from = last_audit_id(app)
    assert client.post(f"/api/v1/customers/{cust.id}/resubscribe", headers=HEADERS).status_code == 204
    assert customer(client, cust.id)["consent_reminders"] is True
    assert audit_since(app, audit_from) == [
        ("actions", "customer.resubscribed", "customer", str(cust.id), {"was_subscribed": True})]


def test_resubscribe_unknown_customer_is_404_and_needs_a_key(app, client):
    audit_from = last_audit_id(app)
    assert_error(client.post("/api/v1/customers/999999/resubscribe", headers=HEADERS), 404, "not_found")
    assert client.post("/api/v1/customers/999999/resubscribe").status_code == 401
    assert audit_since(app, audit_from) == []


# --------------------------------------------------------------------------- settled_on

def test_a_loan_paid_in_full_shows_the_day_of_its_last_payment(client, book):
    cust = book.customer("钱多多")
    # 6 instalments from 2026-04-20: all paid, the last one (due 2026-10-20) 5 days late
    loan = book.loan(cust.id, "6000", "0.12", 6, date(2026, 4, 20), paid=6, late_days={6: 5})
    summary = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert (summary["status"], summary["settled_on"], summary["total_outstanding"]) == (
        "settled", "2026-10-25", "0.00")
    listed = ok(client.get(f"/api/v1/customers/{cust.id}/loans", headers=HEADERS))
    assert [(x["id"], x["settled_on"]) for x in listed] == [(loan.id, "2026-10-25")]


def test_an_open_loan_has_no_settled_on(client, book):
    cust = book.customer("赵钱")
    loan = book.loan(cust.id, "6000", "0.12", 6, date(2026, 9, 13), paid=1)
    summary = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert summary["status"] in ("active", "overdue") and summary["settled_on"] is None


def test_paying_off_through_the_api_sets_settled_on_to_the_payment_date(client, book):
    cust = book.customer("孙权")
    loan = book.loan(cust.id, "3000", "0.12", 3, date(2026, 8, 1), paid=2)
    before = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert before["settled_on"] is None
    paid_on = date(2026, 11, 1)  # the last instalment's due date, recorded later (a backdated payment)
    assert paid_on < TODAY
    amount = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS,
                           params={"as_of": paid_on.isoformat()}))["total_outstanding"]
    r = client.post(f"/api/v1/loans/{loan.id}/payments", headers=PAYMENTS, json={
        "amount": amount, "method": "alipay", "reference": f"SETTLE{loan.id:06d}", "paid_on": paid_on.isoformat()})
    assert r.status_code in (200, 201), r.text
    after = ok(client.get(f"/api/v1/loans/{loan.id}", headers=HEADERS))
    assert (after["status"], after["settled_on"], after["total_outstanding"]) == ("settled", "2026-11-01", "0.00")
