"""The web chat in a real headless Chromium (Debian's chromium, driven by Playwright), plus the
socket.io channel's refusal paths with a plain socket.io client."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import jwt
import pytest
import socketio

from webchat_page import ask, borrower, page_sender, sign_in, yuan  # noqa: E402

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
def test_sign_in_ask_balance_reload_and_receive_a_live_message(stack, browser):
    cid, phone = borrower(stack)
    (loan,) = stack.backend(f"/customers/{cid}/loans").json()
    context = browser.new_context(viewport={"width": 390, "height": 780}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, stack, phone)
    reply = ask(page, "我还欠多少")
    assert yuan(loan["total_outstanding"]) in reply
    assert phone not in page.content()

    page.reload()
    page.wait_for_selector("#chat:not([hidden])")
    page.wait_for_function("document.getElementById('status').textContent === '已连接'")
    assert yuan(loan["total_outstanding"]) in page.locator(".messages").inner_text()  # history kept

    r = httpx.post(f"{stack.rasa_url}/conversations/{page_sender(page)}/tracker/events",
                   params={"output_channel": "socketio", "execute_side_effects": "true",
                           "token": stack.env["RASA_API_TOKEN"]},
                   json={"event": "bot", "text": "温馨提示：这是一条主动消息。"}, timeout=30)
    assert r.status_code == 200, r.text
    page.wait_for_function("document.querySelector('.messages').innerText.includes('这是一条主动消息')", timeout=15000)
    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / "webchat.png"), full_page=True)
    context.close()


def test_bot_buttons_are_buttons(stack, browser):
    cid, phone = borrower(stack, "SUM(l.status IN ('active', 'overdue')) >= 2")
    loans = [l for l in stack.backend(f"/customers/{cid}/loans").json() if l["status"] in ("active", "overdue")]
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    sign_in(page, stack, phone)
    ask(page, "我还欠多少钱")
    buttons = page.locator(".msg.bot .buttons button")
    assert buttons.all_inner_texts() == [f"{l['product_name']}（尾号{l['loan_no_last4']}）" for l in loans]
    before = page.locator(".msg.bot").count()
    buttons.nth(1).click()
    page.wait_for_function(f"document.querySelectorAll('.msg.bot').length > {before}", timeout=30000)
    assert yuan(loans[1]["total_outstanding"]) in page.locator(".msg.bot").last.inner_text()
    context.close()


def test_anonymous_visitor_gets_no_account_data(stack, browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{stack.backend_url}/chat")
    page.click("#anonymous")
    page.wait_for_selector("#chat:not([hidden])")
    reply = ask(page, "我还欠多少钱")
    assert "手机号" in reply and "¥" not in reply
    context.close()


def test_wrong_code_is_refused_on_the_page(stack, browser):
    cid, phone = borrower(stack)
    page = browser.new_page()
    page.goto(f"{stack.backend_url}/chat")
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_function("document.getElementById('login-error').textContent.includes('验证码已发送')")
    real = re.search(r"\d{6}", stack.last_sms()["body"]).group(0)
    page.fill("#code", "000000" if real != "000000" else "111111")
    page.click("#sign-in")
    page.wait_for_function("document.getElementById('login-error').textContent.includes('验证码不正确')")
    assert page.locator("#chat").is_hidden()
    page.close()


async def _session(url: str, auth: dict | None, wanted: str | None) -> str | None:
    client = socketio.AsyncClient(reconnection=False)
    confirmed: asyncio.Future = asyncio.get_event_loop().create_future()
    client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
    try:
        await client.connect(url, auth=auth, transports=["websocket"], socketio_path="/socket.io")
    except socketio.exceptions.ConnectionError:
        return None
    await client.emit("session_request", {"session_id": wanted})
    try:
        return await asyncio.wait_for(confirmed, 10)
    finally:
        await client.disconnect()


def run(coro):
    """Playwright's sync API keeps an event loop in this thread: run the client in another."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_socket_sender_comes_from_the_token_never_from_the_browser(stack):
    secret = stack.env["WEBCHAT_JWT_SECRET"]
    sender = stack.web_sender(7)  # "web:s-<random>": a session is never named by the customer number
    good = jwt.encode({"sub": sender, "customer_id": 7, "exp": 4102444800}, secret, algorithm="HS256")
    forged = jwt.encode({"sub": sender, "customer_id": 7, "exp": 4102444800}, "not-the-secret", algorithm="HS256")
    expired = jwt.encode({"sub": sender, "customer_id": 7, "exp": 1000}, secret, algorithm="HS256")
    numbered = jwt.encode({"sub": "web:7", "customer_id": 7, "exp": 4102444800}, secret, algorithm="HS256")
    url = stack.rasa_url
    assert run(_session(url, {"token": good}, "web:9")) == sender
    assert run(_session(url, {"token": numbered}, None)) is None  # an old-style "web:<customer id>" token
    anon = run(_session(url, None, "web:9"))
    assert anon.startswith("web:anon-") and anon != "web:9"
    assert run(_session(url, None, anon)) == anon  # an anonymous visitor keeps its own conversation
    assert run(_session(url, {"token": forged}, None)) is None
    assert run(_session(url, {"token": expired}, None)) is None
