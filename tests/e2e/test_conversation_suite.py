"""The conversation acceptance suite: realistic multi-turn conversations (tests/e2e/conversations/*.yml)
run against the real stack (Rasa with the trained model, action server, backend, database), each
checked against the records a lender needs: complaints (category, other categories, story,
desired outcome, status), repayment-plan requests, promises to pay, settlement intents, handoff
cases, reminder consent and channel identity status, and what the replies may and may not say.

Every scenario gets a fresh conversation with a demo borrower that fits it (``who`` and ``needs``,
see tests/e2e/conversations/suite.py), never one another scenario used or one that already has
records; records are read for this conversation (or created during it) only.
"""
from __future__ import annotations

import json
import random
import re
import sqlite3
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.conftest import RunningStack, plan_notice, trigger  # noqa: E402
from tests.e2e.conversations import suite  # noqa: E402

pytestmark = pytest.mark.e2e
TZ = ZoneInfo("Asia/Shanghai")
SCENARIOS = suite.load()
FIGURE = re.compile(r"[¥￥]|\d+(?:\.\d+)?\s*元")
DEBT_WORDS = ("逾期", "欠款", "尾号", "应还", "待还", "剩余本金", "还款日")
_used: set[int] = set()


def today() -> date:
    return datetime.now(TZ).date()


def yuan(value) -> str:
    return f"¥{Decimal(str(value)):,.2f}"


def money(stored) -> Decimal:
    """A money column as stored (ScaledDecimal(2): whole cents) as yuan."""
    return (Decimal(int(stored)) / 100).quantize(Decimal("0.01"))


def md(d: date) -> str:
    return f"{d.month}月{d.day}日"


def resolve(spec: dict) -> date:
    """A datespec (suite.py) as a date; the setup-only ones are resolved by free_day."""
    (key, value), = spec.items()
    t = today()
    if key == "in_days":
        return t + timedelta(days=value)
    if key == "next_month_day":
        first_next = (t.replace(day=1) + timedelta(days=32)).replace(day=1)
        return first_next.replace(day=value)
    if key == "next_week_weekday":
        return t + timedelta(days=7 - t.weekday() + value)
    raise ValueError(spec)


def period(name: str) -> tuple[date, date]:
    t = today()
    if name == "last_month":
        end = t.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    monday = t - timedelta(days=t.weekday() + 7)
    return monday, monday + timedelta(days=6)


# --------------------------------------------------------------------------- borrowers

PROFILES = {
    # (loan status of the customer's one loan / all loans, extra join)
    "verified_web": ("single", "active", None),
    "overdue_web": ("single", "overdue", None),
    "settled_web": ("all", "settled", None),
    "sms_registered": ("single", "active", "sms"),
    "sms_overdue": ("single", "overdue", "sms"),
    "wechat_registered": ("single", "active", "wechat"),
}


def candidates(stack: RunningStack, who: str) -> list[tuple[int, str | None]]:
    """(customer id, external id on the channel) of unused borrowers that fit ``who``, with no
    complaint, plan request, promise, settlement intent or handoff recorded yet."""
    scope, status, channel = PROFILES[who]
    having = ("COUNT(*) = 1 AND MAX(l.status) = ?" if scope == "single"
              else "MIN(l.status) = ? AND MAX(l.status) = ?")
    args: list = [status] if scope == "single" else [status, status]
    ident = ("JOIN channel_identities i ON i.customer_id = c.id AND i.channel = ? AND i.status = 'active' "
             "AND i.verified = 1 AND i.opted_out = 0" if channel else "")
    sql = (f"SELECT c.id, {'i.external_id' if channel else 'NULL'} FROM customers c "
           f"JOIN loans l ON l.customer_id = c.id {ident} WHERE c.consent_reminders = 1 "
           "AND c.id NOT IN (SELECT customer_id FROM plan_requests) "
           "AND c.id NOT IN (SELECT customer_id FROM promises_to_pay) "
           "AND c.id NOT IN (SELECT customer_id FROM settlement_intents) "
           "AND c.id NOT IN (SELECT customer_id FROM complaint_tickets WHERE customer_id IS NOT NULL) "
           "AND c.id NOT IN (SELECT customer_id FROM handoff_cases WHERE customer_id IS NOT NULL) "
           f"GROUP BY c.id{', i.external_id' if channel else ''} HAVING {having} ORDER BY (c.id * 7919) % 997")
    with stack.db() as conn:
        rows = conn.execute(sql, ([channel] if channel else []) + args).fetchall()
    return [r for r in rows if r[0] not in _used]


def fits(stack: RunningStack, cid: int, loan: dict, needs: dict) -> bool:
    if needs.get("plan_ok"):
        customer = stack.backend(f"/customers/{cid}").json()
        if customer.get("risk_tier") == "high" or customer.get("value_tier") == "vip":
            return False
    for key, field in (("min_amount_due", "amount_due"), ("min_overdue", "overdue_amount"),
                       ("min_outstanding", "total_outstanding")):
        if key in needs and Decimal(str(loan[field])) < Decimal(str(needs[key])):
            return False
    if needs.get("penalty") and Decimal(str(loan["penalty_interest"])) + Decimal(str(loan["outstanding_fees"])) <= 0:
        return False
    for plan_type, months in needs.get("quotes", []):
        params = {"plan_type": plan_type, **({"months": months} if months else {})}
        r = stack.backend(f"/loans/{loan['id']}/plan-quote", params=params)
        if r.status_code != 200 or not r.json().get("eligible"):
            return False
    return True


def plan_needs(sc: dict) -> dict:
    """The scenario's needs, with what its expected plan implies (a plan-eligible borrower whose
    loan the backend would quote that plan for)."""
    needs = dict(sc.get("needs") or {})
    plan = (sc.get("expect") or {}).get("plan") or {}
    if plan or any((t.get("expect") or {}).get("loop") == "plan_form" for t in sc["turns"]):
        needs["plan_ok"] = True  # else the request goes to a person (handoff.plan_segments)
    if plan.get("filed"):
        needs["plan_ok"] = True
        quote = [plan["type"], plan.get("months")]
        if quote not in needs.setdefault("quotes", []):
            needs["quotes"] = needs["quotes"] + [quote]
        if plan["type"] == "waiver":
            needs["penalty"] = True
    return needs


def borrower(stack: RunningStack, sc: dict) -> tuple[str, int | None, dict | None]:
    """(sender id, customer id, loan) for the scenario."""
    who = sc["who"]
    if who == "anonymous_web":
        return f"web:anon-{uuid.uuid4().hex[:10]}", None, None
    if who == "sms_stranger":
        with stack.db() as conn:
            phones = {r[0] for r in conn.execute("SELECT phone FROM customers")}
        while True:
            phone = "199" + "".join(random.choice("0123456789") for _ in range(8))
            if phone not in phones:
                return f"sms:+86{phone}", None, None
    needs = plan_needs(sc)
    found = candidates(stack, who)
    if not found and who == "settled_web":
        pytest.skip("the demo data has no unused customer whose every loan is settled")
    for cid, external in found:
        loans = stack.backend(f"/customers/{cid}/loans").json()
        loan = max(loans, key=lambda l: (l.get("settled_on") or "", l["id"])) if who == "settled_web" else loans[0]
        if who in ("verified_web", "sms_registered", "wechat_registered") and loan["days_past_due"]:
            continue
        if who in ("overdue_web", "sms_overdue") and not loan["days_past_due"]:
            continue
        if not fits(stack, cid, loan, needs):
            continue
        _used.add(cid)
        channel = PROFILES[who][2]
        sender = f"{channel}:{external}" if channel else stack.web_sender(cid)
        return sender, cid, loan
    pytest.fail(f"no unused demo borrower fits who={who} needs={needs}")


# --------------------------------------------------------------------------- the stack

def tracker(stack: RunningStack, sender: str) -> list[dict]:
    r = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                  params={"token": stack.env["RASA_API_TOKEN"], "include_events": "ALL"}, timeout=30)
    r.raise_for_status()
    return r.json()["events"]


def active_loop(stack: RunningStack, sender: str) -> str | None:
    loops = [e.get("name") for e in tracker(stack, sender) if e["event"] == "active_loop"]
    return loops[-1] if loops else None


def age(stack: RunningStack, sender: str, seconds: int) -> None:
    """As if the borrower last wrote ``seconds`` ago (see test_handoff._age_conversation)."""
    with sqlite3.connect(stack.env["RASA_TRACKER_URL"].removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE events SET timestamp = timestamp - ?, "
                     "data = json_set(data, '$.timestamp', json_extract(data, '$.timestamp') - ?) WHERE sender_id = ?",
                     (seconds, seconds, sender))


def free_day(stack: RunningStack, loan: dict, spec: dict) -> date:
    """A day of last month / last week on which the loan has no payment yet (never in the future)."""
    start, end = period("last_month" if "last_month_free" in spec else "last_week")
    taken = {p["paid_on"] for p in stack.backend(f"/loans/{loan['id']}/payments").json()}
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    days = [d for d in days if d < today() and d.isoformat() not in taken and d >= date.fromisoformat(str(loan["start_date"]))]
    assert days, f"no free day in {start}..{end} for a payment on loan {loan['id']}"
    return days[len(days) // 2]


def run_setup(stack: RunningStack, sc: dict, loan: dict | None) -> None:
    pay = (sc.get("setup") or {}).get("payment")
    if not pay:
        return
    assert loan is not None, "a payment needs a borrower"
    when = pay["date"]
    paid_on = free_day(stack, loan, when) if set(when) & suite.SETUP_DATESPECS else resolve(when)
    r = httpx.post(f"{stack.backend_url}/api/v1/loans/{loan['id']}/payments", json={  # the payment gateway's key
        "amount": pay["amount"], "paid_on": paid_on.isoformat(), "method": "bank_transfer",
        "reference": f"E2E{uuid.uuid4().hex[:12]}"}, headers={"X-API-Key": "e2e-payments-key"}, timeout=30)
    assert r.status_code == 201, r.text


def max_ids(stack: RunningStack) -> dict[str, int]:
    with stack.db() as conn:
        return {t: conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0]
                for t in ("promises_to_pay", "plan_requests", "settlement_intents", "complaint_tickets", "handoff_cases")}


# --------------------------------------------------------------------------- checks

def check_turn(stack: RunningStack, sender: str, cid: int | None, loan: dict | None, exp: dict,
               msgs: list[dict]) -> list[str]:
    texts = [m.get("text") or "" for m in msgs]
    reply = "\n".join(texts)
    short = reply.replace("\n", " ")[:160]
    out = []
    for word in exp.get("contains", []):
        if word not in reply:
            out.append(f"reply lacks {word!r}: {short!r}")
    for word in exp.get("not_contains", []):
        if word in reply:
            out.append(f"reply says {word!r}: {short!r}")
    if "any_of" in exp and not any(w in reply for w in exp["any_of"]):
        out.append(f"reply has none of {exp['any_of']}: {short!r}")
    if "first_contains" in exp and (not texts or exp["first_contains"] not in texts[0]):
        out.append(f"first message lacks {exp['first_contains']!r}: {short!r}")
    if exp.get("no_figures") and FIGURE.search(reply):
        out.append(f"reply shows a figure: {short!r}")
    if exp.get("silent") and msgs:
        out.append(f"expected no reply (paused), got {short!r}")
    if "payoff_for" in exp:
        d = resolve(exp["payoff_for"])
        payoff = stack.backend(f"/loans/{loan['id']}/payoff", params={"date": d.isoformat()}).json()
        if md(d) not in reply or yuan(payoff["total"]) not in reply:
            out.append(f"no payoff quote for {d} ({yuan(payoff['total'])}): {short!r}")
    if exp.get("settled_date"):
        settled = [l for l in stack.backend(f"/customers/{cid}/loans").json() if l.get("settled_on")]
        if not settled:
            out.append("the settled borrower's loans have no settled_on in the backend")
        elif "结清" not in reply or not any(md(date.fromisoformat(str(l["settled_on"]))) in reply for l in settled):
            out.append(f"reply does not say settled on {[l['settled_on'] for l in settled]}: {short!r}")
    if "payment_in" in exp:
        start, end = period(exp["payment_in"])
        paid = [p for p in stack.backend(f"/loans/{loan['id']}/payments").json()
                if start.isoformat() <= str(p["paid_on"]) <= end.isoformat()]
        if not paid:
            out.append(f"setup: loan {loan['id']} has no payment in {start}..{end}")
        elif not any(md(date.fromisoformat(str(p["paid_on"]))) in reply and yuan(p["amount"]) in reply for p in paid):
            out.append(f"reply names no payment of {start}..{end} ({[(p['paid_on'], p['amount']) for p in paid]}): {short!r}")
    if "loop" in exp:
        loop = active_loop(stack, sender)
        if loop != exp["loop"]:
            out.append(f"active form is {loop}, expected {exp['loop']}: {short!r}")
    return out


def check_records(stack: RunningStack, sc: dict, sender: str, cid: int | None, loan: dict | None,
                  before: dict[str, int], loan_before: dict | None, replies: list[str]) -> list[str]:
    exp = sc["expect"]
    out: list[str] = []
    everything = "\n".join(replies)
    db = stack.db()
    try:
        if "complaint" in exp:
            c = exp["complaint"]
            rows = db.execute("SELECT category, other_categories, description, desired_outcome, status FROM complaint_tickets "
                              "WHERE conversation = ? ORDER BY id", (sender,)).fetchall()
            if not c["filed"]:
                if rows:
                    out.append(f"complaint recorded though none expected: {rows[0][0]} {rows[0][4]}")
            elif len(rows) != c.get("count", 1):
                out.append(f"expected {c.get('count', 1)} complaint record(s), found {len(rows)}")
            if c["filed"] and rows:
                category, others, description, outcome, status = rows[-1]
                others = json.loads(others) if isinstance(others, str) else (others or [])
                if "category" in c and category != c["category"]:
                    out.append(f"complaint category {category}, expected {c['category']}")
                if "also" in c and sorted(others) != sorted(c["also"]):
                    out.append(f"complaint other_categories {others}, expected {c['also']}")
                if "also_includes" in c and not set(c["also_includes"]) <= set(others):
                    out.append(f"complaint other_categories {others} lack {c['also_includes']}")
                if "status" in c and status != c["status"]:
                    out.append(f"complaint status {status}, expected {c['status']}")
                if "story_contains" in c and c["story_contains"] not in (description or ""):
                    out.append(f"complaint description lacks {c['story_contains']!r}: {description!r}")
                if "outcome_contains" in c and c["outcome_contains"] not in (outcome or ""):
                    out.append(f"desired outcome lacks {c['outcome_contains']!r}: {outcome!r}")
                if "outcome_not_contains" in c and c["outcome_not_contains"] in (outcome or ""):
                    out.append(f"desired outcome has {c['outcome_not_contains']!r}: {outcome!r}")
        if "plan" in exp:
            p = exp["plan"]
            rows = db.execute("SELECT plan_type, months, reason_category, status FROM plan_requests WHERE conversation = ? "
                              "AND id > ? ORDER BY id", (sender, before["plan_requests"])).fetchall()
            if not p["filed"]:
                if rows:
                    out.append(f"plan request filed though none expected: {rows}")
            elif len(rows) != 1:
                out.append(f"expected one plan request, found {len(rows)}")
            else:
                plan_type, months, reason, status = rows[0]
                if plan_type != p["type"]:
                    out.append(f"plan type {plan_type}, expected {p['type']}")
                if "months" in p and months != p["months"]:
                    out.append(f"plan months {months}, expected {p['months']}")
                if "reason" in p and reason != p["reason"]:
                    out.append(f"plan reason {reason}, expected {p['reason']}")
                if status != "submitted":
                    out.append(f"plan status {status}, expected submitted")
        if "promises" in exp:
            rows = db.execute("SELECT promised_date, amount FROM promises_to_pay WHERE customer_id IS ? AND id > ? "
                              "ORDER BY promised_date, id", (cid, before["promises_to_pay"])).fetchall()
            want = exp["promises"]
            if len(rows) != len(want):
                out.append(f"expected {len(want)} promise(s), found {[(r[0], str(money(r[1]))) for r in rows]}")
            else:
                named = Decimal(0)
                for (when, amount), w in zip(rows, want):
                    d = resolve(w["date"])
                    if str(when) != d.isoformat():
                        out.append(f"promise dated {when}, expected {d}")
                    if "amount" in w:
                        named += Decimal(w["amount"])
                        if money(amount) != Decimal(w["amount"]):
                            out.append(f"promise of {money(amount)}, expected {w['amount']}")
                    else:
                        rest = {Decimal(str(loan_before[f])) - named for f in ("amount_due", "overdue_amount", "total_outstanding")}
                        if money(amount) not in rest:
                            out.append(f"'the rest' promised as {money(amount)}, expected one of {sorted(map(str, rest))}")
        if "settlement_intent" in exp:
            s = exp["settlement_intent"]
            rows = db.execute("SELECT settle_on, quoted_total FROM settlement_intents WHERE conversation = ? AND id > ? "
                              "AND status = 'recorded'", (sender, before["settlement_intents"])).fetchall()
            if "date" in s:
                d = resolve(s["date"])
                if [str(r[0]) for r in rows] != [d.isoformat()]:
                    out.append(f"settlement intent(s) {[str(r[0]) for r in rows]}, expected one for {d}")
                else:
                    payoff = stack.backend(f"/loans/{loan['id']}/payoff", params={"date": d.isoformat()}).json()
                    if money(rows[0][1]) != Decimal(str(payoff["total"])):
                        out.append(f"settlement intent total {money(rows[0][1])}, payoff for {d} is {payoff['total']}")
            elif rows:
                out.append(f"settlement intent recorded though none expected: {rows}")
        if "handoff" in exp:
            h = exp["handoff"]
            rows = db.execute("SELECT reason FROM handoff_cases WHERE conversation = ? ORDER BY id", (sender,)).fetchall()
            if not h["opened"] and rows:
                out.append(f"handoff opened though none expected (reason {rows[0][0]})")
            if h["opened"] and not rows:
                out.append("no handoff case opened")
            if h.get("reason") and rows and rows[0][0] != h["reason"]:
                out.append(f"handoff reason {rows[0][0]}, expected {h['reason']}")
        if "unsubscribed" in exp:
            (consent,) = db.execute("SELECT consent_reminders FROM customers WHERE id = ?", (cid,)).fetchone()
            if bool(consent) == exp["unsubscribed"]:
                out.append(f"consent_reminders is {bool(consent)}, expected {not exp['unsubscribed']}")
            channel, _, external = sender.partition(":")
            if channel == "sms":
                row = db.execute("SELECT opted_out FROM channel_identities WHERE channel = 'sms' AND external_id = ?",
                                 (external,)).fetchone()
                if row and bool(row[0]) != exp["unsubscribed"]:
                    out.append(f"SMS opted_out is {bool(row[0])}, expected {exp['unsubscribed']}")
        if "identity_status" in exp:
            channel, _, external = sender.partition(":")
            row = db.execute("SELECT status FROM channel_identities WHERE channel = ? AND external_id = ?",
                             (channel, external)).fetchone()
            status = row[0] if row else None
            if status != exp["identity_status"]:
                out.append(f"identity status {status}, expected {exp['identity_status']}")
    finally:
        db.close()
    if exp.get("no_figures") and FIGURE.search(everything):
        out.append(f"a reply shows a figure: {FIGURE.search(everything).group(0)!r} in {everything[:200]!r}")
    if exp.get("no_debt"):
        said = [w for w in DEBT_WORDS if w in everything]
        if said or FIGURE.search(everything):
            out.append(f"a reply discloses the debt ({said or 'a figure'}): {everything[:200]!r}")
    for word in exp.get("replies_contain", []):
        if word not in everything:
            out.append(f"no reply says {word!r}")
    for word in exp.get("replies_not_contain", []):
        if word in everything:
            out.append(f"a reply says {word!r}")
    return out


# --------------------------------------------------------------------------- the test

@pytest.mark.parametrize("sc", SCENARIOS, ids=[sc["id"] for sc in SCENARIOS])
def test_conversation(stack: RunningStack, sc: dict):
    sender, cid, loan = borrower(stack, sc)
    before = max_ids(stack)
    run_setup(stack, sc, loan)
    loan_before = stack.backend(f"/loans/{loan['id']}").json() if loan else None
    if sc.get("notice"):
        trigger(stack, sender, plan_notice(stack, cid, loan["id"], sc["notice"]))
    failures: list[str] = []
    replies: list[str] = []
    for n, turn in enumerate(sc["turns"], 1):
        if turn.get("wait_minutes"):
            age(stack, sender, turn["wait_minutes"] * 60)
        msgs = stack.say(sender, turn["say"])
        replies.append("\n".join(m.get("text") or "" for m in msgs))
        failures += [f"turn {n} 「{turn['say']}」: {f}" for f in
                     check_turn(stack, sender, cid, loan, turn.get("expect") or {}, msgs)]
    failures += check_records(stack, sc, sender, cid, loan, before, loan_before, replies)
    if failures:
        transcript = "\n".join(f"  > {t['say']}\n    {r.replace(chr(10), ' / ')[:300]}"
                               for t, r in zip(sc["turns"], replies))
        pytest.fail(f"{'; '.join(failures)}\n[{sender}]\n{transcript}", pytrace=False)
