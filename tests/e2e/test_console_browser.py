"""Both sides in real headless Chromium: a borrower in the web chat asks for a person, a staff
member signs in to the console, claims the case, sees the borrower's messages, replies, the
borrower sees the reply live, staff hand the conversation back, the borrower rates 5, and the
dashboard counts it. Screenshots of the console and the dashboard go to reports/."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from console_client import ConsoleUser  # noqa: E402
from webchat_page import ask, borrower, page_sender, say, sign_in  # noqa: E402

pytestmark = pytest.mark.e2e
REPORTS = Path(__file__).resolve().parents[2] / "reports"


def console_sign_in(page, stack, username: str) -> None:
    page.goto(f"{stack.backend_url}/console")
    assert page.url.endswith("/console/login")  # not signed in: sent to the sign-in page
    page.fill("#username", username)
    page.fill("#password", stack.env["CONSOLE_DEMO_PASSWORD"])
    page.click("#sign-in")
    page.wait_for_url(f"{stack.backend_url}/console")


def test_borrower_and_staff_in_two_browsers(stack, browser):
    supervisor = ConsoleUser(stack.backend_url, "supervisor1", stack.env["CONSOLE_DEMO_PASSWORD"])
    rated_before = supervisor.get("/dashboard")["csat"]["distribution"]["5"]
    cid, phone = borrower(stack, "COUNT(*) = 1 AND MAX(l.status) = 'active'")

    chat = browser.new_context(viewport={"width": 390, "height": 780}, locale="zh-CN").new_page()
    sign_in(chat, stack, phone)
    reply = ask(chat, "转人工")
    assert "已为您转接人工客服" in reply or "现在不在服务时间" in reply
    case = stack.backend(f"/handoffs/by-conversation/{page_sender(chat)}").json()

    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    console_sign_in(desk, stack, "agent1")
    row = desk.locator(f"tr[data-case='{case['id']}']")
    row.wait_for(timeout=5000)
    assert case["reference"] in row.inner_text() and "客户要求转人工" in row.inner_text()
    assert phone not in desk.content()
    row.locator("button.claim").click()
    desk.wait_for_url(f"{stack.backend_url}/console/cases/{case['id']}")
    desk.wait_for_selector("#transcript li.borrower")
    assert "转人工" in desk.locator("#transcript").inner_text()
    assert desk.locator("#customer").inner_text().count("尾号") >= 1  # the verified borrower's loans

    # The borrower writes while a person has the conversation: it shows in the console within 2 s.
    say(chat, "我换了银行卡，怎么改还款卡？")
    started = time.monotonic()
    desk.wait_for_function(
        "document.getElementById('transcript').innerText.includes('我换了银行卡，怎么改还款卡？')", timeout=2000)
    assert time.monotonic() - started < 2.0

    # A canned reply fills the box; staff edit it and send; the borrower sees it live.
    desk.locator(".canned-use", has_text="问候").click()
    assert desk.input_value("#reply-text") == "您好，我是人工客服，很高兴为您服务。请问有什么可以帮您？"
    desk.fill("#reply-text", "您好，我是人工客服小王。换卡请在App「我的-银行卡」里操作，我这边也可以帮您登记。")
    desk.click("#send")
    chat.wait_for_function("document.querySelector('.messages').innerText.includes('我是人工客服小王')", timeout=10000)
    desk.wait_for_function("document.querySelectorAll('#transcript li.staff').length === 1", timeout=5000)

    desk.fill("#note-text", "客户要换还款卡，已告知App路径")
    desk.click("#add-note")
    desk.wait_for_function("document.getElementById('notes').innerText.includes('已告知App路径')", timeout=5000)
    assert "已告知App路径" not in chat.locator(".messages").inner_text()  # private

    REPORTS.mkdir(exist_ok=True)
    desk.screenshot(path=str(REPORTS / "console.png"), full_page=True)

    # Back to the assistant: the borrower is asked to rate, taps 5, leaves a comment.
    desk.click("#hand-back")
    chat.wait_for_function("document.querySelector('.messages').innerText.includes('请为本次人工服务打分')", timeout=15000)
    before = chat.locator(".msg.bot").count()
    chat.locator(".msg.bot .buttons button", has_text="5分").last.click()
    chat.wait_for_function(f"document.querySelectorAll('.msg.bot').length > {before}", timeout=30000)
    assert "还有什么想对我们说的吗" in chat.locator(".msg.bot").last.inner_text()
    assert "感谢您的评价" in ask(chat, "回复很快，谢谢")

    with stack.db() as conn:
        assert conn.execute("SELECT status, csat, csat_comment FROM handoff_cases WHERE id = ?",
                            (case["id"],)).fetchone() == ("closed", 5, "回复很快，谢谢")
    assert supervisor.get("/dashboard")["csat"]["distribution"]["5"] == rated_before + 1

    desk.goto(f"{stack.backend_url}/console/dashboard")
    desk.wait_for_selector("body[data-ready='1']", timeout=15000)
    assert desk.locator("canvas").count() == 8
    assert "服务质量评分" in desk.locator("#kpis").inner_text()
    desk.screenshot(path=str(REPORTS / "dashboard.png"), full_page=True)
    chat.context.close()
    desk.context.close()
