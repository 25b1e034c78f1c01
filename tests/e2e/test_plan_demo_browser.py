"""The issue's demo in real headless Chromium: a borrower in the web chat asks for a 12-month
instalment plan, sees the computed schedule, confirms, gets a reference; a staff member approves
it; the approval arrives in the open chat by itself; 「这个月还多少」 then shows the new schedule."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from console_client import ConsoleUser  # noqa: E402
from test_workflows import cn_day  # noqa: E402
from webchat_page import ask, sign_in, yuan  # noqa: E402

pytestmark = pytest.mark.e2e
REPORTS = Path(__file__).resolve().parents[2] / "reports"


def test_web_chat_plan_request_to_approval_and_new_schedule(stack, browser):
    with stack.db() as conn:
        cid, phone = conn.execute(
            "SELECT c.id, c.phone FROM customers c JOIN loans l ON l.customer_id = c.id "
            "WHERE c.risk_tier = 'low' AND c.value_tier != 'vip' AND c.id NOT IN (SELECT customer_id FROM plan_requests) "
            "GROUP BY c.id HAVING COUNT(*) = 1 AND MAX(l.status) = 'active' ORDER BY c.id DESC").fetchone()
    (loan,) = stack.backend(f"/customers/{cid}/loans").json()
    q = stack.backend(f"/loans/{loan['id']}/plan-quote", params={"plan_type": "instalment", "months": 12}).json()["quote"]

    page = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    sign_in(page, stack, phone)
    shown = ask(page, "收入下降了，能不能分12期还")
    assert f"每月应还约 {yuan(q['monthly_amount'])}，共 12 期，首期 {cn_day(q['first_due_date'])}" in shown
    page.locator("button", has_text="确认提交").last.wait_for()
    done = ask(page, "确认")
    reference = re.search(r"RP\d{8}-\d{4}", done).group(0)
    assert f"编号 {reference}（分期12期）" in done and "代理协商" in done

    agent = ConsoleUser(stack.backend_url, "supervisor1", stack.env["CONSOLE_DEMO_PASSWORD"])
    agent.post(f"/plans/{reference}/review")
    before = page.locator(".msg.bot").count()
    agent.post(f"/plans/{reference}/approve", json={"note": "同意"})
    page.wait_for_function(f"document.querySelectorAll('.msg.bot').length > {before}", timeout=15000)
    aq = stack.backend(f"/plan-requests/{reference}").json()["approved_quote"]
    notice = page.locator(".msg.bot").last.inner_text()
    assert f"您的还款计划申请（编号 {reference}）已审核通过" in notice
    assert f"首期 {cn_day(aq['first_due_date'])} 应还 {yuan(aq['monthly_amount'])}" in notice

    answer = ask(page, "这个月还多少")
    assert f"下一期 {cn_day(aq['first_due_date'])} 到期，应还 {yuan(aq['monthly_amount'])}" in answer
    assert phone not in page.content()
    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / "plan-demo.png"), full_page=True)
