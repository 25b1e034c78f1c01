"""The staff console's repayment-plan and complaint views in real headless Chromium, against the real
backend: the records are filed through the service API (as the bot files them), then staff work them
in the browser and every decision is checked back through the service API.

Plans: agent1 filters the list, opens a request, sees the stored schedule to the cent, starts the
review, cannot reject without a reason, rejects one with a reason, approves another (the loan's
schedule is replaced); a plan above ``repayment_plans.supervisor_approval_above`` is refused to
agent1 with the page's message and approved by supervisor1.

Complaints: the list is ordered by deadline with a live countdown (tickets aged in the database),
the detail shows the borrower's words with their numbers masked, a repeat within 7 days is added to
the live ticket and, once that is resolved, opens a new ticket linked to it; start -> resolve with a
resolution; an extension needs a reason and moves the deadline to 60 days after receipt.

No console page ever shows a borrower's full phone or ID number. Screenshots: reports/console-plan.png
and reports/console-complaints.png.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from test_console_browser import console_sign_in  # noqa: E402

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
RULES = yaml.safe_load((ROOT / "config" / "business.yml").read_text(encoding="utf-8"))
SUPERVISOR_LIMIT = Decimal(str(RULES["repayment_plans"]["supervisor_approval_above"]))
REVIEW_ABOVE = Decimal(str(RULES["repayment_plans"]["staff_review_thresholds"]["outstanding_principal_above"]))
DECISION_DAYS = RULES["complaints"]["decision_days"]
MAX_TOTAL_DAYS = RULES["complaints"]["max_total_days"]
WAIT = 10_000  # ms, for anything the page fetches


def money(x) -> str:
    """An amount as the console shows it (console.js money()), e.g. ¥3,400.22."""
    return f"¥{Decimal(str(x)):,.2f}"


# --------------------------------------------------------------------------- helpers

class Pii:
    """Full phone and ID numbers: the borrowers' the test uses, and every other customer's, are never
    on a console page (only masked forms: 138****5678, ****1234)."""

    def __init__(self, stack) -> None:
        with stack.db() as conn:
            self.numbers = {n for row in conn.execute("SELECT phone, id_number FROM customers") for n in row}
        self.stack = stack

    def of(self, customer_id: int) -> tuple[str, str]:
        with self.stack.db() as conn:
            return conn.execute("SELECT phone, id_number FROM customers WHERE id = ?", (customer_id,)).fetchone()

    def check(self, page) -> None:
        html = page.content()
        shown = [n for n in self.numbers if n in html]
        assert not shown, f"full personal numbers on {page.url}: {shown}"


def wait_text(page, selector: str, text: str, exact: bool = True) -> None:
    """Wait until the element's text is (or contains) `text`."""
    page.wait_for_function(
        "([sel, text, exact]) => { const e = document.querySelector(sel);"
        " return !!e && (exact ? e.textContent.trim() === text : e.textContent.includes(text)); }",
        arg=[selector, text, exact], timeout=WAIT)


def wait_rows(page, tbody: str, present: list[str], absent: list[str] = ()) -> None:
    """Wait until the list shows the rows of `present` and none of `absent` (by data-reference)."""
    page.wait_for_function(
        "([tbody, present, absent]) => {"
        " const has = (r) => !!document.querySelector(`#${tbody} tr[data-reference='${r}']`);"
        " return present.every(has) && !absent.some(has); }",
        arg=[tbody, list(present), list(absent)], timeout=WAIT)


def facts(page, dl_id: str) -> dict[str, str]:
    """A <dl class="facts"> as {label: value}."""
    return page.eval_on_selector(
        f"#{dl_id}", "dl => Object.fromEntries([...dl.querySelectorAll('dt')].map("
                     "dt => [dt.textContent, dt.nextElementSibling.textContent]))")


def table(page, tbody_id: str) -> list[list[str]]:
    return page.eval_on_selector_all(f"#{tbody_id} tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def schedule_cells(figures: dict) -> list[list[str]]:
    """A plan's schedule as the page's table shows it (console.js scheduleRows: the API's values as they are)."""
    return [[str(r["seq"]), r["due_date"], r["principal"], r["interest"], r["fee"], r["total"]]
            for r in figures["schedule"]]


def plan(stack, ref: str) -> dict:
    r = stack.backend(f"/plan-requests/{ref}")
    assert r.status_code == 200, r.text
    return r.json()


def ticket(stack, ref: str) -> dict:
    r = stack.backend(f"/complaints/{ref}")
    assert r.status_code == 200, r.text
    return r.json()


def new_desk(browser, stack, username: str):
    page = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN").new_page()
    console_sign_in(page, stack, username)
    return page


# --------------------------------------------------------------------------- repayment plans

def _candidate_loans(stack) -> list[tuple[int, int, Decimal]]:
    """Active loans (one per customer, lowest customer ids first: other e2e tests take the highest)
    with their outstanding principal."""
    with stack.db() as conn:
        rows = conn.execute(
            "SELECT l.id, l.customer_id, SUM(i.principal - i.paid_principal) FROM loans l "
            "JOIN instalments i ON i.loan_id = l.id WHERE l.status = 'active' "
            "AND l.customer_id IN (SELECT customer_id FROM loans GROUP BY customer_id HAVING COUNT(*) = 1) "
            "AND NOT EXISTS (SELECT 1 FROM plan_requests p WHERE p.loan_id = l.id) "
            "GROUP BY l.id ORDER BY l.customer_id").fetchall()
    return [(loan_id, cid, Decimal(cents) / 100) for loan_id, cid, cents in rows]


def _file_plan(stack, pii: Pii, plan_type: str, months: int, want_supervisor: bool, skip: set[int]) -> dict:
    """Quote plans on demo loans until one is eligible with the wanted supervisor flag (and no staff
    review, so the list filter below is exact); file it as the bot does. Returns the request."""
    for loan_id, cid, outstanding in _candidate_loans(stack):
        if cid in skip or outstanding > REVIEW_ABOVE:
            continue
        if want_supervisor != (outstanding > SUPERVISOR_LIMIT + 2000):  # the amount is principal + arrears
            continue
        q = stack.backend(f"/loans/{loan_id}/plan-quote", params={"plan_type": plan_type, "months": months}).json()
        if not q["eligible"] or q["requires_supervisor"] != want_supervisor or q["needs_staff_review"]:
            continue
        phone, _ = pii.of(cid)
        r = stack.backend_post("/plan-requests", json={
            "conversation": f"web:{cid}", "channel": "web", "customer_id": cid, "loan_id": loan_id,
            "reason_category": "income_drop", "reason_text": f"收入下降，有事请打{phone}", "plan_type": plan_type,
            "months": months})
        assert r.status_code == 201, r.text
        req = r.json()
        # The stored plan is the quote the borrower saw, to the cent.
        assert req["quote"] == q["quote"] and req["status"] == "submitted"
        assert req["requires_supervisor"] is want_supervisor
        skip.add(cid)
        return req
    pytest.fail(f"no demo loan is eligible for {plan_type} {months} (supervisor: {want_supervisor})")


def test_staff_review_approve_and_reject_plans_in_the_console(stack, browser):
    pii, used = Pii(stack), set()
    deferral = _file_plan(stack, pii, "deferral", 2, False, used)       # agent1 rejects it
    instalment = _file_plan(stack, pii, "instalment", 6, False, used)   # agent1 approves it
    large = _file_plan(stack, pii, "instalment", 12, True, used)        # only a supervisor approves it
    refs = [deferral["reference"], instalment["reference"], large["reference"]]
    assert Decimal(large["amount"]) > SUPERVISOR_LIMIT >= Decimal(instalment["amount"])

    desk = new_desk(browser, stack, "agent1")
    # ----- the list and its filters (status, plan type, staff review)
    desk.goto(f"{stack.backend_url}/console/plans")
    wait_rows(desk, "plan-rows", refs)
    pii.check(desk)
    row = desk.locator(f"#plan-rows tr[data-reference='{instalment['reference']}']")
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == instalment["reference"] and cells[2] == instalment["loan_no_last4"]
    assert cells[3].startswith("分期") and cells[4] == "6期" and cells[7] == "已提交"
    assert cells[5] == money(instalment["quote"]["monthly_amount"])
    assert "需主管" in desk.locator(f"#plan-rows tr[data-reference='{large['reference']}']").inner_text()
    assert "需主管" not in row.inner_text()

    desk.select_option("#f-type", "deferral")
    wait_rows(desk, "plan-rows", [refs[0]], refs[1:])
    desk.select_option("#f-type", "instalment")
    wait_rows(desk, "plan-rows", refs[1:], [refs[0]])
    desk.select_option("#f-status", "approved")
    wait_rows(desk, "plan-rows", [], refs)
    desk.select_option("#f-status", "submitted")
    wait_rows(desk, "plan-rows", refs[1:], [refs[0]])
    desk.select_option("#f-review", "true")  # none of the three is beyond a staff-review threshold
    wait_rows(desk, "plan-rows", [], refs)
    desk.select_option("#f-review", "false")
    wait_rows(desk, "plan-rows", refs[1:], [refs[0]])
    desk.select_option("#f-type", "")
    wait_rows(desk, "plan-rows", refs)

    # ----- the detail: the stored schedule exactly as the API returned it; review; approve
    schedule_before = stack.backend(f"/loans/{instalment['loan_id']}/schedule").json()
    row.locator("a", has_text="查看").click()
    desk.wait_for_url(f"{stack.backend_url}/console/plans/{instalment['reference']}")
    desk.wait_for_selector("#plan-view:not([hidden])", timeout=WAIT)
    pii.check(desk)
    q = instalment["quote"]
    assert desk.locator("#plan-title").inner_text() == f"{instalment['reference']} · 分期6期"
    assert desk.locator("#plan-status").inner_text() == "已提交"
    assert table(desk, "schedule-rows") == schedule_cells(q)
    assert len(q["schedule"]) == 6
    figures = facts(desk, "plan-figures")
    assert figures["未还本金"] == money(q["outstanding_principal"])
    assert figures["新月供"] == money(q["monthly_amount"])
    assert figures["期数"] == "6"
    assert figures["总利息"] == money(q["total_interest"])
    assert figures["还款总额"] == money(q["total_repayable"])
    assert figures["首期还款日"] == q["first_due_date"]
    shown = facts(desk, "plan-facts")
    assert shown["涉及金额"] == money(instalment["amount"])
    assert shown["客户说明"].startswith("收入下降，有事请打") and "****" in shown["客户说明"]
    assert "客服可批准" in desk.locator("#plan-flags").inner_text()
    assert desk.locator("#plan-approve").is_hidden()  # a decision needs the review started first

    desk.click("#plan-review")
    wait_text(desk, "#plan-status", "审核中")
    desk.wait_for_selector("#plan-approve:not([hidden])", timeout=WAIT)
    assert plan(stack, instalment["reference"])["reviewer"] == "agent1"
    desk.fill("#plan-note", "收入证明已核实")
    desk.click("#plan-approve")
    wait_text(desk, "#plan-status", "已批准")
    desk.wait_for_selector("#plan-approved:not([hidden])", timeout=WAIT)
    pii.check(desk)

    decided = plan(stack, instalment["reference"])
    assert decided["status"] == "approved" and decided["decided_by"] == "agent1"
    assert decided["decision_reason"] == "收入证明已核实"
    applied = decided["approved_quote"]
    assert table(desk, "approved-rows") == schedule_cells(applied)
    assert "agent1 已批准：收入证明已核实" in desk.locator("#plan-history").inner_text()
    # The loan's unpaid schedule was replaced by the plan's instalments.
    schedule_after = stack.backend(f"/loans/{instalment['loan_id']}/schedule").json()
    assert schedule_after != schedule_before
    new_rows = [[r["due_date"], Decimal(r["principal"]), Decimal(r["interest"]), Decimal(r["fee"]),
                 Decimal(r["total"])] for r in schedule_after[-len(applied["schedule"]):]]
    assert new_rows == [[r["due_date"], Decimal(r["principal"]), Decimal(r["interest"]), Decimal(r["fee"]),
                         Decimal(r["total"])] for r in applied["schedule"]]
    assert stack.backend(f"/loans/{instalment['loan_id']}").json()["status"] == "restructured"
    REPORTS.mkdir(exist_ok=True)
    desk.screenshot(path=str(REPORTS / "console-plan.png"), full_page=True)

    # ----- reject: a reason is required
    desk.goto(f"{stack.backend_url}/console/plans/{deferral['reference']}")
    desk.wait_for_selector("#plan-view:not([hidden])", timeout=WAIT)
    pii.check(desk)
    assert desk.locator("#plan-title").inner_text() == f"{deferral['reference']} · 延期2期"
    assert table(desk, "schedule-rows") == schedule_cells(deferral["quote"])
    desk.click("#plan-review")
    wait_text(desk, "#plan-status", "审核中")
    desk.wait_for_selector("#plan-reject:not([hidden])", timeout=WAIT)
    desk.fill("#plan-reason", "")
    desk.click("#plan-reject")
    wait_text(desk, "#plan-error", "拒绝申请必须填写原因")
    assert desk.locator("#plan-status").inner_text() == "审核中"
    unchanged = plan(stack, deferral["reference"])
    assert unchanged["status"] == "under_review" and unchanged["decided_by"] is None
    desk.fill("#plan-reason", "近三个月有新的逾期记录，暂不符合延期条件")
    desk.click("#plan-reject")
    wait_text(desk, "#plan-status", "未批准")
    assert desk.locator("#plan-error").inner_text() == ""
    rejected = plan(stack, deferral["reference"])
    assert rejected["status"] == "rejected" and rejected["decided_by"] == "agent1"
    assert rejected["decision_reason"] == "近三个月有新的逾期记录，暂不符合延期条件"

    # ----- above the supervisor limit: agent1 is refused on the page, supervisor1 approves
    desk.goto(f"{stack.backend_url}/console/plans/{large['reference']}")
    desk.wait_for_selector("#plan-view:not([hidden])", timeout=WAIT)
    pii.check(desk)
    flags = desk.locator("#plan-flags").inner_text()
    assert f"需主管批准（金额{money(large['amount'])}超过¥{SUPERVISOR_LIMIT}）" in flags
    assert "您是客服：可开始审核或拒绝，批准需主管操作" in flags
    assert table(desk, "schedule-rows") == schedule_cells(large["quote"])
    desk.click("#plan-review")
    wait_text(desk, "#plan-status", "审核中")
    desk.wait_for_selector("#plan-approve:not([hidden])", timeout=WAIT)
    desk.click("#plan-approve")
    wait_text(desk, "#plan-error", f"金额超过{SUPERVISOR_LIMIT}元的还款计划需由主管批准")
    assert desk.locator("#plan-status").inner_text() == "审核中"
    held = plan(stack, large["reference"])
    assert held["status"] == "under_review" and held["decided_by"] is None and held["approved_quote"] is None

    boss = new_desk(browser, stack, "supervisor1")
    boss.goto(f"{stack.backend_url}/console/plans/{large['reference']}")
    boss.wait_for_selector("#plan-approve:not([hidden])", timeout=WAIT)
    assert "您是客服" not in boss.locator("#plan-flags").inner_text()
    boss.click("#plan-approve")
    wait_text(boss, "#plan-status", "已批准")
    assert boss.locator("#plan-error").inner_text() == ""
    pii.check(boss)
    approved = plan(stack, large["reference"])
    assert approved["status"] == "approved" and approved["decided_by"] == "supervisor1"
    assert stack.backend(f"/loans/{large['loan_id']}").json()["status"] == "restructured"

    # ----- every status in the list
    boss.goto(f"{stack.backend_url}/console/plans")
    boss.select_option("#f-status", "all")
    wait_rows(boss, "plan-rows", refs)
    status = {r: boss.locator(f"#plan-rows tr[data-reference='{r}'] td").nth(7).inner_text() for r in refs}
    assert status == {refs[0]: "未批准", refs[1]: "已批准", refs[2]: "已批准"}
    pii.check(boss)
    desk.context.close()
    boss.context.close()


# --------------------------------------------------------------------------- complaints

def _complaint_customers(stack, n: int) -> list[int]:
    """Customers with no complaint or plan request yet (lowest ids first: other e2e tests take the highest)."""
    with stack.db() as conn:
        rows = conn.execute("SELECT c.id FROM customers c WHERE NOT EXISTS "
                            "(SELECT 1 FROM complaint_tickets t WHERE t.customer_id = c.id) "
                            "AND NOT EXISTS (SELECT 1 FROM plan_requests p WHERE p.customer_id = c.id) "
                            "ORDER BY c.id LIMIT ?", (n,)).fetchall()
    return [r[0] for r in rows]


def _complain(stack, cid: int, category: str, text: str, expect: int = 201, **extra) -> dict:
    r = stack.backend_post("/complaints", json={"conversation": f"web:{cid}", "channel": "web", "customer_id": cid,
                                                "category": category, "description": text, **extra})
    assert r.status_code == expect, r.text
    return r.json()


def _age(stack, reference: str, days: float) -> None:
    """Move a ticket's receipt and deadline `days` into the past (SQLite keeps the business wall time)."""
    with stack.db() as conn:
        received, due = conn.execute("SELECT received_at, due_at FROM complaint_tickets WHERE reference = ?",
                                     (reference,)).fetchone()
        shift = timedelta(days=days)
        conn.execute("UPDATE complaint_tickets SET received_at = ?, due_at = ? WHERE reference = ?",
                     ((datetime.fromisoformat(received) - shift).isoformat(sep=" "),
                      (datetime.fromisoformat(due) - shift).isoformat(sep=" "), reference))
        conn.execute("UPDATE complaint_events SET at = ? WHERE ticket_id = "
                     "(SELECT id FROM complaint_tickets WHERE reference = ?)",
                     ((datetime.fromisoformat(received) - shift).isoformat(sep=" "), reference))


def test_staff_work_complaints_in_the_console(stack, browser):
    pii = Pii(stack)
    x, y, z = _complaint_customers(stack, 3)
    phone, id_number = pii.of(x)
    words = f"催款短信说要上门，我根本没逾期！多扣了200元手续费。我电话{phone}，身份证{id_number}。"

    # Borrower x complains about fees, then again the same day: added to the live ticket, not a second one.
    first = _complain(stack, x, "fees", words, desired_outcome="退还多扣的手续费", contact=f"打{phone}")
    assert first["outcome"] == "new" and first["priority"] == "normal"
    repeat = _complain(stack, x, "fees", "怎么还没人处理？", expect=200)
    assert repeat["outcome"] == "appended" and repeat["reference"] == first["reference"]
    # Two more borrowers' tickets, received 5 and 16 days ago: 10 days left, and 1 day overdue.
    older = _complain(stack, y, "service", "客服态度很差，挂我电话。")
    overdue = _complain(stack, z, "wrong_info", "我的还款记录显示错误。")
    _age(stack, older["reference"], 5)
    _age(stack, overdue["reference"], 16)
    refs = [overdue["reference"], older["reference"], first["reference"]]

    # ----- the list: nearest deadline first, with a live countdown (red when overdue)
    desk = new_desk(browser, stack, "agent1")
    desk.goto(f"{stack.backend_url}/console/complaints")
    wait_rows(desk, "complaint-rows", refs)
    desk.wait_for_function("document.querySelector('#complaint-rows tr[data-reference] .timer').textContent !== ''",
                           timeout=WAIT)
    pii.check(desk)
    order = desk.eval_on_selector_all("#complaint-rows tr[data-reference]",
                                      "rows => rows.map(r => r.dataset.reference)")
    assert [r for r in order if r in refs] == refs

    def timer(ref):
        return desk.locator(f"#complaint-rows tr[data-reference='{ref}'] td.timer").inner_text()

    assert re.fullmatch(rf"{DECISION_DAYS - 1}天23:\d\d:\d\d", timer(first["reference"])), timer(first["reference"])
    assert re.fullmatch(rf"{DECISION_DAYS - 6}天23:\d\d:\d\d", timer(older["reference"])), timer(older["reference"])
    assert re.fullmatch(r"已超期 1天00:\d\d:\d\d", timer(overdue["reference"])), timer(overdue["reference"])
    late = desk.eval_on_selector_all("#complaint-rows tr.late", "rows => rows.map(r => r.dataset.reference)")
    assert overdue["reference"] in late and first["reference"] not in late and older["reference"] not in late
    shown = timer(first["reference"])  # the countdown moves while the page is open
    desk.wait_for_function("([ref, shown]) => document.querySelector(`#complaint-rows tr[data-reference='${ref}'] "
                           "td.timer`).textContent !== shown", arg=[first["reference"], shown], timeout=WAIT)

    # ----- the detail: the borrower's words, masked; the repeat in the history
    desk.locator(f"#complaint-rows tr[data-reference='{first['reference']}'] a", has_text="查看").click()
    desk.wait_for_url(f"{stack.backend_url}/console/complaints/{first['reference']}")
    desk.wait_for_selector("#complaint-view:not([hidden])", timeout=WAIT)
    pii.check(desk)
    masked_phone = f"{phone[:3]}****{phone[-4:]}"
    assert desk.locator("#complaint-text").inner_text() == (
        f"催款短信说要上门，我根本没逾期！多扣了200元手续费。我电话{masked_phone}，身份证****{id_number[-4:]}。")
    assert desk.locator("#complaint-outcome").inner_text() == "退还多扣的手续费"
    info = facts(desk, "complaint-facts")
    assert info["联系方式"] == f"打{masked_phone}"
    assert info["处理期限"] == f"{first['due_at'][:10]} {first['due_at'][11:16]}"
    assert desk.locator("#complaint-title").inner_text() == f"{first['reference']} · 费用争议"
    history = desk.locator("#complaint-events").inner_text()
    assert "已受理您的投诉" in history and "已补充投诉内容" in history and "怎么还没人处理？" in history
    assert desk.locator("#complaint-linked").inner_text() == "无"
    assert re.fullmatch(rf"剩余 {DECISION_DAYS - 1}天23:\d\d:\d\d", desk.locator("#complaint-countdown").inner_text())

    # ----- start -> resolve (the resolution is required)
    desk.click("#c-start")
    wait_text(desk, "#complaint-status", "处理中")
    assert desk.locator("#c-start").is_hidden()
    assert ticket(stack, first["reference"])["status"] == "in_progress"
    desk.click("#c-resolve")
    wait_text(desk, "#complaint-error", "请填写处理结果")
    assert ticket(stack, first["reference"])["status"] == "in_progress"
    desk.fill("#c-resolution", "经核实多收手续费200元，已于今日退回您的还款卡。")
    desk.click("#c-resolve")
    wait_text(desk, "#complaint-status", "已解决")
    assert desk.locator("#complaint-error").inner_text() == ""
    assert desk.locator("#complaint-countdown").inner_text() == ""  # no deadline once decided
    done = ticket(stack, first["reference"])
    assert done["status"] == "resolved" and done["resolution"] == "经核实多收手续费200元，已于今日退回您的还款卡。"
    assert [(e["kind"], e["actor"]) for e in done["events"] if e["actor"] != "customer"] == [
        ("started", "agent1"), ("resolved", "agent1")]
    pii.check(desk)

    # ----- the same complaint again within 7 days, after the decision: a new ticket linked to the first
    again = _complain(stack, x, "fees", f"又多扣了手续费！回电{phone}")
    assert again["outcome"] == "linked" and again["reference"] != first["reference"]
    assert again["linked_to"] == first["reference"] and again["linked"] == [first["reference"]]
    desk.goto(f"{stack.backend_url}/console/complaints")
    wait_rows(desk, "complaint-rows", [again["reference"], older["reference"]], [first["reference"]])
    assert f"关联{first['reference']}" in desk.locator(
        f"#complaint-rows tr[data-reference='{again['reference']}']").inner_text()
    pii.check(desk)
    desk.goto(f"{stack.backend_url}/console/complaints/{again['reference']}")
    desk.wait_for_selector("#complaint-view:not([hidden])", timeout=WAIT)
    assert desk.locator("#complaint-text").inner_text() == f"又多扣了手续费！回电{masked_phone}"
    linked = desk.locator("#complaint-linked a")
    assert linked.all_inner_texts() == [first["reference"]]
    assert linked.get_attribute("href") == f"/console/complaints/{first['reference']}"
    pii.check(desk)

    # ----- extension: a reason is required; then the deadline moves to 60 days after receipt
    before = ticket(stack, again["reference"])
    desk.click("#c-extend")
    wait_text(desk, "#complaint-error", "延期必须填写原因")
    after = ticket(stack, again["reference"])
    assert after["due_at"] == before["due_at"] and after["extended"] is False
    desk.fill("#c-extend-reason", "需调取第三方催收机构的通话录音，预计两周")
    desk.click("#c-extend")
    desk.wait_for_function("document.getElementById('c-extend').disabled", timeout=WAIT)
    assert desk.locator("#complaint-error").inner_text() == ""
    extended = ticket(stack, again["reference"])
    received = datetime.fromisoformat(extended["received_at"])
    assert extended["extended"] is True and extended["extension_reason"] == "需调取第三方催收机构的通话录音，预计两周"
    assert datetime.fromisoformat(extended["due_at"]) == received + timedelta(days=MAX_TOTAL_DAYS)
    assert datetime.fromisoformat(extended["due_at"]) > datetime.fromisoformat(before["due_at"])
    info = facts(desk, "complaint-facts")
    assert info["处理期限"] == f"{extended['due_at'][:10]} {extended['due_at'][11:16]}（已延期）"
    assert info["延期原因"] == "需调取第三方催收机构的通话录音，预计两周"
    assert re.fullmatch(rf"剩余 {MAX_TOTAL_DAYS - 1}天23:\d\d:\d\d", desk.locator("#complaint-countdown").inner_text())
    assert "处理期限已延长" in desk.locator("#complaint-events").inner_text()
    pii.check(desk)
    REPORTS.mkdir(exist_ok=True)
    desk.screenshot(path=str(REPORTS / "console-complaints.png"), full_page=True)

    # The first ticket, from the link: resolved, with the new one in its group.
    desk.locator("#complaint-linked a").click()
    desk.wait_for_url(f"{stack.backend_url}/console/complaints/{first['reference']}")
    desk.wait_for_selector("#complaint-view:not([hidden])", timeout=WAIT)
    assert desk.locator("#complaint-status").inner_text() == "已解决"
    assert desk.locator("#complaint-linked a").all_inner_texts() == [again["reference"]]
    pii.check(desk)
    desk.context.close()
