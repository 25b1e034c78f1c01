"""The staff console's sign-in, permissions, CSRF, masking and audit, through the real app and
database (SQLite and PostgreSQL). Replies and hand-back, which go through Rasa, are tested end to
end (tests/e2e/test_handoff.py, tests/e2e/test_console_browser.py); here Rasa is unreachable on
purpose, so the refusals must happen before any call to it.

Rules under test (config/business.yml, ``console``): idle sessions end after 30 minutes, any
session after 10 hours; 5 failed sign-ins per username or client address within 15 minutes lock
sign-in (429) until the window has passed.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from backend.core.clock import SHANGHAI
from backend.models import (
    AuditLog, CannedReply, ConversationSession, HandoffCase, HandoffNote, LoginAttempt, StaffSession, StaffUser,
)
from backend.services import console, staff
from backend.services.rasa_api import RasaClient
from testkit import HEADERS, ManualClock

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
PASSWORD = "console-test-pass-1"


@pytest.fixture(scope="module")
def people(app):
    """agent1, agent2, supervisor1 (created once per database)."""
    with app.state.sessionmaker() as db:
        for username, name, role in (("agent1", "客服小王", "agent"), ("agent2", "客服小李", "agent"),
                                     ("supervisor1", "主管老陈", "supervisor")):
            staff.create_user(db, username, name, role, PASSWORD, T0, "test")
        db.commit()
    app.state.rasa = RasaClient("http://127.0.0.1:9", "unreachable")  # nothing listens on port 9


@pytest.fixture
def clock(app, people):
    with app.state.sessionmaker() as db:
        for model in (HandoffNote, HandoffCase, StaffSession, LoginAttempt, CannedReply, ConversationSession):
            db.execute(delete(model))
        db.commit()
    original, manual = app.state.clock, ManualClock(T0)
    app.state.clock = manual
    yield manual
    app.state.clock = original


def browser(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def sign_in(app, username: str, password: str = PASSWORD) -> TestClient:
    c = browser(app)
    page = c.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = c.post("/console/login", data={"username": username, "password": password, "csrf": csrf})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console"
    c.csrf = re.search(r'data-csrf="([^"]+)"', c.get("/console").text).group(1)
    return c


def attempt(app, username: str, password: str):
    c = browser(app)
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/login").text).group(1)
    return c.post("/console/login", data={"username": username, "password": password, "csrf": csrf})


def write(c: TestClient, method: str, path: str, json=None, csrf: str | None = "own"):
    headers = {"X-CSRF-Token": c.csrf if csrf == "own" else csrf} if csrf else {}
    return c.request(method, f"/console/api{path}", json=json, headers=headers)


def open_case(client, book=None, summary="客户要求转人工", customer_id=None) -> dict:
    conversation = f"wechat:o{uuid.uuid4().hex[:20]}"
    body = {"conversation": conversation, "channel": "wechat", "reason": "request_human", "summary": summary}
    if customer_id:
        body["customer_id"] = customer_id
    r = client.post("/api/v1/handoffs", headers=HEADERS, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def audit_actions(app, after: int = 0) -> list[tuple[str, str]]:
    with app.state.sessionmaker() as db:
        return [(a.actor, a.action) for a in db.scalars(select(AuditLog).where(AuditLog.id > after).order_by(AuditLog.id))]


def last_audit(app) -> int:
    with app.state.sessionmaker() as db:
        return db.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1)) or 0


def error_code(r) -> str:
    return r.json()["error"]["code"]


# --------------------------------------------------------------------------- sign-in

def test_password_is_stored_as_argon2id_never_in_clear(app, people):
    with app.state.sessionmaker() as db:
        user = db.scalar(select(StaffUser).where(StaffUser.username == "agent1"))
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_sign_in_opens_a_session_stored_only_as_a_hash(app, clock):
    before = last_audit(app)
    c = sign_in(app, "agent1")
    token = c.cookies.get("console_session")
    with app.state.sessionmaker() as db:
        sessions = db.scalars(select(StaffSession)).all()
    assert [s.token_hash for s in sessions] == [hashlib.sha256(token.encode()).hexdigest()]
    assert audit_actions(app, before) == [("agent1", "staff.login")]
    assert c.get("/console/api/queue").status_code == 200


def test_wrong_password_is_refused_and_counted(app, clock):
    before = last_audit(app)
    r = attempt(app, "agent1", "wrong-password-x")
    assert r.status_code == 401
    assert "用户名或密码错误" in r.text
    assert "console_session" not in r.cookies
    with app.state.sessionmaker() as db:
        rows = db.execute(select(LoginAttempt.username, LoginAttempt.success)).all()
    assert rows == [("agent1", False)]
    assert audit_actions(app, before) == [("agent1", "staff.login_failed")]


def test_unknown_user_gets_the_same_answer(app, clock):
    r = attempt(app, "nobody", "whatever-password")
    assert r.status_code == 401
    assert "用户名或密码错误" in r.text


def test_login_form_without_its_csrf_token_is_refused(app, clock):
    c = browser(app)
    c.get("/console/login")
    r = c.post("/console/login", data={"username": "agent1", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403
    with app.state.sessionmaker() as db:
        assert db.scalars(select(StaffSession)).all() == []


def test_five_failures_lock_sign_in_for_the_window(app, clock):
    for _ in range(5):
        assert attempt(app, "agent2", "wrong-password-x").status_code == 401
    locked = attempt(app, "agent2", PASSWORD)  # right password, still refused
    assert locked.status_code == 429
    assert "15分钟后再试" in locked.text
    clock.advance(minutes=14, seconds=59)
    assert attempt(app, "agent2", PASSWORD).status_code == 429
    clock.advance(minutes=15, seconds=2)  # all failures now older than 15 minutes
    assert attempt(app, "agent2", PASSWORD).status_code == 303


def test_failures_from_one_address_lock_every_username_there(app, clock):
    for name in ("a1", "a2", "a3", "a4", "a5"):
        attempt(app, name, "wrong-password-x")
    assert attempt(app, "agent1", PASSWORD).status_code == 429


def test_idle_session_expires_after_30_minutes(app, clock):
    c = sign_in(app, "agent1")
    clock.advance(minutes=29)
    assert c.get("/console/api/queue").status_code == 200  # activity renews the idle timer
    clock.advance(minutes=30, seconds=1)
    before = last_audit(app)
    r = c.get("/console/api/queue")
    assert r.status_code == 401 and error_code(r) == "not_signed_in"
    assert audit_actions(app, before) == [("agent1", "staff.session_expired")]
    page = c.get("/console")
    assert page.status_code == 303 and page.headers["location"] == "/console/login"


def test_any_session_ends_after_10_hours(app, clock):
    c = sign_in(app, "agent1")
    for _ in range(20):  # active every 29 minutes: 9 h 40 min
        clock.advance(minutes=29)
        assert c.get("/console/api/queue").status_code == 200
    clock.advance(minutes=21)  # 10 h 01 min after sign-in
    assert c.get("/console/api/queue").status_code == 401


def test_sign_out_ends_the_session(app, clock):
    c = sign_in(app, "agent1")
    token = c.cookies.get("console_session")
    assert c.post("/console/logout", data={"csrf": "wrong"}).status_code == 403
    assert c.get("/console/api/queue").status_code == 200
    r = c.post("/console/logout", data={"csrf": c.csrf})
    assert r.status_code == 303
    replay = browser(app)  # the old cookie, replayed, no longer opens anything
    replay.cookies.set("console_session", token, path="/console")
    assert replay.get("/console/api/queue").status_code == 401


def test_pages_and_api_need_a_session(app, clock):
    c = browser(app)
    for path in ("/console", "/console/cases/1", "/console/dashboard"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/console/login", path
    for path in ("/console/api/queue", "/console/api/cases/1", "/console/api/dashboard", "/console/api/canned"):
        r = c.get(path)
        assert r.status_code == 401 and error_code(r) == "not_signed_in", path


# --------------------------------------------------------------------------- CSRF and permissions

def test_state_changes_need_the_session_csrf_token(app, client, clock):
    case = open_case(client)
    c = sign_in(app, "agent1")
    for token in (None, "forged-token"):
        r = write(c, "POST", f"/cases/{case['id']}/claim", csrf=token)
        assert r.status_code == 403 and error_code(r) == "csrf"
    with app.state.sessionmaker() as db:
        assert db.get(HandoffCase, case["id"]).status.value == "open"
    assert write(c, "POST", f"/cases/{case['id']}/claim").status_code == 200


def test_an_agent_cannot_open_another_agents_case(app, client, clock):
    case = open_case(client, summary="客户电话13812345678，身份证110105198503011234")
    a1, a2, sup = sign_in(app, "agent1"), sign_in(app, "agent2"), sign_in(app, "supervisor1")
    assert a2.get(f"/console/api/cases/{case['id']}").status_code == 200  # waiting: any agent may look
    before = last_audit(app)
    assert write(a1, "POST", f"/cases/{case['id']}/claim").json()["assigned_to"] == "agent1"
    assert audit_actions(app, before) == [("agent1", "handoff.claimed")]

    denied = a2.get(f"/console/api/cases/{case['id']}")
    assert denied.status_code == 403 and error_code(denied) == "not_your_case"
    assert a2.get(f"/console/api/cases/{case['id']}/transcript").status_code == 403
    assert write(a2, "POST", f"/cases/{case['id']}/notes", {"text": "偷看"}).status_code == 403
    assert write(a2, "POST", f"/cases/{case['id']}/reply", {"text": "你好"}).status_code == 403
    assert write(a2, "POST", f"/cases/{case['id']}/hand-back").status_code == 403
    taken = write(a2, "POST", f"/cases/{case['id']}/claim")
    assert taken.status_code == 409 and error_code(taken) == "already_claimed"

    before = last_audit(app)
    seen = sup.get(f"/console/api/cases/{case['id']}")
    assert seen.status_code == 200
    assert audit_actions(app, before) == [("supervisor1", "handoff.viewed")]  # who opened whose data
    detail = seen.json()
    assert detail["case"]["assigned_to"] == "agent1" and detail["mine"] is False
    assert detail["transcript"] is None and detail["transcript_error"] == "对话服务暂时不可用，请稍后重试"


def test_only_a_supervisor_reassigns(app, client, clock):
    case = open_case(client)
    a1, sup = sign_in(app, "agent1"), sign_in(app, "supervisor1")
    write(a1, "POST", f"/cases/{case['id']}/claim")
    r = write(a1, "POST", f"/cases/{case['id']}/reassign", {"staff": "agent2"})
    assert r.status_code == 403 and error_code(r) == "forbidden"
    unknown = write(sup, "POST", f"/cases/{case['id']}/reassign", {"staff": "ghost"})
    assert unknown.status_code == 422
    before = last_audit(app)
    assert write(sup, "POST", f"/cases/{case['id']}/reassign", {"staff": "agent2"}).json()["assigned_to"] == "agent2"
    assert audit_actions(app, before) == [("supervisor1", "handoff.reassigned")]
    assert a1.get(f"/console/api/cases/{case['id']}").status_code == 403


def test_reply_and_hand_back_need_the_case_claimed_first(app, client, clock):
    case = open_case(client)
    a1 = sign_in(app, "agent1")
    for path, body in ((f"/cases/{case['id']}/reply", {"text": "您好"}), (f"/cases/{case['id']}/hand-back", None)):
        r = write(a1, "POST", path, body)
        assert r.status_code == 409 and error_code(r) == "not_claimed"
    blank = write(a1, "POST", f"/cases/{case['id']}/notes", {"text": "   "})
    assert blank.status_code == 422
    with app.state.sessionmaker() as db:
        assert db.get(HandoffCase, case["id"]).first_response_at is None


def test_reply_when_rasa_is_down_changes_nothing(app, client, clock):
    case = open_case(client)
    a1 = sign_in(app, "agent1")
    write(a1, "POST", f"/cases/{case['id']}/claim")
    r = write(a1, "POST", f"/cases/{case['id']}/reply", {"text": "您好，我是人工客服"})
    assert r.status_code == 502 and error_code(r) == "rasa_unavailable"
    back = write(a1, "POST", f"/cases/{case['id']}/hand-back")
    assert back.status_code == 502
    with app.state.sessionmaker() as db:
        stored = db.get(HandoffCase, case["id"])
        assert (stored.status.value, stored.first_response_at) == ("claimed", None)


# --------------------------------------------------------------------------- masking, notes, canned replies

def test_no_full_phone_or_id_in_queue_case_or_pages(app, client, book, clock):
    cust = book.customer("李四")
    book.loan(cust.id, "12000.00", "0.1560", 12, T0.date().replace(day=1))
    case = open_case(client, summary=f"客户说手机{cust.phone}，身份证{cust.id_number}", customer_id=cust.id)
    sup = sign_in(app, "supervisor1")
    bodies = [sup.get("/console/api/queue").text, sup.get(f"/console/api/cases/{case['id']}").text,
              sup.get("/console").text, sup.get(f"/console/cases/{case['id']}").text]
    for text in bodies:
        assert cust.phone not in text and cust.id_number not in text and cust.id_number[:14] not in text
    panel = sup.get(f"/console/api/cases/{case['id']}").json()["customer"]
    assert panel["phone_masked"] == f"{cust.phone[:3]}****{cust.phone[-4:]}"
    assert panel["id_last4"] == f"****{cust.id_number[-4:]}"
    assert panel["name"] == "李*"
    assert panel["card"] == "招商银行 ****6789"
    assert [l["loan_no_last4"] for l in panel["loans"]] and panel["plan_requests"] == [] and panel["complaints"] == []
    queue_row = next(r for r in sup.get("/console/api/queue").json()["cases"] if r["id"] == case["id"])
    assert queue_row["customer"]["phone_masked"] == panel["phone_masked"]
    assert f"手机{cust.phone[:3]}****{cust.phone[-4:]}" in queue_row["summary"]


def test_private_note_is_masked_and_audited(app, client, clock):
    case = open_case(client)
    a1 = sign_in(app, "agent1")
    write(a1, "POST", f"/cases/{case['id']}/claim")
    before = last_audit(app)
    r = write(a1, "POST", f"/cases/{case['id']}/notes", {"text": "客户另一个号码13900001111，明天回电"})
    assert r.status_code == 201
    assert r.json()["text"] == "客户另一个号码139****1111，明天回电" and r.json()["author"] == "agent1"
    assert audit_actions(app, before) == [("agent1", "handoff.note_added")]
    notes = a1.get(f"/console/api/cases/{case['id']}").json()["notes"]
    assert [n["text"] for n in notes] == ["客户另一个号码139****1111，明天回电"]


def test_canned_replies_are_edited_by_supervisors_only(app, clock):
    a1, sup = sign_in(app, "agent1"), sign_in(app, "supervisor1")
    denied = write(a1, "POST", "/canned", {"title": "问候", "text": "您好"})
    assert denied.status_code == 403
    first = write(sup, "POST", "/canned", {"title": "问候", "text": "您好，我是人工客服"}).json()
    second = write(sup, "POST", "/canned", {"title": "稍等", "text": "请稍等"}).json()
    assert [r["title"] for r in a1.get("/console/api/canned").json()] == ["问候", "稍等"]
    assert write(a1, "DELETE", f"/canned/{first['id']}").status_code == 403
    assert write(sup, "DELETE", f"/canned/{first['id']}").status_code == 204
    assert [r["id"] for r in a1.get("/console/api/canned").json()] == [second["id"]]
    assert write(sup, "DELETE", f"/canned/{first['id']}").status_code == 404


# --------------------------------------------------------------------------- transcript and sessions

def test_transcript_turns_are_told_apart_and_masked():
    events = [
        {"event": "action", "name": "action_session_start", "timestamp": 1795000000},
        {"event": "user", "text": "我的手机是13812345678，转人工", "timestamp": 1795000001},
        {"event": "bot", "text": "好的，已为您转接人工客服", "timestamp": 1795000002},
        {"event": "pause", "timestamp": 1795000003},
        {"event": "user", "text": "还要等多久", "timestamp": 1795000004},
        {"event": "bot", "text": "您好，我是客服小王", "metadata": {"staff": "客服小王"}, "timestamp": 1795000005},
        {"event": "resume", "timestamp": 1795000006},
        {"event": "user", "text": "/EXTERNAL_handoff_closed",
         "parse_data": {"intent": {"name": "EXTERNAL_handoff_closed"}}, "timestamp": 1795000007},
        {"event": "bot", "text": "请打分", "data": {"buttons": [{"title": "5分"}, {"title": "1分"}]}, "timestamp": 1795000008},
    ]
    turns = console.transcript(events, SHANGHAI)
    assert [(t["who"], t["text"]) for t in turns] == [
        ("borrower", "我的手机是138****5678，转人工"),
        ("bot", "好的，已为您转接人工客服"),
        ("system", "会话已转人工（智能助手暂停）"),
        ("borrower", "还要等多久"),
        ("staff", "您好，我是客服小王"),
        ("system", "会话已交回智能助手"),
        ("bot", "请打分\n［5分］［1分］"),
    ]
    assert turns[4]["staff"] == "客服小王"
    assert turns[0]["at"] == datetime.fromtimestamp(1795000001, SHANGHAI).isoformat(timespec="seconds")


def test_the_bot_records_each_session(app, client, book, clock):
    cust = book.customer()
    r = client.post("/api/v1/conversations/sessions", headers=HEADERS,
                    json={"conversation": f"web:{cust.web_id}", "channel": "web", "customer_id": cust.id})
    assert r.status_code == 204
    bad = client.post("/api/v1/conversations/sessions", headers=HEADERS,
                      json={"conversation": "fax:1", "channel": "fax"})
    assert bad.status_code == 422
    with app.state.sessionmaker() as db:
        rows = db.execute(select(ConversationSession.conversation, ConversationSession.channel,
                                 ConversationSession.customer_id)).all()
    assert [(c, ch.value, cid) for c, ch, cid in rows] == [(f"web:{cust.web_id}", "web", cust.id)]
