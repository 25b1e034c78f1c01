"""Every /api/v1 route needs a valid X-API-Key; health and the API docs do not."""
from __future__ import annotations

import re
from datetime import date

import pytest

from testkit import HEADERS, TEST_API_KEYS

EXPECTED_ROUTES = {
    ("GET", "/api/v1/identities/{channel}/{external_id}"),
    ("GET", "/api/v1/customers/{customer_id}"),
    ("GET", "/api/v1/customers/{customer_id}/loans"),
    ("GET", "/api/v1/loans/{loan_id}"),
    ("GET", "/api/v1/loans/{loan_id}/schedule"),
    ("GET", "/api/v1/loans/{loan_id}/payments"),
    ("GET", "/api/v1/loans/{loan_id}/overdue"),
    ("GET", "/api/v1/loans/{loan_id}/payoff"),
    ("POST", "/api/v1/loans/{loan_id}/payments"),
    ("POST", "/api/v1/segments/recompute"),
}

BAD_KEYS = [
    None,  # header missing
    "",  # empty
    "wrong-key",
    "actions",  # the caller's name is not its key
    "test-key ",  # near miss
    "TEST-KEY",
]


def _api_routes(app) -> list[tuple[str, str]]:
    """Every /api/v1 operation the app serves, read from its OpenAPI description."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        if path.startswith("/api/v1"):
            out.extend((method.upper(), path) for method in ops if method in {"get", "post", "put", "patch", "delete"})
    return sorted(out)


@pytest.fixture(scope="module")
def target(book):
    cust = book.customer("赵敏")
    loan = book.loan(cust.id, "6000", "0.12", 6, date(2026, 9, 13), paid=1)
    return cust, loan


def _fill(path: str, cust, loan, **extra) -> str:
    known = {"channel": "sms", "external_id": cust.sms_id, "customer_id": cust.id, "loan_id": loan.id,
             "conversation": f"sms:{cust.sms_id}", **extra}
    return re.sub(r"\{(\w+)\}", lambda m: str(known.get(m.group(1), "1")), path)


def _body(method: str, path: str) -> dict | None:
    if method == "POST" and path.endswith("/payments"):
        return {"amount": "10.00", "method": "alipay", "reference": "AUTHPROBE01"}
    return None


def test_every_expected_route_exists(app):
    assert EXPECTED_ROUTES <= set(_api_routes(app))


@pytest.mark.parametrize("bad_key", BAD_KEYS, ids=["missing", "empty", "wrong", "caller-name", "trailing-space", "upper"])
def test_every_api_route_rejects_missing_or_wrong_key(app, client, book, target, bad_key):
    cust, loan = target
    before = book.counts()
    state_before = book.loan_state(loan.id)
    headers = {} if bad_key is None else {"X-API-Key": bad_key}
    routes = _api_routes(app)
    assert len(routes) >= len(EXPECTED_ROUTES)
    for method, path in routes:
        resp = client.request(method, _fill(path, cust, loan), headers=headers, json=_body(method, path))
        assert resp.status_code == 401, (method, path, resp.status_code, resp.text)
        err = resp.json()["error"]
        assert err["code"] == "unauthorized"
        assert err["message_zh"] and err["message_en"]
    # a rejected call writes nothing (the payment POST and the segment job included)
    assert book.counts() == before
    assert book.loan_state(loan.id) == state_before


def test_unauthorized_even_when_the_resource_does_not_exist(client):
    # 401 wins over 404 / 422: an unauthenticated caller learns nothing about what exists
    for path in ("/api/v1/loans/999999", "/api/v1/customers/999999", "/api/v1/identities/sms/+8613000000000",
                 "/api/v1/loans/not-a-number"):
        assert client.get(path).status_code == 401, path
    assert client.post("/api/v1/loans/999999/payments", json={"bogus": 1}).status_code == 401


def test_valid_key_is_accepted_on_every_read_route(app, client, book, target):
    cust, loan = target
    notice_id = book.outreach_notice(cust.id, loan.id)
    client.post("/api/v1/handoffs", headers=HEADERS, json={"conversation": f"sms:{cust.sms_id}", "channel": "sms",
                                                           "reason": "request_human", "summary": "auth probe"})
    complaint = client.post("/api/v1/complaints", headers=HEADERS, json={
        "conversation": f"sms:{cust.sms_id}", "channel": "sms", "customer_id": cust.id, "category": "other",
        "description": "auth probe"})
    assert complaint.status_code in (200, 201), complaint.text
    plan = client.post("/api/v1/plan-requests", headers=HEADERS, json={
        "conversation": f"sms:{cust.sms_id}", "channel": "sms", "customer_id": cust.id, "loan_id": loan.id,
        "reason_category": "other", "plan_type": "instalment", "months": 12})
    assert plan.status_code == 201, plan.text
    for method, path in _api_routes(app):
        if method != "GET":
            continue
        reference = plan.json()["reference"] if path.startswith("/api/v1/plan-requests/") else complaint.json()["reference"]
        query = next((q for end, q in (("/plan-quote", "?plan_type=instalment&months=12"),
                                       ("/verification/status", f"?conversation=sms:{cust.sms_id}"))
                      if path.endswith(end)), "")
        url = _fill(path, cust, loan, reference=reference, notice_id=notice_id) + query
        # the key of a caller whose scopes include the route (tests/backend/test_api_scopes.py: which)
        resp = next(r for r in (client.get(url, headers={"X-API-Key": k}) for k in TEST_API_KEYS.values())
                    if r.status_code != 403)
        assert resp.status_code == 200, (path, resp.text)


def test_health_and_docs_need_no_key(client):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/api/v1/loans/{loan_id}/payoff" in spec.json()["paths"]
