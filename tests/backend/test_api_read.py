"""Read API: identities, customers, loan figures, schedule and payoff quotes, with exact amounts.

Expected figures are worked out here from the loan's schedule (its input) with the formulas of
config/business.yml: penalty = unpaid principal * rate * 1.5 / 360 * days, accrual = principal not
yet due * rate / 360 * days (capped at the period's interest), early settlement fee = rate of the
product * principal repaid early.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from backend.models import Channel, ChannelIdentity
from testkit import HEADERS, PAYMENTS, TODAY, D, q


def get(client, path, **params):
    return client.get(path, headers=HEADERS, params=params or None)


def amounts(body: dict, *keys) -> dict:
    return {k: Decimal(body[k]) for k in keys}


def assert_error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert isinstance(err["message_zh"], str) and err["message_zh"]
    assert isinstance(err["message_en"], str) and err["message_en"]
    # the Chinese message really is Chinese
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message_zh"])
    if code:
        assert err["code"] == code
    return err


def penalty(principal: Decimal, rate: Decimal, days: int) -> Decimal:
    return q(principal * rate * Decimal("1.5") / 360 * days) if days > 0 else Decimal("0.00")


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cust(book):
    return book.customer("欧阳明华")


@pytest.fixture(scope="module")
def overdue_loan(book, cust):
    """6000 @ 12%, 6 months from 2026-09-13, first instalment paid; the second (due 2026-11-13)
    is 10 days overdue on 2026-11-23."""
    return book.loan(cust.id, "6000", "0.12", 6, date(2026, 9, 13), product="xinyongdai", paid=1)


@pytest.fixture(scope="module")
def current_loan(book, cust):
    """24000 @ 9.99%, 12 months from 2026-10-03 (经营贷, 2% fee), first instalment paid; next due 2026-12-03."""
    return book.loan(cust.id, "24000", "0.0999", 12, date(2026, 10, 3), product="jingyingdai", paid=1)


# --------------------------------------------------------------------------- identities

def test_identity_lookup_by_sms(client, cust):
    resp = get(client, f"/api/v1/identities/sms/{cust.sms_id}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    masked = cust.phone[:3] + "****" + cust.phone[-4:]
    assert body == {
        "channel": "sms", "external_id_masked": masked, "customer_id": cust.id, "verified": True,
        "status": "active", "opted_out": False, "last_inbound_at": None,
        "customer": {
            "id": cust.id, "name": "欧阳明华", "phone_masked": masked, "id_last4": cust.id_number[-4:],
            "preferred_channel": "sms", "consent_reminders": True, "consent_marketing": False,
            "card_bank": "招商银行", "card_last4": "6789", "risk_tier": "low", "value_tier": "basic",
        },
    }


def test_identity_lookup_by_web_and_wechat(client, cust):
    web = get(client, f"/api/v1/identities/web/{cust.web_id}").json()
    assert (web["channel"], web["customer_id"], web["verified"], web["status"]) == ("web", cust.id, True, "active")
    assert web["external_id_masked"] == cust.web_id
    assert web["customer"]["id"] == cust.id

    wx = get(client, f"/api/v1/identities/wechat/{cust.wechat_id}").json()
    assert (wx["channel"], wx["customer_id"], wx["verified"]) == ("wechat", cust.id, False)
    assert wx["external_id_masked"] == cust.wechat_id[:4] + "****" + cust.wechat_id[-4:]
    assert cust.wechat_id not in str(wx)


def test_identity_lookup_is_per_channel(client, cust):
    # the sms identity is not a web identity, and the bare phone is not the stored sms identity
    assert_error(get(client, f"/api/v1/identities/web/{cust.sms_id}"), 404, "not_found")
    assert_error(get(client, f"/api/v1/identities/wechat/{cust.web_id}"), 404, "not_found")


def test_identity_without_customer(client, app):
    with app.state.sessionmaker() as db:
        db.add(ChannelIdentity(channel=Channel.wechat, external_id="oUNLINKEDopenid0000000000001", customer_id=None))
        db.commit()
    body = get(client, "/api/v1/identities/wechat/oUNLINKEDopenid0000000000001").json()
    assert body["customer_id"] is None
    assert body["customer"] is None
    assert body["verified"] is False
    assert body["external_id_masked"] == "oUNL****0001"


def test_unknown_identity_and_channel_are_404_in_both_languages(client):
    err = assert_error(get(client, "/api/v1/identities/sms/+8613000000000"), 404, "not_found")
    assert (err["message_zh"], err["message_en"]) == ("未找到该渠道身份", "Channel identity not found")
    err = assert_error(get(client, "/api/v1/identities/qq/12345"), 404, "not_found")
    assert (err["message_zh"], err["message_en"]) == ("未找到该渠道", "Channel not found")


def test_unknown_customer_is_404(client):
    for path in ("/api/v1/customers/987654", "/api/v1/customers/987654/loans"):
        err = assert_error(get(client, path), 404, "not_found")
        assert (err["message_zh"], err["message_en"]) == ("未找到该客户", "Customer not found")


def test_unknown_loan_is_404_on_every_loan_route(client):
    for suffix in ("", "/schedule", "/payments", "/overdue", "/payoff"):
        err = assert_error(get(client, f"/api/v1/loans/987654{suffix}"), 404, "not_found")
        assert (err["message_zh"], err["message_en"]) == ("未找到该笔借款", "Loan not found")
    resp = client.post("/api/v1/loans/987654/payments", headers=PAYMENTS,
                       json={"amount": "10.00", "method": "alipay", "reference": "NOLOAN0001"})
    err = assert_error(resp, 404, "not_found")
    assert err["message_en"] == "Loan not found"


def test_unknown_route_is_404_with_messages(client):
    assert_error(client.get("/api/v1/nothing-here", headers=HEADERS), 404)


# --------------------------------------------------------------------------- no personal numbers

def test_no_response_contains_the_full_phone_or_id_number(client, book):
    c = book.customer("司马相如")
    loan = book.loan(c.id, "8000", "0.18", 6, date(2026, 8, 20), product="xinyongdai", paid=2)
    pay = client.post(f"/api/v1/loans/{loan.id}/payments", headers=PAYMENTS,
                      json={"amount": "100.00", "method": "wechat_pay", "reference": f"PII{loan.id:08d}"})
    assert pay.status_code == 201, pay.text
    texts = {"POST payments": pay.text}
    paths = [
        f"/api/v1/identities/sms/{c.sms_id}", f"/api/v1/identities/web/{c.web_id}",
        f"/api/v1/identities/wechat/{c.wechat_id}", f"/api/v1/customers/{c.id}", f"/api/v1/customers/{c.id}/loans",
        f"/api/v1/loans/{loan.id}", f"/api/v1/loans/{loan.id}/schedule", f"/api/v1/loans/{loan.id}/payments",
        f"/api/v1/loans/{loan.id}/overdue", f"/api/v1/loans/{loan.id}/payoff",
    ]
    for path in paths:
        resp = get(client, path)
        assert resp.status_code == 200, (path, resp.text)
        texts[path] = resp.text
    for where, text in texts.items():
        assert c.phone not in text, where
        assert c.id_number not in text, where
        assert c.id_number[:14] not in text, where  # not even without the last four
        assert c.id_number[6:14] not in text, where  # nor the date of birth
    # the masked forms are what is shown
    assert c.phone[:3] + "****" + c.phone[-4:] in texts[f"/api/v1/customers/{c.id}"]


# --------------------------------------------------------------------------- loan figures

def test_loan_summary_one_instalment_ten_days_overdue(client, overdue_loan):
    rows, rate = overdue_loan.rows, Decimal("0.12")
    p = [r.principal for r in rows]
    i = [r.interest for r in rows]
    pen = penalty(p[1], rate, 10)
    # 6000 @ 1%/month: payment 1035.29; row 1 interest 60.00 / principal 975.29; row 2 interest 50.25 / principal 985.04
    assert (p[0], i[0], p[1], i[1]) == (D("975.29"), D("60.00"), D("985.04"), D("50.25"))
    assert pen == D("4.93")  # 985.04 * 0.12 * 1.5 / 360 * 10 = 4.925166... -> 4.93

    resp = get(client, f"/api/v1/loans/{overdue_loan.id}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["id"] == overdue_loan.id
    assert body["loan_no_last4"] == overdue_loan.loan_no[-4:]
    assert (body["product"], body["product_name"]) == ("xinyongdai", "信用贷")
    assert (body["principal"], body["annual_rate"], body["term_months"]) == ("6000.00", "0.120000", 6)
    assert body["start_date"] == "2026-09-13"
    assert body["as_of"] == TODAY.isoformat()
    assert body["status"] == "overdue"
    assert body["days_past_due"] == 10
    assert body["next_due_date"] == "2026-12-13"
    assert body["instalments_remaining"] == 5
    assert amounts(body, "penalty_interest", "overdue_amount", "outstanding_principal", "next_instalment_amount",
                   "amount_due", "total_outstanding") == {
        "penalty_interest": pen,
        "overdue_amount": p[1] + i[1] + pen,
        "outstanding_principal": D("6000") - p[0],
        "next_instalment_amount": p[2] + i[2],
        "amount_due": p[1] + i[1] + pen + p[2] + i[2],
        "total_outstanding": sum(p[1:]) + sum(i[1:]) + pen,
    }
    # amounts are strings with exactly two decimals
    assert body["penalty_interest"] == "4.93"
    assert body["overdue_amount"] == "1040.22"


def test_loan_summary_as_of_a_later_date(client, overdue_loan):
    rows, rate = overdue_loan.rows, Decimal("0.12")
    body = get(client, f"/api/v1/loans/{overdue_loan.id}", as_of="2026-12-20").json()
    # instalment 2: 37 days overdue; instalment 3 (due 12-13): 7 days
    pen = penalty(rows[1].principal, rate, 37) + penalty(rows[2].principal, rate, 7)
    assert body["as_of"] == "2026-12-20"
    assert body["days_past_due"] == 37
    assert Decimal(body["penalty_interest"]) == pen
    assert Decimal(body["overdue_amount"]) == rows[1].total + rows[2].total + pen
    assert body["next_due_date"] == "2027-01-13"


def test_overdue_endpoint(client, overdue_loan):
    rows = overdue_loan.rows
    pen = penalty(rows[1].principal, Decimal("0.12"), 10)
    body = get(client, f"/api/v1/loans/{overdue_loan.id}/overdue").json()
    assert body["loan_id"] == overdue_loan.id
    assert (body["is_overdue"], body["days_past_due"], body["overdue_instalments"]) == (True, 10, 1)
    assert amounts(body, "overdue_principal", "overdue_interest", "penalty_interest", "overdue_amount") == {
        "overdue_principal": rows[1].principal, "overdue_interest": rows[1].interest,
        "penalty_interest": pen, "overdue_amount": rows[1].total + pen,
    }


def test_current_loan_is_not_overdue(client, current_loan):
    body = get(client, f"/api/v1/loans/{current_loan.id}").json()
    rows = current_loan.rows
    assert body["status"] == "active"
    assert body["days_past_due"] == 0
    assert body["next_due_date"] == "2026-12-03"
    assert Decimal(body["penalty_interest"]) == Decimal("0")
    assert Decimal(body["overdue_amount"]) == Decimal("0")
    assert Decimal(body["amount_due"]) == rows[1].total
    assert Decimal(body["outstanding_principal"]) == D("24000") - rows[0].principal
    ov = get(client, f"/api/v1/loans/{current_loan.id}/overdue").json()
    assert (ov["is_overdue"], ov["days_past_due"], ov["overdue_instalments"]) == (False, 0, 0)


def test_customer_loans_lists_both_loans(client, cust, overdue_loan, current_loan):
    body = get(client, f"/api/v1/customers/{cust.id}/loans").json()
    assert [b["id"] for b in body] == sorted([overdue_loan.id, current_loan.id])
    by_id = {b["id"]: b for b in body}
    assert by_id[overdue_loan.id]["days_past_due"] == 10
    assert by_id[current_loan.id]["days_past_due"] == 0


# --------------------------------------------------------------------------- schedule

def test_schedule_returns_the_amortized_rows(client, overdue_loan):
    rows = overdue_loan.rows
    pen = penalty(rows[1].principal, Decimal("0.12"), 10)
    body = get(client, f"/api/v1/loans/{overdue_loan.id}/schedule").json()
    assert len(body) == 6
    assert [(b["seq"], b["due_date"], Decimal(b["principal"]), Decimal(b["interest"])) for b in body] == [
        (r.seq, r.due_date.isoformat(), r.principal, r.interest) for r in rows]
    assert [b["due_date"] for b in body] == ["2026-10-13", "2026-11-13", "2026-12-13", "2027-01-13",
                                             "2027-02-13", "2027-03-13"]
    assert all(Decimal(b["total"]) == r.total and Decimal(b["fee"]) == 0 for b, r in zip(body, rows))
    assert [b["status"] for b in body] == ["paid", "overdue", "pending", "pending", "pending", "pending"]
    assert [b["days_past_due"] for b in body] == [0, 10, 0, 0, 0, 0]
    assert Decimal(body[0]["paid_amount"]) == rows[0].total
    assert Decimal(body[0]["amount_outstanding"]) == 0
    assert Decimal(body[1]["penalty_interest"]) == pen
    assert Decimal(body[1]["amount_outstanding"]) == rows[1].total + pen
    assert [Decimal(b["amount_outstanding"]) for b in body[2:]] == [r.total for r in rows[2:]]
    assert sum(Decimal(b["principal"]) for b in body) == Decimal("6000.00")


# --------------------------------------------------------------------------- payoff quotes

def _payoff(client, loan_id, on: date | None = None):
    return get(client, f"/api/v1/loans/{loan_id}/payoff", **({"date": on.isoformat()} if on else {}))


def _check_quote(body, principal, interest, pen, fees, early_fee):
    assert amounts(body, "principal", "interest", "penalty_interest", "fees", "early_settlement_fee", "total") == {
        "principal": principal, "interest": interest, "penalty_interest": pen, "fees": fees,
        "early_settlement_fee": early_fee, "total": principal + interest + pen + fees + early_fee,
    }


def test_payoff_today_for_a_current_loan(client, current_loan):
    rows, rate = current_loan.rows, Decimal("0.0999")
    outstanding = D("24000") - rows[0].principal
    # period started on the last due date 2026-11-03: 20 days of interest on the whole remaining principal
    accrued = min(q(outstanding * rate / 360 * 20), rows[1].interest)
    early_fee = q(outstanding * Decimal("0.02"))  # 经营贷: 2%, only 1 of 6 instalments paid so not waived
    body = _payoff(client, current_loan.id).json()
    assert body["settle_on"] == TODAY.isoformat()
    assert body["loan_id"] == current_loan.id
    _check_quote(body, outstanding, accrued, D("0"), D("0"), early_fee)
    # 24000 - 1910.07 = 22089.93; 22089.93 * 0.0999 / 360 * 20 = 122.5991... -> 122.60 (below the 183.90 cap)
    assert (outstanding, accrued, rows[1].interest, early_fee) == (D("22089.93"), D("122.60"), D("183.90"), D("441.80"))
    # today explicitly is the same quote
    assert _payoff(client, current_loan.id, TODAY).json() == body


def test_payoff_on_a_future_date(client, current_loan):
    rows, rate = current_loan.rows, Decimal("0.0999")
    outstanding = D("24000") - rows[0].principal
    body = _payoff(client, current_loan.id, date(2026, 12, 2)).json()
    assert body["settle_on"] == "2026-12-02"
    _check_quote(body, outstanding, min(q(outstanding * rate / 360 * 29), rows[1].interest), D("0"), D("0"),
                 q(outstanding * Decimal("0.02")))

    # on the next due date itself: instalment 2's interest is due in full, nothing accrues on the rest yet
    body = _payoff(client, current_loan.id, date(2026, 12, 3)).json()
    later_principal = sum(r.principal for r in rows[2:])
    _check_quote(body, outstanding, rows[1].interest, D("0"), D("0"), q(later_principal * Decimal("0.02")))


def test_payoff_counts_interest_already_paid_for_the_current_period(client, book, cust):
    """Interest for the running period is accrued to the settlement day (capped at the instalment's
    scheduled interest); what the customer already paid towards that instalment's interest is deducted,
    not charged again."""
    loan = book.loan(cust.id, "24000", "0.0999", 12, date(2026, 10, 3), product="jingyingdai", paid=1)
    rows, rate = loan.rows, D("0.0999")
    outstanding = D("24000") - rows[0].principal
    accrued = q(outstanding * rate / 360 * 20)
    assert accrued == D("122.60")

    # 100.00 paid ahead: it goes to instalment 2's interest (nothing is overdue)
    resp = client.post(f"/api/v1/loans/{loan.id}/payments", headers=PAYMENTS,
                       json={"amount": "100.00", "method": "bank_transfer", "reference": f"PREPAY{loan.id:06d}"})
    assert resp.status_code == 201, resp.text
    assert {k: Decimal(v) for k, v in resp.json()["allocation"].items()} == {
        "penalty": 0, "fee": 0, "interest": D("100.00"), "principal": 0}
    body = _payoff(client, loan.id).json()
    # 20 days of interest (122.60) of which 100.00 is already paid: 22.60 left, not the 83.90 still unpaid on the schedule
    _check_quote(body, outstanding, accrued - D("100.00"), D("0"), D("0"), q(outstanding * D("0.02")))

    # the rest of instalment 2's interest and 50.00 of its principal: more interest paid than accrued -> none due
    resp = client.post(f"/api/v1/loans/{loan.id}/payments", headers=PAYMENTS,
                       json={"amount": str(rows[1].interest - D("100.00") + D("50.00")), "method": "bank_transfer",
                             "reference": f"PREPAY{loan.id:06d}B"})
    assert resp.status_code == 201, resp.text
    body = _payoff(client, loan.id).json()
    _check_quote(body, outstanding - D("50.00"), D("0"), D("0"), D("0"), q((outstanding - D("50.00")) * D("0.02")))


def test_payoff_of_an_overdue_loan_includes_penalty(client, overdue_loan):
    rows, rate = overdue_loan.rows, Decimal("0.12")
    later = sum(r.principal for r in rows[2:])
    body = _payoff(client, overdue_loan.id).json()
    _check_quote(
        body,
        principal=D("6000") - rows[0].principal,
        interest=rows[1].interest + min(q(later * rate / 360 * 10), rows[2].interest),
        pen=penalty(rows[1].principal, rate, 10),
        fees=D("0"),
        early_fee=q(later * Decimal("0.01")),  # 信用贷 1%
    )


def test_payoff_fee_waived_after_enough_instalments(client, book, cust):
    # 经营贷 waives the early settlement fee once 6 instalments are paid
    loan = book.loan(cust.id, "12000", "0.12", 12, date(2026, 5, 10), product="jingyingdai", paid=6)
    rows = loan.rows
    outstanding = sum(r.principal for r in rows[6:])
    body = _payoff(client, loan.id).json()
    _check_quote(body, outstanding, min(q(outstanding * D("0.12") / 360 * 13), rows[6].interest), D("0"), D("0"),
                 D("0"))
    loan5 = book.loan(cust.id, "12000", "0.12", 12, date(2026, 6, 10), product="jingyingdai", paid=5)
    out5 = sum(r.principal for r in loan5.rows[5:])
    assert Decimal(_payoff(client, loan5.id).json()["early_settlement_fee"]) == q(out5 * D("0.02"))


def test_payoff_date_in_the_past_is_422(client, current_loan):
    err = assert_error(_payoff(client, current_loan.id, TODAY - timedelta(days=1)), 422, "date_in_past")
    assert err["message_en"] == "The settlement date cannot be in the past"


def test_payoff_after_maturity_is_422(client, current_loan):
    last_due = current_loan.rows[-1].due_date
    assert last_due == date(2027, 10, 3)
    assert_error(_payoff(client, current_loan.id, last_due + timedelta(days=1)), 422, "date_after_maturity")
    assert _payoff(client, current_loan.id, last_due).status_code == 200


def test_payoff_of_a_settled_loan_is_409(client, book, cust):
    loan = book.loan(cust.id, "3000", "0.12", 3, date(2026, 5, 1), product="xinyongdai", paid=3)
    assert get(client, f"/api/v1/loans/{loan.id}").json()["status"] == "settled"
    err = assert_error(_payoff(client, loan.id), 409, "loan_settled")
    assert err["message_zh"] == "该笔借款已结清，无需提前还款"


def test_payoff_with_a_malformed_date_is_422(client, current_loan):
    assert_error(get(client, f"/api/v1/loans/{current_loan.id}/payoff", date="2026-13-01"), 422, "invalid_input")
