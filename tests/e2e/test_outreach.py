"""Proactive outreach end to end: the real scheduler process plans the day's notices from the demo
loan book, words them and delivers them through the real Rasa (a bot message appended to the
conversation's tracker, sent on the borrower's channel): SMS to the development outbox, the web chat to a signed-in browser. Each
notice arrives once, also across a scheduler restart, and the borrower's reply lands in context.

Its own stack (not the shared one), so that notices do not reach other tests' conversations. The
scheduler's clock is set to 10:00 today (OUTREACH_DEMO_TIME): inside the contact window whenever
the tests run; the window itself is tested in tests/backend/test_outreach_rules.py."""
from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ROOT, running_stack  # noqa: E402
from scripts.stack import APP_PY  # noqa: E402
from test_workflows import cn_day, today, yuan  # noqa: E402
from webchat_page import sign_in  # noqa: E402

pytestmark = pytest.mark.e2e
DEMO = {"OUTREACH_DEMO_TIME": "10:00", "OUTREACH_DISPATCH_SECONDS": "2"}


@pytest.fixture(scope="module")
def ostack(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("outreach")
    yield from running_stack(run_dir, {
        "DATABASE_URL": f"sqlite:///{run_dir / 'loan.db'}",
        "RASA_TRACKER_URL": f"sqlite:///{run_dir / 'tracker.db'}",
        **DEMO,
    })


class Scheduler:
    def __init__(self, stack, log: Path) -> None:
        self.proc = subprocess.Popen([APP_PY, "-m", "scheduler"], cwd=ROOT, env={**stack.env, **DEMO},
                                     stdout=log.open("ab"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def rows(stack, sql: str, *args) -> list[tuple]:
    with stack.db() as conn:
        return conn.execute(sql, args).fetchall()


def wait_until(check, timeout: float, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(step)


def tracker(stack, sender: str) -> list[dict]:
    r = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                  params={"token": stack.env["RASA_API_TOKEN"], "include_events": "ALL"}, timeout=30)
    r.raise_for_status()
    return r.json()["events"]


def notice_ids_in(events: list[dict]) -> list[str]:
    """The notices the backend delivered in the conversation (bot messages carrying their notice id)."""
    return [(e.get("metadata") or {})["notice_id"] for e in events
            if e["event"] == "bot" and (e.get("metadata") or {}).get("notice_id")]


def outbox(stack) -> list[dict]:
    path = Path(stack.env["SMS_OUTBOX_PATH"])
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_reminders_reach_sms_and_the_open_web_chat_once_and_replies_land_in_context(ostack, browser, tmp_path):
    stack = ostack
    d3 = (today() + timedelta(days=3)).isoformat()
    # Borrowers with an unpaid instalment due in three days: one of them waits in the web chat.
    due = rows(stack, "SELECT l.customer_id, l.id, i.seq, c.phone FROM instalments i JOIN loans l ON l.id = i.loan_id "
                      "JOIN customers c ON c.id = l.customer_id WHERE i.due_date = ? AND l.status = 'active' "
                      "AND c.consent_reminders = 1 AND (SELECT COUNT(*) FROM loans o WHERE o.customer_id = c.id) = 1 "
                      # Plans in chat: not a segment whose plan questions go to a person (handoff.plan_segments).
                      "AND c.value_tier != 'vip' AND c.risk_tier != 'high' "
                      "ORDER BY l.customer_id", d3)  # one loan each: one notice, one loan in the answer
    assert len(due) >= 2, "the demo data has borrowers due in three days"
    web_cid, web_loan, web_seq, web_phone = due[-1]
    with stack.db() as conn:
        conn.execute("UPDATE customers SET preferred_channel = 'web' WHERE id = ?", (web_cid,))
    page = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    sign_in(page, stack, web_phone)  # connecting records the web chat as reachable now

    scheduler = Scheduler(stack, tmp_path / "scheduler.log")
    try:
        history: list[int] = []

        def settled():
            # Done when something was sent, nothing is mid-send and the log has not moved for three
            # dispatch cycles (what is left waits for a later retry or another day).
            state = rows(stack, "SELECT SUM(status = 'sent'), SUM(status = 'sending'), COUNT(*) FROM outreach_attempts "
                                "JOIN outreach_notices ON outreach_notices.id = outreach_attempts.notice_id")[0]
            history.append(hash(state))
            return state[0] and not state[1] and len(history) >= 4 and len(set(history[-4:])) == 1
        assert wait_until(settled, 180, step=2.0), (tmp_path / "scheduler.log").read_text()[-3000:]

        # The web borrower sees the reminder in the open chat, with the amount and date of that instalment.
        (loan,) = stack.backend(f"/customers/{web_cid}/loans").json()
        row = next(r for r in stack.backend(f"/loans/{web_loan}/schedule").json() if r["seq"] == web_seq)
        expected = (f"温馨提醒：您的{loan['product_name']}（尾号{loan['loan_no_last4']}）本期应还 "
                    f"{yuan(row['amount_outstanding'])}，还款日为{cn_day(d3)}，还有3天。")
        page.wait_for_function(f"document.body.innerText.includes({json.dumps(expected)})", timeout=60000)
        (web_notice,) = rows(stack, "SELECT notice_id, channel, status FROM outreach_notices WHERE customer_id = ? "
                                    "AND kind = 'due_in_3_days'", web_cid)
        assert web_notice[1:] == ("web", "sent")

        # SMS borrowers: the same reminder in the outbox, to their registered number.
        sms = rows(stack, "SELECT o.notice_id, c.phone, o.kind FROM outreach_notices o JOIN customers c "
                          "ON c.id = o.customer_id WHERE o.status = 'sent' AND o.channel = 'sms'")
        assert sms, "some notices went by SMS"
        bodies = Counter((m["to"], m["body"]) for m in outbox(stack))
        for _notice, phone, kind in sms:
            mine = [body for (to, body), n in bodies.items() if to == "+86" + phone]
            assert mine, f"no SMS to the borrower of a sent {kind} notice"
        assert all(n == 1 for n in bodies.values()), "an SMS went out twice"

        # Once per notice, in the tracker of the conversation it went to.
        sent = rows(stack, "SELECT notice_id, conversation FROM outreach_notices WHERE status = 'sent'")
        for notice_id, conversation in sent[:25]:
            assert notice_ids_in(tracker(stack, conversation)).count(notice_id) == 1
        # At most one automated notice per borrower per day, across channels.
        per_day = rows(stack, "SELECT customer_id, COUNT(*) FROM outreach_notices WHERE status = 'sent' AND service = 0 "
                              "GROUP BY customer_id HAVING COUNT(*) > 1")
        assert per_day == []
    finally:
        scheduler.stop()

    # A restart sends nothing again.
    before = len(outbox(stack))
    scheduler = Scheduler(stack, tmp_path / "scheduler2.log")
    try:
        time.sleep(12)
    finally:
        scheduler.stop()
    assert rows(stack, "SELECT COUNT(*) FROM outreach_notices WHERE status = 'sent'") == \
        [(len(sent),)]
    assert len(outbox(stack)) == before

    # The borrower's answer to the reminder goes straight into the plan request.
    # (in the conversation the reminder went to: the web session the page signed in to)
    ((web_sender,),) = rows(stack, "SELECT conversation FROM outreach_notices WHERE notice_id = ?", web_notice[0])
    reply = stack.texts(web_sender, "好的，能不能分期？")
    assert "协商还款申请" in reply
