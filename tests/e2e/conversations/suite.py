"""The conversation acceptance suite's data: loading and validating tests/e2e/conversations/*.yml.

Pure Python + PyYAML, so both the end-to-end runner (tests/e2e/test_conversation_suite.py, app
environment) and the data check (tests/bot/test_conversation_suite_data.py, bot environment) use it.

A scenario (one YAML list item):

    id: complaint-family-calls-01        # unique, [a-z0-9-], the pytest id
    source: "..."                        # where the wording comes from (paraphrase of ...)
    who: verified_web                    # see WHO
    needs: {plan_ok: true, min_amount_due: 2500}   # optional constraints on the demo borrower (see NEEDS)
    setup: {payment: {date: {last_month_free: true}, amount: "300.00"}}  # optional, before the turns
    notice: overdue_7                    # optional: an outreach notice triggered before the turns (SMS)
    turns:
      - say: 你们天天打电话给我家人，我要投诉
        wait_minutes: 31                 # optional: as if the borrower wrote this that long after
        expect: {...}                    # optional, see TURN_EXPECT
    expect: {...}                        # records and replies after the conversation, see EXPECT

Dates ("datespec") are relative to today in Asia/Shanghai: {in_days: N}, {next_month_day: D},
{next_week_weekday: W} (0 = Monday of next calendar week), {last_month_free: true} and
{last_week_free: true} (setup only: a day of last month / last calendar week with no payment yet).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent

WHO = {
    "verified_web": "signed-in web borrower (web:<customer id>), one open loan not in arrears",
    "overdue_web": "signed-in web borrower with one loan in arrears",
    "settled_web": "signed-in web borrower whose every loan is settled",
    "anonymous_web": "web chat visitor who has not signed in (web:anon-...)",
    "sms_registered": "SMS from the borrower's registered number (sms:+86...), one open loan",
    "sms_overdue": "SMS from the registered number of a borrower with one loan in arrears",
    "wechat_registered": "WeChat openid bound to a borrower with one open loan",
    "sms_stranger": "SMS from a number we do not know",
}
NEEDS = {
    "plan_ok": bool,  # may ask for a plan in chat (not VIP, not high risk: handoff.plan_segments)
    "min_amount_due": (int, float),
    "min_overdue": (int, float),
    "min_outstanding": (int, float),
    "penalty": bool,  # has penalty interest or fees to waive
    "quotes": list,  # [[plan_type, months|null], ...] the backend's plan quote must be eligible for each
}
SETUP = {"payment"}
NOTICES = {"overdue_1", "overdue_3", "overdue_7", "overdue_15", "overdue_30"}
TURN_EXPECT = {
    "contains": list, "not_contains": list, "any_of": list, "first_contains": str,
    "loop": (str, type(None)), "no_figures": bool, "payoff_for": dict, "settled_date": bool,
    "payment_in": str, "silent": bool,
}
EXPECT = {
    "complaint": dict, "plan": dict, "promises": list, "settlement_intent": dict, "handoff": dict,
    "unsubscribed": bool, "identity_status": str, "no_figures": bool, "no_debt": bool,
    "replies_contain": list, "replies_not_contain": list,
}
COMPLAINT_KEYS = {"filed", "category", "also", "also_includes", "story_contains", "outcome_contains",
                  "outcome_not_contains", "status", "count"}
CATEGORIES = {"collection", "fees", "service", "wrong_info", "privacy", "other"}
COMPLAINT_STATUSES = {"draft", "received", "in_progress", "resolved", "closed"}
PLAN_KEYS = {"filed", "type", "months", "reason"}
PLAN_TYPES = {"instalment", "deferral", "waiver"}
PLAN_REASONS = {"unemployment", "income_drop", "illness", "family", "other"}
PROMISE_KEYS = {"date", "amount", "rest"}
HANDOFF_KEYS = {"opened", "reason"}
HANDOFF_REASONS = {"request_human", "repeated_fallback", "complaint_high", "distress", "vip_plan", "plan_review"}
IDENTITY_STATUSES = {"active", "inactive", "wrong_person"}
LOOPS = {"plan_form", "settlement_form", "complaint_form", "promise_form", "identity_form"}
DATESPECS = {"in_days": int, "next_month_day": int, "next_week_weekday": int}
SETUP_DATESPECS = {"last_month_free", "last_week_free"}
PERIODS = {"last_month", "last_week"}
ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
AMOUNT = re.compile(r"^\d+\.\d{2}$")


def files() -> list[Path]:
    return sorted(HERE.glob("*.yml"))


def load() -> list[dict[str, Any]]:
    """Every scenario, in file order, with ``theme`` (the file's stem) added."""
    out = []
    for path in files():
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            out.append({**item, "theme": path.stem} if isinstance(item, dict) else item)
    return out


def _datespec(spec: Any, where: str, setup: bool = False) -> list[str]:
    allowed = set(DATESPECS) | (SETUP_DATESPECS if setup else set())
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in allowed:
        return [f"{where}: a date is one of {sorted(allowed)}, got {spec!r}"]
    key, value = next(iter(spec.items()))
    if key in SETUP_DATESPECS:
        return [] if value is True else [f"{where}: {key} takes true"]
    if not isinstance(value, int) or isinstance(value, bool):
        return [f"{where}: {key} takes a whole number"]
    ok = {"in_days": 0 <= value <= 90, "next_month_day": 1 <= value <= 28, "next_week_weekday": 0 <= value <= 6}[key]
    return [] if ok else [f"{where}: {key} {value} out of range"]


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        return [f"{where}: a non-empty list of non-empty strings"]
    return []


def _typed(mapping: dict, schema: dict, where: str) -> list[str]:
    problems = []
    for key, value in mapping.items():
        if key not in schema:
            problems.append(f"{where}: unknown key {key!r}")
        elif not isinstance(value, schema[key]) or (isinstance(value, bool) and schema[key] in ((int, float),)):
            problems.append(f"{where}.{key}: expected {schema[key]}, got {type(value).__name__}")
    return problems


def validate_turn(turn: Any, where: str) -> list[str]:
    if not isinstance(turn, dict) or not isinstance(turn.get("say"), str) or not turn["say"].strip():
        return [f"{where}: a turn needs a non-empty `say`"]
    problems = [f"{where}: unknown key {k!r}" for k in turn if k not in ("say", "expect", "wait_minutes")]
    if "wait_minutes" in turn and (not isinstance(turn["wait_minutes"], int) or turn["wait_minutes"] <= 0):
        problems.append(f"{where}.wait_minutes: a positive whole number")
    exp = turn.get("expect", {})
    if not isinstance(exp, dict) or ("expect" in turn and not exp):
        return problems + [f"{where}.expect: a non-empty mapping"]
    problems += _typed(exp, TURN_EXPECT, f"{where}.expect")
    for key in ("contains", "not_contains", "any_of"):
        if key in exp:
            problems += _strings(exp[key], f"{where}.expect.{key}")
    if "loop" in exp and exp["loop"] is not None and exp["loop"] not in LOOPS:
        problems.append(f"{where}.expect.loop: one of {sorted(LOOPS)} or null")
    if "payoff_for" in exp:
        problems += _datespec(exp["payoff_for"], f"{where}.expect.payoff_for")
    if "payment_in" in exp and exp["payment_in"] not in PERIODS:
        problems.append(f"{where}.expect.payment_in: one of {sorted(PERIODS)}")
    for key in ("no_figures", "settled_date", "silent"):
        if exp.get(key) is False:
            problems.append(f"{where}.expect.{key}: only `true` means something")
    return problems


def validate_expect(exp: Any, where: str) -> list[str]:
    if not isinstance(exp, dict) or not exp:
        return [f"{where}: a non-empty mapping"]
    problems = _typed(exp, EXPECT, where)
    c = exp.get("complaint")
    if isinstance(c, dict):
        problems += [f"{where}.complaint: unknown key {k!r}" for k in c if k not in COMPLAINT_KEYS]
        if not isinstance(c.get("filed"), bool):
            problems.append(f"{where}.complaint.filed: true or false")
        if c.get("filed") is False and set(c) - {"filed"}:
            problems.append(f"{where}.complaint: nothing else with filed: false")
        if "category" in c and c["category"] not in CATEGORIES:
            problems.append(f"{where}.complaint.category: one of {sorted(CATEGORIES)}")
        for key in ("also", "also_includes"):
            if key in c and (not isinstance(c[key], list) or not set(c[key]) <= CATEGORIES
                             or c.get("category") in c[key]):
                problems.append(f"{where}.complaint.{key}: a list of other categories (not the main one)")
        if "status" in c and c["status"] not in COMPLAINT_STATUSES:
            problems.append(f"{where}.complaint.status: one of {sorted(COMPLAINT_STATUSES)}")
        for key in ("story_contains", "outcome_contains", "outcome_not_contains"):
            if key in c and not (isinstance(c[key], str) and c[key]):
                problems.append(f"{where}.complaint.{key}: a non-empty string")
    p = exp.get("plan")
    if isinstance(p, dict):
        problems += [f"{where}.plan: unknown key {k!r}" for k in p if k not in PLAN_KEYS]
        if not isinstance(p.get("filed"), bool):
            problems.append(f"{where}.plan.filed: true or false")
        if p.get("filed") is False and set(p) - {"filed"}:
            problems.append(f"{where}.plan: nothing else with filed: false")
        if "type" in p and p["type"] not in PLAN_TYPES:
            problems.append(f"{where}.plan.type: one of {sorted(PLAN_TYPES)}")
        if "months" in p and p["months"] is not None and not (isinstance(p["months"], int) and 1 <= p["months"] <= 36):
            problems.append(f"{where}.plan.months: 1..36 or null")
        if "reason" in p and p["reason"] not in PLAN_REASONS:
            problems.append(f"{where}.plan.reason: one of {sorted(PLAN_REASONS)}")
        if p.get("filed") and "type" not in p:
            problems.append(f"{where}.plan: a filed plan names its type")
    for i, promise in enumerate(exp.get("promises") or []):
        w = f"{where}.promises[{i}]"
        if not isinstance(promise, dict):
            problems.append(f"{w}: a mapping")
            continue
        problems += [f"{w}: unknown key {k!r}" for k in promise if k not in PROMISE_KEYS]
        problems += _datespec(promise.get("date"), f"{w}.date")
        if ("amount" in promise) == bool(promise.get("rest")):
            problems.append(f"{w}: exactly one of amount or rest: true")
        if "amount" in promise and not (isinstance(promise["amount"], str) and AMOUNT.match(promise["amount"])):
            problems.append(f"{w}.amount: a string like \"2000.00\"")
    s = exp.get("settlement_intent")
    if isinstance(s, dict):
        if set(s) == {"recorded"} and s["recorded"] is False:
            pass
        elif set(s) == {"date"}:
            problems += _datespec(s["date"], f"{where}.settlement_intent.date")
        else:
            problems.append(f"{where}.settlement_intent: {{date: <date>}} or {{recorded: false}}")
    h = exp.get("handoff")
    if isinstance(h, dict):
        problems += [f"{where}.handoff: unknown key {k!r}" for k in h if k not in HANDOFF_KEYS]
        if not isinstance(h.get("opened"), bool):
            problems.append(f"{where}.handoff.opened: true or false")
        if "reason" in h and (h.get("opened") is not True or h["reason"] not in HANDOFF_REASONS):
            problems.append(f"{where}.handoff.reason: one of {sorted(HANDOFF_REASONS)}, with opened: true")
    if "identity_status" in exp and exp["identity_status"] not in IDENTITY_STATUSES:
        problems.append(f"{where}.identity_status: one of {sorted(IDENTITY_STATUSES)}")
    for key in ("replies_contain", "replies_not_contain"):
        if key in exp:
            problems += _strings(exp[key], f"{where}.{key}")
    for key in ("no_figures", "no_debt"):
        if exp.get(key) is False:
            problems.append(f"{where}.{key}: only `true` means something")
    return problems


def validate(scenarios: list[Any]) -> list[str]:
    """Every problem with the scenarios, one line each (empty: all well-formed)."""
    problems: list[str] = []
    seen: set[str] = set()
    for n, sc in enumerate(scenarios):
        if not isinstance(sc, dict):
            problems.append(f"item {n}: a scenario is a mapping")
            continue
        sid = sc.get("id")
        where = f"{sc.get('theme', '?')}/{sid or n}"
        if not isinstance(sid, str) or not ID.match(sid):
            problems.append(f"{where}: id must match {ID.pattern}")
        elif sid in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(sid)
        allowed = {"id", "source", "who", "needs", "setup", "notice", "turns", "expect", "theme"}
        problems += [f"{where}: unknown key {k!r}" for k in sc if k not in allowed]
        if not isinstance(sc.get("source"), str) or not sc["source"].strip():
            problems.append(f"{where}: `source` says where the wording comes from")
        if sc.get("who") not in WHO:
            problems.append(f"{where}: who must be one of {sorted(WHO)}")
        needs = sc.get("needs", {})
        if not isinstance(needs, dict):
            problems.append(f"{where}.needs: a mapping")
        else:
            problems += _typed(needs, NEEDS, f"{where}.needs")
            for q in needs.get("quotes", []) if isinstance(needs.get("quotes"), list) else []:
                if not (isinstance(q, list) and len(q) == 2 and q[0] in PLAN_TYPES
                        and (q[1] is None or isinstance(q[1], int))):
                    problems.append(f"{where}.needs.quotes: [plan_type, months|null] items")
        setup = sc.get("setup", {})
        if not isinstance(setup, dict) or set(setup) - SETUP:
            problems.append(f"{where}.setup: only {sorted(SETUP)}")
        elif "payment" in setup:
            pay = setup["payment"]
            if not isinstance(pay, dict) or set(pay) != {"date", "amount"} or not AMOUNT.match(str(pay.get("amount"))):
                problems.append(f"{where}.setup.payment: {{date: <date>, amount: \"300.00\"}}")
            else:
                problems += _datespec(pay["date"], f"{where}.setup.payment.date", setup=True)
        if "notice" in sc:
            if sc["notice"] not in NOTICES:
                problems.append(f"{where}.notice: one of {sorted(NOTICES)}")
            if sc.get("who") not in ("sms_registered", "sms_overdue"):
                problems.append(f"{where}.notice: only for an SMS borrower")
        turns = sc.get("turns")
        if not isinstance(turns, list) or not turns:
            problems.append(f"{where}: `turns` is a non-empty list")
        else:
            for i, turn in enumerate(turns):
                problems += validate_turn(turn, f"{where}.turns[{i}]")
        problems += validate_expect(sc.get("expect"), f"{where}.expect")
    return problems


def says(scenarios: list[dict]) -> list[tuple[str, str]]:
    """(scenario id, message) for every turn."""
    return [(sc["id"], t["say"]) for sc in scenarios for t in sc.get("turns") or [] if isinstance(t, dict) and "say" in t]
