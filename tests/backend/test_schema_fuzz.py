"""Schema robustness: generated requests (Schemathesis, from the app's own OpenAPI description) to every
service operation with the bot's key, valid and invalid data alike, get no server error and every
response matches its declared schema (``date-time`` values carry their offset). Bounded: a few
examples per operation and mode, on SQLite and on PostgreSQL (the 32-bit integer columns).

The cases Schemathesis found before are pinned below too: an id beyond the database's integers, a
naive ``last_inbound_at`` and a body that is a JSON array.
"""
from __future__ import annotations

from datetime import datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from testkit import HEADERS, ok

EXAMPLES = 8  # per operation and generation mode


def test_generated_requests_get_no_server_error_and_match_the_schema(app, book):
    cust = book.customer("模糊测试")
    book.loan(cust.id, "6000", "0.12", 6, datetime(2026, 9, 13).date(), paid=1)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    calls = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def run(case):
                nonlocal calls
                calls += 1
                try:
                    case.call_and_validate(headers=HEADERS, checks=[not_a_server_error, response_schema_conformance])
                except Exception as exc:  # noqa: BLE001 - collected, reported all together
                    failures.append(f"{operation.label} [{mode.value}]: {type(exc).__name__}: {str(exc)[:300]}")  # noqa: B023 - run() is called in this iteration

            try:
                run()
            except Unsatisfiable:  # no invalid request to make (an operation without any input)
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert failures == []
    assert calls >= len(operations) * EXAMPLES  # the operations were really called


@pytest.mark.parametrize("path", [
    "/api/v1/customers/2147483648", "/api/v1/loans/9223372036854775808", "/api/v1/loans/99999999999999999999999/payoff",
    "/api/v1/customers/0/loans", "/api/v1/customers/-1/complaints",
])
def test_an_id_beyond_the_database_is_422_not_a_server_error(client, path):
    resp = client.get(path, headers=HEADERS)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid_input"


def test_a_body_number_beyond_the_database_is_422(client):
    resp = client.post("/api/v1/identities/sms/+8613800000000/bind", headers=HEADERS, json={"customer_id": 2**63})
    assert resp.status_code == 422, resp.text
    resp = client.post("/api/v1/handoffs", headers=HEADERS, json={
        "conversation": "sms:+8613800000009", "channel": "sms", "reason": "request_human", "summary": "x",
        "customer_id": 2**40})
    assert resp.status_code in (404, 422), resp.text


@pytest.mark.parametrize("body", [[], [{"conversation": "sms:+86138"}], "text", 7, None])
def test_a_body_of_the_wrong_type_is_422(client, body):
    for path in ("/api/v1/handoffs", "/api/v1/complaints", "/api/v1/plan-requests", "/api/v1/channels/inbound"):
        resp = client.post(path, headers=HEADERS, json=body)
        assert resp.status_code == 422, (path, resp.text)
        assert resp.json()["error"]["code"] == "invalid_input"


def test_date_times_carry_the_business_offset(app, client, book):
    """SQLite keeps no offset: a stored date-time comes back naive and is sent in business time (+08:00)."""
    cust = book.customer("时区")
    ok(client.post("/api/v1/channels/inbound", headers=HEADERS,
                   json={"channel": "sms", "external_id": cust.sms_id, "key": f"tz-{cust.id}"}))
    got = ok(client.get(f"/api/v1/identities/sms/{cust.sms_id}", headers=HEADERS))
    assert got["last_inbound_at"] and datetime.fromisoformat(got["last_inbound_at"]).utcoffset() is not None
    if app.state.engine.dialect.name == "sqlite":  # stored without offset, in business time
        assert got["last_inbound_at"].endswith("+08:00")
