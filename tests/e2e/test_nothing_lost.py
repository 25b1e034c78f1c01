"""Nothing lost (issue 17): a borrower message is answered exactly once or shown as not delivered,
across a Rasa process killed with SIGKILL in the middle of the turn.

One real stack (backend, action server, Rasa) with the WeChat channel pointed at the fake WeChat API
and SMS at the fake Twilio API, and the web chat in headless Chromium. The action server is stopped
(SIGSTOP) to hold turns in flight; the claims' lease is 4 s here (a copy of config/business.yml).

* A WeChat retry while the owner's turn still runs is not processed; the message is answered once.
* Web chat, WeChat and SMS messages whose turn was running when Rasa was killed, and a web message
  typed while Rasa was down: after the restart the page resends (same client message id), WeChat and
  Twilio retry; each is answered exactly once, each tracker holds the user message once, a later
  retry of a processed message is not processed again.
* The page: a resend of a message processed before shows the answers it had exactly once; a message
  not acknowledged within the delivery deadline is shown as not delivered and goes out when tapped.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
import time
import uuid

import httpx
import pytest
import socketio
import yaml

from tests.channels.fake_twilio import FakeTwilio
from tests.channels.fake_wechat import FakeWeChat
from tests.channels.test_sms import (ACCOUNT_SID, AUTH_TOKEN, bodies, one_open_loan, post, twilio_form,
                                     twilio_settings)
from tests.channels.test_wechat import WeChatSide, new_msg_id, text_xml, wechat_settings
from tests.e2e.conftest import ROOT, running_stack
from webchat_page import borrower, yuan

pytestmark = pytest.mark.e2e

REPORTS = ROOT / "reports"
BALANCE = "我还欠多少钱"
THANKS = "谢谢"
LEASE = 4  # inbound.claim_lease_seconds in this stack's rules
TEXTS = yaml.safe_load((ROOT / "texts" / "zh" / "channel.yml").read_text(encoding="utf-8"))["webchat"]


@pytest.fixture(scope="module")
def lost(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("nothing_lost")
    rules = yaml.safe_load((ROOT / "config" / "business.yml").read_text(encoding="utf-8"))
    # The delivery deadline outlasts a Rasa restart on a busy machine (minutes); its expiry is tested
    # with a message written long ago (test_a_message_not_acknowledged_in_time...).
    rules["inbound"] = {"claim_lease_seconds": LEASE, "webchat_delivery_seconds": 900}
    (run_dir / "business.yml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    wechat = FakeWeChat().start()
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as twilio:
        gen = running_stack(run_dir, {
            "DATABASE_URL": f"sqlite:///{run_dir / 'loan.db'}",
            "RASA_TRACKER_URL": f"sqlite:///{run_dir / 'tracker.db'}",
            "BUSINESS_RULES_PATH": str(run_dir / "business.yml"),
            **wechat_settings(wechat), **twilio_settings(twilio),
        })
        stack = next(gen)
        try:
            yield Lost(stack, WeChatSide(stack, wechat, run_dir), twilio)
        finally:
            gen.close()
            wechat.stop()


class Lost:
    def __init__(self, stack, wx: WeChatSide, twilio: FakeTwilio) -> None:
        self.stack, self.wx, self.twilio = stack, wx, twilio

    # processes ---------------------------------------------------------------------------------
    def signal(self, name: str, sig: int) -> None:
        os.killpg(self.stack.processes.procs[name].pid, sig)

    def kill_rasa(self) -> None:
        proc = self.stack.processes.procs["rasa"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def restart_rasa(self) -> None:
        s = self.stack.processes
        svc = next(v for v in s.services if v.name == "rasa")
        s._spawn(svc, s._child_env())
        s.wait_healthy(svc)

    # records -----------------------------------------------------------------------------------
    def claims(self) -> dict[str, tuple[str, int]]:
        with self.stack.db() as conn:
            return {k: (state, attempts) for k, state, attempts in
                    conn.execute("SELECT key, state, attempts FROM inbound_events WHERE state IS NOT NULL")}

    def wait_claims(self, keys: list[str], state: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.claims()
            if all(got.get(k, (None,))[0] == state for k in keys):
                return
            time.sleep(0.05)
        raise AssertionError(f"claims {keys} not {state}: {[self.claims().get(k) for k in keys]}")

    def user_events(self, sender: str) -> list[tuple[str, str]]:
        r = httpx.get(f"{self.stack.rasa_url}/conversations/{sender}/tracker",
                      params={"token": self.stack.env["RASA_API_TOKEN"]}, timeout=30)
        r.raise_for_status()
        return [(e.get("text"), e.get("message_id")) for e in r.json().get("events") or [] if e.get("event") == "user"]


def in_thread(fn, *args) -> dict:
    """Run fn(*args) in a thread; the dict gets "result" or "error" when it ends."""
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - the test reads it
            out["error"] = exc

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


def settle(seconds: float = 1.5) -> None:
    time.sleep(seconds)  # nothing more arrives (a second answer would come within this)


# ---- the page -----------------------------------------------------------------------------------

def sign_in(page, lost: Lost, phone: str) -> None:
    """Sign in on the page; the code goes out through the fake Twilio API in this stack."""
    page.goto(f"{lost.stack.backend_url}/chat")
    page.fill("#phone", phone)
    seen = len(lost.twilio.messages("+86" + phone))
    page.click("#send-code")
    lost.twilio.wait_for(lambda msgs: len([m for m in msgs if m.to == "+86" + phone]) > seen, 30)
    code = re.search(r"\d{6}", lost.twilio.messages("+86" + phone)[-1].body).group(0)
    page.fill("#code", code)
    page.click("#sign-in")
    page.wait_for_selector("#chat:not([hidden])")
    page.wait_for_function(f"document.getElementById('status').textContent === {json.dumps(TEXTS['connected'])}")


def signed_in_sender(page) -> str:
    """The conversation the page's sign-in token names ("web:s-…")."""
    return page.evaluate("JSON.parse(atob(localStorage.getItem('chat.token').split('.')[1]"
                         ".replace(/-/g, '+').replace(/_/g, '/'))).sub")


def type_message(page, text: str) -> None:
    page.fill("#text", text)
    page.click(".composer button")


def history(page, sender: str) -> list[dict]:
    return page.evaluate(f"JSON.parse(localStorage.getItem('chat.history:{sender}') || '[]')")


def web_key(sender: str, cid: str) -> str:
    return f"web:{sender.removeprefix('web:')}:{uuid.UUID(cid).hex}"


# ---- tests ----------------------------------------------------------------------------------------

def test_a_wechat_retry_while_the_turn_still_runs_is_not_processed(lost):
    openid, _, loan = lost.wx.bound_openids()[0]
    msg_id = new_msg_id()
    lost.signal("actions", signal.SIGSTOP)  # the turn waits for the action server
    try:
        first = in_thread(lost.wx.post, text_xml(openid, BALANCE, msg_id))
        lost.wait_claims([f"wechat:{msg_id}"], "in_progress")
        started = time.monotonic()
        retry = lost.wx.post(text_xml(openid, BALANCE, msg_id))
        assert (retry.status_code, retry.text) == (200, "success")
        assert time.monotonic() - started < 5  # within WeChat's 5 s
        first["thread"].join(10)
        assert (first["result"].status_code, first["result"].text) == (200, "success")
        assert lost.claims()[f"wechat:{msg_id}"] == ("in_progress", 1)  # still the first owner's (renewed)
        assert lost.wx.fake.texts_to(openid) == []
    finally:
        lost.signal("actions", signal.SIGCONT)
    reply = lost.wx.reply_after(openid, 0)
    settle()
    assert yuan(loan["total_outstanding"]) in reply
    assert len(lost.wx.fake.texts_to(openid)) == 1
    assert lost.claims()[f"wechat:{msg_id}"] == ("done", 1)
    assert lost.user_events(f"wechat:{openid}") == [(BALANCE, msg_id)]


def test_messages_in_flight_when_rasa_is_killed_are_answered_exactly_once_after_the_restart(lost, browser):
    stack = lost.stack
    web_cid, web_phone = borrower(stack)
    (web_loan,) = stack.backend(f"/customers/{web_cid}/loans").json()
    openid, _, wx_loan = lost.wx.bound_openids()[1]
    sms_phone, _, sms_loan = one_open_loan(stack, 0)
    number, sid, msg_id = "+86" + sms_phone, "SM" + uuid.uuid4().hex, new_msg_id()

    context = browser.new_context(viewport={"width": 390, "height": 780}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, lost, web_phone)
    sender = signed_in_sender(page)

    lost.signal("actions", signal.SIGSTOP)
    try:
        type_message(page, BALANCE)
        # Shown at once, marked as sending until the server acknowledges it.
        page.wait_for_selector(".msg.user.pending .mark")
        assert page.locator(".msg.user.pending .mark").inner_text() == TEXTS["sending"]
        (first,) = [h for h in history(page, sender) if h["who"] == "user"]
        wx_call = in_thread(lost.wx.post, text_xml(openid, BALANCE, msg_id))
        sms_call = in_thread(post, stack, twilio_form(number, BALANCE, sid))
        keys = [web_key(sender, first["cid"]), f"wechat:{msg_id}", f"sms:{sid}"]
        lost.wait_claims(keys, "in_progress")
        lost.kill_rasa()  # in the middle of all three turns
        for call in (wx_call, sms_call):
            call["thread"].join(10)
            assert "error" in call, f"answered although the turn never finished: {call.get('result')}"
    finally:
        lost.signal("actions", signal.SIGCONT)

    page.wait_for_function(f"document.getElementById('status').textContent === {json.dumps(TEXTS['reconnecting'])}")
    type_message(page, THANKS)  # while Rasa is down: kept, pending
    page.wait_for_function("document.querySelectorAll('.msg.user.pending').length === 2")
    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / "webchat-pending.png"), full_page=True)
    started = time.monotonic()
    lost.restart_rasa()
    restart_seconds = time.monotonic() - started

    # WeChat and Twilio retry (the lease has run out: taken over).
    retry = lost.wx.post(text_xml(openid, BALANCE, msg_id))
    assert (retry.status_code, retry.text) == (200, "success")
    reply = lost.wx.reply_after(openid, 0)
    assert yuan(wx_loan["total_outstanding"]) in reply
    r = post(stack, twilio_form(number, BALANCE, sid))
    assert r.status_code == 200 and "<Response/>" in r.text
    lost.twilio.wait_for(lambda msgs: yuan(sms_loan["total_outstanding"]) in "".join(
        m.body for m in msgs if m.to == number), 60)

    # The page reconnected by itself and resent both, in order, with their ids.
    page.wait_for_function(
        "(() => { const h = JSON.parse(localStorage.getItem('chat.history:' + %s));"
        " const users = h.filter(i => i.who === 'user');"
        " return users.every(u => u.state === 'sent' && h.some(b => b.reply_to === u.cid)); })()"
        % json.dumps(sender), timeout=90000)
    settle()
    items = history(page, sender)
    users = [h for h in items if h["who"] == "user"]
    assert [(u["text"], u["state"]) for u in users] == [(BALANCE, "sent"), (THANKS, "sent")]
    bots = [h for h in items if h["who"] == "bot"]
    assert {b["reply_to"] for b in bots} == {u["cid"] for u in users}
    # Each answer under the message it answers, in the page and in its history.
    assert [h.get("cid") or h["reply_to"] for h in items] == \
        [users[0]["cid"]] * (1 + sum(b["reply_to"] == users[0]["cid"] for b in bots)) + \
        [users[1]["cid"]] * (1 + sum(b["reply_to"] == users[1]["cid"] for b in bots))
    assert page.locator(".messages li").all_inner_texts() == [h["text"] for h in items]
    page_text = page.locator(".messages").inner_text()
    assert page_text.count(yuan(web_loan["total_outstanding"])) == 1
    assert TEXTS["sending"] not in page_text and TEXTS["not_delivered"] not in page_text
    page.screenshot(path=str(REPORTS / "webchat-resend.png"), full_page=True)

    # Each tracker holds each user message once; each claim was taken over once and is done.
    assert lost.user_events(sender) == [(BALANCE, uuid.UUID(users[0]["cid"]).hex),
                                        (THANKS, uuid.UUID(users[1]["cid"]).hex)]
    assert lost.user_events(f"wechat:{openid}") == [(BALANCE, msg_id)]
    assert [t for t, _ in lost.user_events(f"sms:{number}")] == [BALANCE]
    claims = lost.claims()
    assert [claims[k] for k in keys] == [("done", 2)] * 3
    assert claims[web_key(sender, users[1]["cid"])] == ("done", 1)

    # Exactly one answer on WeChat and by SMS; a later retry of a processed message changes nothing.
    sms_before = bodies(lost.twilio, number)
    assert "".join(sms_before).count(yuan(sms_loan["total_outstanding"])) == 1
    assert len(lost.wx.fake.texts_to(openid)) == 1
    assert lost.wx.post(text_xml(openid, BALANCE, msg_id)).text == "success"
    assert "<Response/>" in post(stack, twilio_form(number, BALANCE, sid)).text
    settle()
    assert len(lost.wx.fake.texts_to(openid)) == 1
    assert bodies(lost.twilio, number) == sms_before
    assert [lost.claims()[k] for k in keys] == [("done", 2)] * 3
    print(f"Rasa restarted in {restart_seconds:.1f} s")
    context.close()


async def _send_twice(url: str, text: str, cid: str) -> tuple[str, list[dict], dict, dict]:
    """An anonymous socket.io visitor sends one message twice with the same id (its first
    acknowledgement lost, say): the answers it got and both acknowledgements."""
    client = socketio.AsyncClient(reconnection=False)
    loop = asyncio.get_running_loop()
    confirmed: asyncio.Future = loop.create_future()
    answers: list[dict] = []
    client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
    client.on("bot_uttered", lambda data: answers.append(data))
    await client.connect(url, transports=["websocket"], socketio_path="/socket.io")
    try:
        await client.emit("session_request", {"session_id": None})
        sender = await asyncio.wait_for(confirmed, 10)
        first = await client.call("user_uttered", {"message": text, "session_id": sender, "cid": cid}, timeout=30)
        await asyncio.sleep(0.5)
        second = await client.call("user_uttered", {"message": text, "session_id": sender, "cid": cid}, timeout=30)
        await asyncio.sleep(0.5)
        return sender, answers, first, second
    finally:
        await client.disconnect()


def run(coro):
    """Playwright's sync API keeps an event loop in this thread: run the client in another."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_resent_processed_message_is_acknowledged_with_its_answers_and_shown_once(lost, browser):
    cid = str(uuid.uuid4())
    sender, answers, first, second = run(_send_twice(lost.stack.rasa_url, "你好", cid))
    assert answers and all(a["reply_to"] == cid for a in answers)
    assert first == {"cid": cid, "status": "done"}
    assert second["status"] == "duplicate" and second["cid"] == cid
    assert [r["text"] for r in second["replies"]] == [a["text"] for a in answers]
    assert lost.user_events(sender) == [("你好", uuid.UUID(cid).hex)]

    # The same conversation in the page, with that message still pending there (its acknowledgement
    # never arrived): resent, acknowledged as a duplicate, its answers shown once, nothing processed again.
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{lost.stack.backend_url}/chat")
    pending = [{"who": "user", "text": "你好", "payload": "你好", "cid": cid, "state": "pending",
                "at": int(time.time() * 1000)}]
    page.evaluate("([anon, items]) => { localStorage.setItem('chat.anon', anon);"
                  " localStorage.setItem('chat.history:' + anon, JSON.stringify(items)); }", [sender, pending])
    page.reload()
    page.wait_for_function("document.querySelectorAll('.msg.user.pending').length === 0", timeout=30000)
    page.wait_for_function(f"document.querySelectorAll('.msg.bot').length === {len(second['replies'])}")
    settle(1)
    assert page.locator(".msg.bot").all_inner_texts() == [a["text"] for a in answers]
    assert lost.user_events(sender) == [("你好", uuid.UUID(cid).hex)]
    context.close()


def test_a_message_not_acknowledged_in_time_is_shown_as_not_delivered_and_sent_on_a_tap(lost, browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{lost.stack.backend_url}/chat")
    page.click("#anonymous")
    page.wait_for_selector("#chat:not([hidden])")
    sender = page.evaluate("localStorage.getItem('chat.anon')")
    cid = str(uuid.uuid4())
    # Written an hour ago and never acknowledged (the page was closed while Rasa was down).
    stale = [{"who": "user", "text": "你好", "payload": "你好", "cid": cid, "state": "pending",
              "at": int(time.time() * 1000) - 3_600_000}]
    page.evaluate("([anon, items]) => localStorage.setItem('chat.history:' + anon, JSON.stringify(items))",
                  [sender, stale])
    page.reload()
    page.wait_for_selector(".msg.user.failed .mark")
    assert page.locator(".msg.user.failed .mark").inner_text() == TEXTS["not_delivered"]
    settle(1)
    assert lost.user_events(sender) == []  # not sent behind the borrower's back
    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / "webchat-not-delivered.png"), full_page=True)

    page.click(".msg.user.failed")
    page.wait_for_function("document.querySelectorAll('.msg.bot').length > 0", timeout=30000)
    page.wait_for_function("document.querySelectorAll('.msg.user.pending, .msg.user.failed').length === 0")
    assert lost.user_events(sender) == [("你好", uuid.UUID(cid).hex)]
    context.close()


def test_every_claim_of_this_stack_ended_done(lost):
    """Nothing was left half-way: every claim made with a lease here was completed."""
    assert {state for state, _ in lost.claims().values()} == {"done"}

