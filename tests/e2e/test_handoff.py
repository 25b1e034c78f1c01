"""Handing a conversation to a person, end to end: real Rasa, action server, backend and console.

The borrower's side goes through Rasa's REST channel (its replies come back in the HTTP response);
the staff side through the console's own endpoints, signed in as the demo staff. Staff replies
reach the borrower through Rasa's tracker events API, so here they are read back from the tracker;
the live delivery to the web chat, WeChat and SMS is covered by test_console_browser.py and
tests/channels/test_console_channels.py.
"""
from __future__ import annotations

import uuid

import httpx
import pytest

from console_client import ConsoleUser  # noqa: E402

pytestmark = pytest.mark.e2e


def anon() -> str:
    return f"web:anon-{uuid.uuid4().hex[:10]}"


def staff(stack, username: str = "agent1") -> ConsoleUser:
    return ConsoleUser(stack.backend_url, username, stack.env["CONSOLE_DEMO_PASSWORD"])


def case_of(stack, sender: str) -> dict:
    r = stack.backend(f"/handoffs/by-conversation/{sender}")
    assert r.status_code == 200, r.text
    return r.json()


def tracker(stack, sender: str) -> list[dict]:
    r = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                  params={"token": stack.env["RASA_API_TOKEN"], "include_events": "ALL"}, timeout=30)
    r.raise_for_status()
    return r.json()["events"]


def expected_wait_text(case: dict, created: dict) -> str:
    """The bot's promise, as texts/zh/knowledge.yml words it for the live queue."""
    if created["staffed"]:
        ahead = created["position"] - 1
        queue = f"您前面还有{ahead}位客户在等待，" if ahead else ""
        return (f"好的，已为您转接人工客服（工单号{case['reference']}）。接下来将由我们的人工客服为您服务，"
                f"{queue}预计约{created['wait_minutes']}分钟内回复。")
    return f"现在不在服务时间。您的请求已登记（工单号{case['reference']}）"


def test_request_human_opens_a_case_pauses_and_staff_take_over(stack):
    cid = stack.db().execute("SELECT customer_id FROM loans WHERE status = 'active' LIMIT 1").fetchone()[0]
    sender = stack.web_sender(cid)
    stack.texts(sender, "你好")
    reply = stack.texts(sender, "转人工")
    case = case_of(stack, sender)
    assert (case["reason"], case["priority"], case["status"], case["customer_id"]) == ("request_human", 3, "open", cid)
    assert "身份已验证：是" in case["summary"] and "客户：转人工" in case["summary"]
    # The wait quoted is the backend's own estimate for this case (POST again returns the same case).
    created = stack.backend_post("/handoffs", json={
        "conversation": sender, "channel": "web", "reason": "request_human", "summary": "x"}).json()
    assert created["id"] == case["id"]
    assert expected_wait_text(case, created) in reply

    # Paused: the bot says nothing, the message is stored and reaches the console within 2 s.
    assert stack.say(sender, "我等着呢，我还欠多少钱") == []
    agent = staff(stack)
    agent.post(f"/cases/{case['id']}/claim")
    agent.wait_for_borrower_text(case["id"], "我等着呢，我还欠多少钱", within=2.0)

    agent.post(f"/cases/{case['id']}/reply", {"text": "您好，我是客服小王，马上帮您查询。"})
    staff_turns = [e for e in tracker(stack, sender) if e["event"] == "bot" and (e.get("metadata") or {}).get("staff")]
    assert [(e["text"], e["metadata"]["staff"]) for e in staff_turns] == [("您好，我是客服小王，马上帮您查询。", "客服小王")]
    assert case_of(stack, sender)["first_response_at"] is not None
    agent.post(f"/cases/{case['id']}/reply", {"text": "如需回电请留意13812345678的来电"})
    last_bot = [e for e in tracker(stack, sender) if e["event"] == "bot"][-1]
    assert last_bot["text"] == "如需回电请留意138****5678的来电"  # people's replies are masked like the bot's
    detail = agent.get(f"/cases/{case['id']}")
    assert [t["who"] for t in detail["transcript"]][-4:] == ["system", "borrower", "staff", "staff"]
    assert detail["customer"]["loans"], "the customer panel shows the verified borrower's loans"

    # Return to assistant: the case closes, the bot asks for a rating, the borrower gives 5.
    agent.post(f"/cases/{case['id']}/hand-back")
    assert stack.backend(f"/handoffs/by-conversation/{sender}").status_code == 404
    bot_after = [e["text"] for e in tracker(stack, sender) if e["event"] == "bot"][-2:]
    assert bot_after == ["本次人工服务已结束，感谢您的耐心。接下来由智能助手继续为您服务。",
                         "请为本次人工服务打分：5分非常满意，1分非常不满意。"]
    assert "还有什么想对我们说的吗" in stack.texts(sender, "5")
    assert stack.texts(sender, "客服很耐心，谢谢") == "感谢您的评价！如还有其他问题，随时告诉我。"
    with stack.db() as conn:
        row = conn.execute("SELECT status, csat, csat_comment, assigned_to FROM handoff_cases WHERE id = ?",
                           (case["id"],)).fetchone()
    assert row == ("closed", 5, "客服很耐心，谢谢", "agent1")
    # The bot is back: it answers again.
    assert "¥" in stack.texts(sender, "我还欠多少钱")


def test_distress_goes_to_a_person_at_once_with_the_hotline(stack):
    sender = anon()
    reply = stack.texts(sender, "催得我真的不想活了")
    assert reply.startswith("听到您这样说，我们非常担心您。如果您感到难以承受，请立即拨打24小时心理援助热线12356")
    case = case_of(stack, sender)
    assert (case["reason"], case["priority"], case["customer_id"]) == ("distress", 1, None)
    assert stack.say(sender, "喂") == []


def test_a_form_in_progress_ends_when_the_borrower_asks_for_a_person(stack):
    sender = anon()
    assert "手机号" in stack.texts(sender, "我还欠多少钱")
    reply = stack.texts(sender, "算了，直接给我转人工")
    assert "已为您转接人工客服" in reply or "现在不在服务时间" in reply
    assert case_of(stack, sender)["reason"] == "request_human"
    active_loops = [e.get("name") for e in tracker(stack, sender) if e["event"] == "active_loop"]
    assert active_loops[-1] is None


def test_vip_or_high_risk_customer_asking_for_a_plan_goes_to_a_person(stack):
    with stack.db() as conn:
        cid = conn.execute("SELECT id FROM customers WHERE risk_tier = 'high' OR value_tier = 'vip' "
                           "ORDER BY id LIMIT 1").fetchone()[0]
        low = conn.execute("SELECT c.id FROM customers c JOIN loans l ON l.customer_id = c.id WHERE c.risk_tier = 'low' "
                           "AND c.value_tier != 'vip' AND l.status = 'active' ORDER BY c.id LIMIT 1").fetchone()[0]
    stack.texts(stack.web_sender(cid), "你好")
    stack.texts(stack.web_sender(cid), "我失业了还不上，能不能协商分期")
    assert case_of(stack, stack.web_sender(cid))["reason"] == "vip_plan"
    stack.texts(stack.web_sender(low), "你好")
    answer = stack.texts(stack.web_sender(low), "我失业了还不上，能不能协商分期")
    assert stack.backend(f"/handoffs/by-conversation/{stack.web_sender(low)}").status_code == 404
    assert "代理" in answer or "协商" in answer


def _age_conversation(stack, sender: str, seconds: int) -> None:
    """Move every stored event of the conversation back in time, as if the borrower last wrote
    `seconds` ago. Rasa reads events from its tracker store on every message, so this is what it
    sees next (its HTTP API cannot rewrite stored events: the SQL store only appends)."""
    import sqlite3

    with sqlite3.connect(stack.env["RASA_TRACKER_URL"].removeprefix("sqlite:///")) as conn:
        changed = conn.execute(
            "UPDATE events SET timestamp = timestamp - ?, "
            "data = json_set(data, '$.timestamp', json_extract(data, '$.timestamp') - ?) WHERE sender_id = ?",
            (seconds, seconds, sender)).rowcount
    assert changed > 0


def test_a_new_session_does_not_silently_end_a_handoff(stack):
    """Rasa resets the paused flag when a session expires (60 min); the session start re-pauses
    while the case is open, and only then: after the case is closed the bot answers again."""
    waiting, closed = anon(), anon()
    for sender in (waiting, closed):
        stack.texts(sender, "转人工")
    agent, closed_id = staff(stack), case_of(stack, closed)["id"]  # closed in the console (resumes, asks a rating)
    agent.post(f"/cases/{closed_id}/claim")
    agent.post(f"/cases/{closed_id}/hand-back")
    for sender in (waiting, closed):
        _age_conversation(stack, sender, 2 * 3600)

    assert stack.say(waiting, "人呢？怎么还没人回复") == []
    events = tracker(stack, waiting)
    last_start = max(i for i, e in enumerate(events) if e["event"] == "session_started")
    assert [e["event"] for e in events[last_start:]].count("pause") == 1
    assert events[-1]["event"] == "user" and events[-1]["text"] == "人呢？怎么还没人回复"

    assert stack.texts(closed, "逾期会上征信吗") != ""


def test_sessions_are_counted_for_the_dashboard(stack):
    sender = anon()
    stack.texts(sender, "你好")
    with stack.db() as conn:
        rows = conn.execute("SELECT channel, customer_id FROM conversation_sessions WHERE conversation = ?",
                            (sender,)).fetchall()
    assert rows == [("web", None)]
