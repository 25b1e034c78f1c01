"""Every route of the app, with every caller's key, against the table below: a missing or unknown key is
401, a known key without the route's scope is 403 (``insufficient_scope``), a key with it gets past both.

The table is the specification of who may call what (backend.core.config.API_KEY_PROFILES grants the
scopes; backend.api.deps.scoped checks them). A route that is not in it (or in PUBLIC, or a console
route) fails ``test_every_route_is_classified``: a new route has to be given its callers here.
Staff decisions (plan review/approve/reject, complaint start/resolve/close/extend/clear-reminder-pause,
handoff claim/reassign/notes/close and the first response) are in no table: they are console routes,
made by a signed-in staff member, and no API key reaches them.
"""
from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from backend.core.config import API_KEY_PROFILES
from testkit import TEST_API_KEYS

ACTIONS, CHANNELS, SCHEDULER, PAYMENTS, REPORTS = "actions", "channels", "scheduler", "payments", "reports"
BOT = {ACTIONS}  # the action server (and the Rasa process, same BACKEND_API_KEY)
CONNECTORS = {ACTIONS, CHANNELS}  # the channel connectors (in the Rasa process: the bot's key)

# (method, path) -> the callers (names in BACKEND_API_KEYS) whose key may call it.
TABLE: dict[tuple[str, str], set[str]] = {
    # accounts
    ("GET", "/api/v1/identities/{channel}/{external_id}"): CONNECTORS,
    ("GET", "/api/v1/customers/{customer_id}"): BOT,
    ("GET", "/api/v1/customers/{customer_id}/loans"): BOT,
    ("GET", "/api/v1/loans/{loan_id}"): BOT,
    ("GET", "/api/v1/loans/{loan_id}/schedule"): BOT,
    ("GET", "/api/v1/loans/{loan_id}/payments"): BOT,
    ("GET", "/api/v1/loans/{loan_id}/overdue"): BOT,
    ("GET", "/api/v1/loans/{loan_id}/payoff"): BOT,
    # channel connectors
    ("POST", "/api/v1/channels/inbound"): CONNECTORS,
    ("POST", "/api/v1/channels/inbound/renew"): CONNECTORS,
    ("POST", "/api/v1/channels/inbound/complete"): CONNECTORS,
    ("POST", "/api/v1/channels/inbound/release"): CONNECTORS,
    ("POST", "/api/v1/identities/{channel}/{external_id}/status"): CONNECTORS,
    ("POST", "/api/v1/identities/{channel}/{external_id}/bind"): CONNECTORS,
    ("POST", "/api/v1/sms/{number}/opt-out"): CONNECTORS,
    ("POST", "/api/v1/sms/{number}/opt-in"): CONNECTORS,
    ("POST", "/api/v1/sms/send"): CONNECTORS,
    # the bot's conversation writes
    ("POST", "/api/v1/verification/start"): BOT,
    ("POST", "/api/v1/verification/check"): BOT,
    ("POST", "/api/v1/identities/{channel}/{external_id}/wrong-person"): CONNECTORS,
    ("POST", "/api/v1/customers/{customer_id}/unsubscribe"): BOT,
    ("POST", "/api/v1/customers/{customer_id}/resubscribe"): BOT,
    ("POST", "/api/v1/loans/{loan_id}/promises"): BOT,
    ("GET", "/api/v1/customers/{customer_id}/promises"): BOT,
    ("POST", "/api/v1/conversations/sessions"): BOT,
    # handoff: the bot opens, finds and rates; the queue is a staff list
    ("POST", "/api/v1/handoffs"): BOT,
    ("GET", "/api/v1/handoffs/queue"): {REPORTS},
    ("GET", "/api/v1/handoffs/by-conversation/{conversation}"): BOT,
    ("POST", "/api/v1/handoffs/{case_id}/csat"): BOT,
    # complaints: the bot files and reads; the list is a staff list
    ("POST", "/api/v1/complaints"): BOT,
    ("GET", "/api/v1/complaints"): {REPORTS},
    ("GET", "/api/v1/complaints/{reference}"): BOT,
    ("GET", "/api/v1/customers/{customer_id}/complaints"): BOT,
    ("GET", "/api/v1/customers/{customer_id}/reminder-pause"): BOT,
    # repayment plans: the bot quotes, submits, reads and withdraws; the list is a staff list
    ("GET", "/api/v1/loans/{loan_id}/plan-quote"): BOT,
    ("POST", "/api/v1/plan-requests"): BOT,
    ("GET", "/api/v1/plan-requests"): {REPORTS},
    ("GET", "/api/v1/plan-requests/{reference}"): BOT,
    ("GET", "/api/v1/customers/{customer_id}/plan-requests"): BOT,
    ("POST", "/api/v1/plan-requests/{reference}/withdraw"): BOT,
    # early settlement
    ("POST", "/api/v1/loans/{loan_id}/settlement-intents"): BOT,
    ("GET", "/api/v1/customers/{customer_id}/settlement-intents"): BOT,
    # outreach
    ("GET", "/api/v1/outreach/notices/{notice_id}"): {ACTIONS, SCHEDULER},
    ("GET", "/api/v1/outreach/summary"): {SCHEDULER, REPORTS},
    # the understanding inbox
    ("POST", "/api/v1/nlu-review/items"): BOT,
    # the payment gateway and the daily job
    ("POST", "/api/v1/loans/{loan_id}/payments"): {PAYMENTS},
    ("POST", "/api/v1/segments/recompute"): {SCHEDULER},
    # web chat sessions and the verification state (the bot; the e2e tests open sessions with its key)
    ("POST", "/api/v1/webchat/sessions"): CONNECTORS,
    ("GET", "/api/v1/verification/status"): BOT,
    # the business rules the bot side works by (bot/rules.py: the action server and the connectors)
    ("GET", "/api/v1/bot/rules"): CONNECTORS,
}

# Routes without an API key: the borrower's web chat page and sign-in, and the health check.
PUBLIC = {
    ("GET", "/chat"), ("POST", "/webchat/login/start"), ("POST", "/webchat/login/verify"), ("GET", "/health"),
}
# Console routes (/console...) need a signed-in staff session, not a key (tests/backend/test_console*.py).
CONSOLE = re.compile(r"/console(/|$)")

BAD_KEYS = {"no key": None, "bad key": "not-a-key", "near miss": TEST_API_KEYS[ACTIONS] + "x"}
FILL = {"channel": "sms", "external_id": "+8613800000000", "number": "+8613800000000", "conversation": "sms:nobody",
        "reference": "XX00000000-0000", "notice_id": "00000000-0000-4000-8000-000000000000"}


def app_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, from app.routes (included routers unfolded)."""
    out: list[tuple[str, str]] = []

    def walk(routes, prefix: str = "") -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                out.extend((m, prefix + route.path) for m in sorted(route.methods - {"HEAD", "OPTIONS"}))
            elif hasattr(route, "original_router"):  # FastAPI's included router
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif hasattr(route, "routes") and not hasattr(route, "app"):
                walk(route.routes, prefix)

    walk(app.routes)
    return sorted(set(out))


def service_routes(app) -> list[tuple[str, str]]:
    return [r for r in app_routes(app) if r not in PUBLIC and not CONSOLE.match(r[1])]


def url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: FILL.get(m.group(1), "999999"), path)


def test_the_table_names_known_callers_only():
    for callers in TABLE.values():
        assert callers and callers <= set(API_KEY_PROFILES)
    assert set(TEST_API_KEYS) == set(API_KEY_PROFILES)  # the test app has a key for every caller


def test_every_route_is_classified(app):
    routes = app_routes(app)
    assert len(routes) > len(TABLE)  # the walk found the included routers
    unclassified = [r for r in service_routes(app) if r not in TABLE]
    assert unclassified == [], "give each new route its callers in TABLE (or PUBLIC)"
    assert [r for r in TABLE if r not in routes] == [], "TABLE names a route the app does not serve"
    assert [r for r in PUBLIC if r not in routes] == []


def test_no_staff_decision_is_a_service_route(app):
    staff_actions = re.compile(r"/(plan-requests|complaints|handoffs)/\{\w+\}/(approve|reject|review|start|resolve|close|"
                               r"extend|clear-reminder-pause|claim|reassign|notes|first-response|hand-back|reply)$")
    assert [r for r in service_routes(app) if staff_actions.search(r[1])] == []


@pytest.mark.parametrize("caller", [*TEST_API_KEYS, *BAD_KEYS])
def test_every_route_with_every_key(client, caller):
    key = TEST_API_KEYS.get(caller) or BAD_KEYS.get(caller)
    headers = {"X-API-Key": key} if key else {}
    wrong = []
    for method, path in service_routes(client.app):
        resp = client.request(method, url(path), headers=headers, json={})
        code = resp.json().get("error", {}).get("code") if resp.headers.get("content-type", "").startswith(
            "application/json") and isinstance(resp.json(), dict) else None
        if caller in BAD_KEYS:
            expected = (401, "unauthorized")
        elif caller in TABLE[(method, path)]:
            expected = None  # past the key and the scope: whatever the route answers to this request
        else:
            expected = (403, "insufficient_scope")
        if expected is None:
            if resp.status_code in (401, 403) and code in ("unauthorized", "insufficient_scope"):
                wrong.append((method, path, resp.status_code, code))
        elif (resp.status_code, code) != expected:
            wrong.append((method, path, resp.status_code, code))
    assert wrong == []


def test_the_403_says_which_scope_in_both_languages(client):
    resp = client.post("/api/v1/loans/1/payments", headers={"X-API-Key": TEST_API_KEYS[ACTIONS]},
                       json={"amount": "1.00", "method": "alipay", "reference": "SCOPEPROBE1"})
    assert resp.status_code == 403
    err = resp.json()["error"]
    assert err["code"] == "insufficient_scope" and "payments:write" in err["message_en"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message_zh"])


def test_an_unknown_caller_name_is_refused_at_start_up():
    from pydantic import ValidationError

    from backend.core.config import Settings

    with pytest.raises(ValidationError, match="unknown caller name 'gateway'"):
        Settings(BACKEND_API_KEYS="actions:k1,gateway:k2")
    # the name:key format stays as it was; blanks are skipped
    assert Settings(BACKEND_API_KEYS=" actions:k1 , ,scheduler:k2").api_keys() == {"k1": "actions", "k2": "scheduler"}
