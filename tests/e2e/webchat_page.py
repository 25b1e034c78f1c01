"""The borrower's web chat page in headless Chromium: shared by the browser tests."""
from __future__ import annotations

import re
from decimal import Decimal

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def yuan(v) -> str:
    return f"¥{Decimal(str(v)):,.2f}"


def borrower(stack, where="COUNT(*) = 1 AND MAX(l.status) IN ('active', 'overdue')"):
    with stack.db() as conn:
        cid, phone = conn.execute(
            "SELECT c.id, c.phone FROM customers c JOIN loans l ON l.customer_id = c.id "
            f"GROUP BY c.id HAVING {where} ORDER BY c.id DESC").fetchone()
    return cid, phone


def sign_in(page, stack, phone):
    page.goto(f"{stack.backend_url}/chat")
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_function("document.getElementById('login-error').textContent.includes('验证码已发送')")
    code = re.search(r"\d{6}", stack.last_sms()["body"]).group(0)
    page.fill("#code", code)
    page.click("#sign-in")
    page.wait_for_selector("#chat:not([hidden])")


def ask(page, text):
    before = page.locator(".msg.bot").count()
    page.fill("#text", text)
    page.click(".composer button")
    page.wait_for_function(f"document.querySelectorAll('.msg.bot').length > {before}", timeout=30000)
    page.wait_for_timeout(500)  # a reply may come in several messages
    return "\n".join(page.locator(".msg.bot").all_inner_texts()[before:])


def say(page, text):
    """Send without waiting for an answer (while a person has the conversation the bot is silent)."""
    page.fill("#text", text)
    page.click(".composer button")


def page_sender(page) -> str:
    """The conversation id the signed-in page chats as (「web:s-…」, opaque): the key of its history."""
    return page.evaluate("Object.keys(localStorage).find(k => k.startsWith('chat.history:')).slice(13)")
