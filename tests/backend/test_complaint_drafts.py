"""Complaint drafts and several categories per complaint (backend.services.complaints).

A complaint the borrower started in chat and left is posted with ``draft: true``: it is kept as a
live ticket (status ``draft``, 「草稿（客户未提交完）」) with a reference, the 15-day deadline, the
priority and reminder-pause rules of any complaint; staff see and work it. When the same borrower
later files the complaint in full within the link window, the draft is completed in place (one
ticket, outcome ``completed_draft``, deadline unchanged). ``other_categories`` lists categories
besides the main one, validated against the category codes.

Same module-database and clock conventions as tests/backend/test_complaints.py (business time
2026-11-23 10:00 Asia/Shanghai; decision in 15 days; link window 7 days; collection and privacy
high priority; collection pauses reminders).
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from backend.core.clock import SHANGHAI
from backend.models import AuditLog, ComplaintEvent, ComplaintTicket, StaffSession
from backend.services import staff
from backend.services.rasa_api import RasaClient
from testkit import HEADERS, REPORTS, ManualClock, assert_error, audit_since, last_audit_id, ok

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
BASE = "/api/v1/complaints"
DRAFT_LABEL = "草稿（客户未提交完）"
PASSWORD = "console-test-pass-1"


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def people(app):
    with app.state.sessionmaker() as db:
        for username, name, role in (("agent1", "客服小王", "agent"), ("supervisor1", "主管老陈", "supervisor")):
            staff.create_user(db, username, name, role, PASSWORD, T0, "test")
        db.commit()
    app.state.rasa = RasaClient("http://127.0.0.1:9", "unreachable")  # nothing listens on port 9


@pytest.fixture
def clock(app, people):
    with app.state.sessionmaker() as db:
        db.execute(delete(ComplaintEvent))
        db.execute(update(ComplaintTicket).values(linked_to_id=None))
        db.execute(delete(ComplaintTicket))
        db.execute(delete(StaffSession))
        db.commit()
    original, manual = app.state.clock, ManualClock(T0)
    app.state.clock = manual
    yield manual
    app.state.clock = original


def conv(channel: str = "wechat") -> str:
    return f"{channel}:o{uuid.uuid4().hex[:20]}"


def post(client, json):
    return client.post(BASE, headers=HEADERS, json=json)


def complaint(conversation: str | None = None, **fields) -> dict:
    conversation = conversation or conv()
    return {"conversation": conversation, "channel": conversation.partition(":")[0], **fields}


def draft(conversation: str | None = None, **fields) -> dict:
    return complaint(conversation, draft=True, **fields)


def counts(app) -> dict[str, int]:
    with app.state.sessionmaker() as db:
        return {m.__tablename__: db.scalar(select(func.count()).select_from(m))
                for m in (ComplaintTicket, ComplaintEvent, AuditLog)}


def kinds(ticket: dict) -> list[tuple]:
    return [(e["kind"], e["from_status"], e["to_status"]) for e in ticket["events"]]


def sign_in(app, username: str) -> TestClient:
    c = TestClient(app, follow_redirects=False)
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/login").text).group(1)
    r = c.post("/console/login", data={"username": username, "password": PASSWORD, "csrf": csrf})
    assert r.status_code == 303, r.text
    c.csrf = re.search(r'data-csrf="([^"]+)"', c.get("/console").text).group(1)
    return c


# --------------------------------------------------------------------------- creating drafts

def test_a_draft_is_a_live_ticket_with_the_usual_deadline_priority_and_pause(app, client, clock, book):
    cust = book.customer("韩梅梅")
    c = conv()
    before, audit_from = counts(app), last_audit_id(app)
    got = ok(post(client, draft(c, customer_id=cust.id, category="collection", other_categories=["privacy"],
                                description="催收员给我同事打电话")), 201)
    assert got["outcome"] == "draft"
    assert (got["status"], got["status_label"]) == ("draft", DRAFT_LABEL)
    assert (got["category"], got["category_label"]) == ("collection", "催收方式")
    assert (got["other_categories"], got["other_category_labels"]) == (["privacy"], ["隐私"])
    assert got["received_at"] == "2026-11-23T10:00:00+08:00"
    assert (got["due_at"], got["due_date"]) == ("2026-12-08T10:00:00+08:00", "2026-12-08")
    assert (got["priority"], got["offer_human"], got["pauses_reminders"]) == ("high", True, True)
    assert got["contact"] is None and got["desired_outcome"] is None
    assert got["reference"] == "CP20261123-0001"
    assert kinds(got) == [("drafted", None, "draft"), ("reminders_paused", None, None)]
    assert got["events"][0]["label"] == "已记录您未提交完的投诉"
    assert got["events"][0]["note"] == "催收员给我同事打电话"
    assert got["last_update"] == "已暂停自动还款提醒"
    assert counts(app) == {"complaint_tickets": before["complaint_tickets"] + 1,
                           "complaint_events": before["complaint_events"] + 2,
                           "audit_log": before["audit_log"] + 1}
    assert audit_since(app, audit_from) == [("actions", "complaint.drafted", "complaint_ticket", str(got["id"]), {
        "reference": "CP20261123-0001", "category": "collection", "other_categories": ["privacy"],
        "priority": "high", "distress": False, "channel": "wechat", "customer_id": cust.id, "linked_to": None,
        "pauses_reminders": True, "due_at": "2026-12-08T10:00:00+08:00"})]
    # a draft pauses automated reminders like a filed collection complaint
    pause = ok(client.get(f"/api/v1/customers/{cust.id}/reminder-pause", headers=HEADERS))
    assert pause == {"paused": True, "references": ["CP20261123-0001"]}
    # the borrower's list and the status query show it, labelled
    mine = ok(client.get(f"/api/v1/customers/{cust.id}/complaints", headers=HEADERS))
    assert [(t["reference"], t["status_label"]) for t in mine] == [("CP20261123-0001", DRAFT_LABEL)]
    shown = ok(client.get(f"{BASE}/CP20261123-0001", headers=HEADERS))
    assert (shown["status"], shown["other_category_labels"]) == ("draft", ["隐私"])


def test_a_draft_needs_only_a_category_or_some_words(app, client, clock):
    only_category = ok(post(client, draft(category="fees")), 201)
    assert (only_category["status"], only_category["description"], only_category["category"]) == ("draft", "", "fees")
    assert only_category["events"][0]["note"] == "（无文字内容）"
    only_words = ok(post(client, draft(description="你们的人态度太差了")), 201)
    assert (only_words["category"], only_words["category_label"]) == ("other", "其他")
    only_other = ok(post(client, draft(other_categories=["privacy"])), 201)
    assert (only_other["category"], only_other["other_categories"]) == ("privacy", [])
    short = ok(post(client, draft(category="service", description="差")), 201)
    assert short["description"] == "差"
    before = counts(app)
    for bad in ({}, {"description": "   "}, {"description": ""}, {"other_categories": []}):
        assert_error(post(client, draft(**bad)), 422, "invalid_input")
    assert counts(app) == before


def test_a_filed_complaint_still_needs_category_and_description(app, client, clock):
    before = counts(app)
    for missing in ("category", "description"):
        data = complaint(category="fees", description="多收了我一笔服务费")
        del data[missing]
        err = assert_error(post(client, data), 422, "invalid_input")
        assert missing in [f["field"] for f in err["fields"]]
    assert_error(post(client, complaint(category="fees", description="  ")), 422, "invalid_input")
    assert_error(post(client, complaint(category="fees", description="x", draft="maybe")), 422, "invalid_input")
    assert counts(app) == before


# --------------------------------------------------------------------------- other categories

@pytest.mark.parametrize("bad", [["harassment"], ["隐私"], ["privacy", "spam"], "privacy", [None],
                                 ["privacy"] * 7])
@pytest.mark.parametrize("as_draft", [False, True])
def test_unknown_other_categories_are_422_and_write_nothing(app, client, clock, bad, as_draft):
    before = counts(app)
    data = complaint(category="fees", description="多收了我一笔服务费", other_categories=bad,
                     **({"draft": True} if as_draft else {}))
    err = assert_error(post(client, data), 422, "invalid_input")
    assert any(f["field"].startswith("other_categories") for f in err["fields"]), err
    assert counts(app) == before


def test_other_categories_are_deduplicated_and_count_for_priority_and_pause(client, clock):
    got = ok(post(client, complaint(category="fees", description="乱收费还把我欠款告诉了我家人",
                                    other_categories=["privacy", "fees", "collection", "privacy"])), 201)
    assert (got["outcome"], got["status"], got["status_label"]) == ("new", "received", "已受理")
    assert got["other_categories"] == ["privacy", "collection"]
    assert got["other_category_labels"] == ["隐私", "催收方式"]
    assert (got["priority"], got["pauses_reminders"]) == ("high", True)  # privacy / collection among them
    plain = ok(post(client, complaint(category="fees", description="多收了费用", other_categories=["service"])), 201)
    assert (plain["priority"], plain["pauses_reminders"], plain["other_category_labels"]) == ("normal", False, ["服务态度"])


def test_a_follow_up_adds_new_categories_to_the_open_ticket(client, clock):
    c = conv()
    first = ok(post(client, complaint(c, category="collection", description="一天打十几个电话")), 201)
    clock.advance(hours=1)
    again = ok(post(client, complaint(c, category="collection", description="还打给我父母",
                                      other_categories=["privacy"])), 200)
    assert (again["outcome"], again["reference"]) == ("appended", first["reference"])
    assert again["other_categories"] == ["privacy"]
    assert again["events"][-1]["note"] == "还打给我父母\n类别：隐私"


# --------------------------------------------------------------------------- completing a draft

def test_filing_in_full_completes_the_draft_in_place(app, client, clock):
    c = conv()
    started = ok(post(client, draft(c, category="other", description="你们催收")), 201)
    clock.advance(hours=2)
    before, audit_from = counts(app), last_audit_id(app)
    got = ok(post(client, complaint(c, category="collection", description="催收员每天早上六点打电话",
                                    desired_outcome="停止骚扰", contact="本渠道回复")), 200)
    assert (got["outcome"], got["reference"], got["id"]) == ("completed_draft", started["reference"], started["id"])
    assert (got["status"], got["status_label"]) == ("received", "已受理")
    assert (got["category"], got["other_categories"]) == ("collection", [])  # "other" was only the placeholder
    assert (got["description"], got["desired_outcome"], got["contact"]) == (
        "催收员每天早上六点打电话", "停止骚扰", "本渠道回复")
    # receipt time and deadline stay those of the draft: the clock is never restarted
    assert (got["received_at"], got["due_at"]) == (started["received_at"], started["due_at"])
    assert kinds(got) == [("drafted", None, "draft"), ("completed", "draft", "received"),
                          ("priority_raised", None, None), ("reminders_paused", None, None)]
    assert got["events"][0]["note"] == "你们催收"  # the draft's words stay in the history
    assert (got["priority"], got["pauses_reminders"], got["offer_human"]) == ("high", True, True)
    assert counts(app)["complaint_tickets"] == before["complaint_tickets"]  # one ticket, not two
    [row] = [r for r in audit_since(app, audit_from) if r[1] == "complaint.completed"]
    assert row[4]["reference"] == started["reference"] and row[4]["due_at"] == started["due_at"]


def test_the_draft_keeps_its_categories_and_words_when_completed(client, clock, book):
    cust = book.customer("李雷")
    d = ok(post(client, draft(f"web:{cust.web_id}", customer_id=cust.id, category="privacy")), 201)
    clock.advance(days=3)
    # the same verified customer, on another channel, files it in full
    got = ok(post(client, complaint(f"wechat:{cust.wechat_id}", customer_id=cust.id, category="collection",
                                    description="把我欠款的事告诉了我单位", other_categories=["service"])), 200)
    assert (got["outcome"], got["reference"]) == ("completed_draft", d["reference"])
    assert got["other_categories"] == ["service", "privacy"]
    assert got["other_category_labels"] == ["服务态度", "隐私"]
    assert got["customer_id"] == cust.id and got["due_at"] == d["due_at"]


def test_an_anonymous_draft_is_completed_in_the_same_conversation_and_gains_the_customer(client, clock, book):
    cust = book.customer("王芳")
    c = f"web:{cust.web_id}"
    d = ok(post(client, draft(c, category="fees", description="多扣钱")), 201)
    assert d["customer_id"] is None
    got = ok(post(client, complaint(c, customer_id=cust.id, category="fees", description="多扣了我200元")), 200)
    assert (got["outcome"], got["reference"], got["customer_id"]) == ("completed_draft", d["reference"], cust.id)


def test_a_draft_outside_the_link_window_is_not_completed(app, client, clock):
    c = conv()
    d = ok(post(client, draft(c, category="fees", description="多扣钱")), 201)
    clock.advance(days=7, seconds=1)
    got = ok(post(client, complaint(c, category="fees", description="多扣了我200元")), 201)
    assert got["outcome"] == "new" and got["reference"] != d["reference"]
    assert ok(client.get(f"{BASE}/{d['reference']}", headers=HEADERS))["status"] == "draft"


def test_another_borrowers_draft_is_not_completed(client, clock):
    d = ok(post(client, draft(conv(), category="fees", description="多扣钱")), 201)
    got = ok(post(client, complaint(conv(), category="fees", description="多扣了我200元")), 201)
    assert got["outcome"] == "new" and got["reference"] != d["reference"]


def test_a_second_draft_is_added_to_the_first(app, client, clock):
    c = conv()
    first = ok(post(client, draft(c, category="service")), 201)
    clock.advance(minutes=10)
    tickets = counts(app)["complaint_tickets"]
    again = ok(post(client, draft(c, category="privacy", description="客服把我的信息说给别人听")), 200)
    assert (again["outcome"], again["reference"], again["status"]) == ("appended", first["reference"], "draft")
    assert again["description"] == "客服把我的信息说给别人听"  # the draft had no words yet
    assert again["other_categories"] == ["privacy"] and again["priority"] == "high"
    assert counts(app)["complaint_tickets"] == tickets
    # ... and filing in full completes that one draft
    done = ok(post(client, complaint(c, category="privacy", description="客服泄露我的信息")), 200)
    assert (done["outcome"], done["reference"]) == ("completed_draft", first["reference"])
    assert done["other_categories"] == ["service"]


def test_a_draft_in_the_category_of_an_open_ticket_is_appended_to_it(client, clock):
    c = conv()
    filed = ok(post(client, complaint(c, category="fees", description="多扣了200元")), 201)
    got = ok(post(client, draft(c, category="fees", description="还有上个月的")), 200)
    assert (got["outcome"], got["reference"], got["status"]) == ("appended", filed["reference"], "received")


def test_a_draft_staff_already_started_is_not_completed(desk, client, clock):
    c = conv()
    d = ok(post(client, draft(c, category="fees", description="多扣钱")), 201)
    started = ok(desk.act(f"{BASE}/{d['reference']}/start", {"by": "alice"}))
    assert started["status"] == "in_progress"
    assert kinds(started)[-1] == ("started", "draft", "in_progress")
    got = ok(post(client, complaint(c, category="fees", description="多扣了我200元")), 200)
    assert (got["outcome"], got["reference"], got["status"]) == ("appended", d["reference"], "in_progress")


def test_staff_can_resolve_close_and_extend_a_draft(desk, client, clock):
    refs = [ok(post(client, draft(category="fees", description=f"第{i}个")), 201)["reference"] for i in range(3)]
    resolved = ok(desk.act(f"{BASE}/{refs[0]}/resolve", {"by": "alice", "resolution": "已退还多收费用"}))
    assert kinds(resolved)[-1] == ("resolved", "draft", "resolved")
    closed = ok(desk.act(f"{BASE}/{refs[1]}/close", {"by": "alice"}))
    assert kinds(closed)[-1] == ("closed", "draft", "closed")
    extended = ok(desk.act(f"{BASE}/{refs[2]}/extend", {"by": "alice", "reason": "客户未提交完，需要回访"}))
    assert (extended["status"], extended["extended"]) == ("draft", True)


# --------------------------------------------------------------------------- staff views

def test_drafts_are_listed_for_staff_and_filterable(app, client, clock, book):
    cust = book.customer("赵敏")
    d = ok(post(client, draft(f"web:{cust.web_id}", customer_id=cust.id, category="collection",
                              other_categories=["privacy"], description="催收骚扰")), 201)
    clock.advance(minutes=1)
    filed = ok(post(client, complaint(category="fees", description="多收费")), 201)
    # the bot's API list: live tickets by default, drafts included; ?status=draft for drafts only
    live = ok(client.get(BASE, headers=REPORTS))
    assert [t["reference"] for t in live] == [d["reference"], filed["reference"]]
    assert live[0]["seconds_remaining"] == 15 * 86400 - 60 and live[0]["status_label"] == DRAFT_LABEL
    only = ok(client.get(BASE, headers=REPORTS, params={"status": "draft"}))
    assert [t["reference"] for t in only] == [d["reference"]]
    # the console
    a1 = sign_in(app, "agent1")
    rows = ok(a1.get("/console/api/complaints"))["tickets"]
    row = next(r for r in rows if r["reference"] == d["reference"])
    assert (row["status"], row["status_label"], row["category_label"], row["other_category_labels"]) == (
        "draft", DRAFT_LABEL, "催收方式", ["隐私"])
    assert [r["reference"] for r in ok(a1.get("/console/api/complaints?status=draft"))["tickets"]] == [d["reference"]]
    detail = ok(a1.get(f"/console/api/complaints/{d['reference']}"))
    assert (detail["status_label"], detail["other_categories"], detail["other_category_labels"]) == (
        DRAFT_LABEL, ["privacy"], ["隐私"])
    assert detail["seconds_remaining"] == 15 * 86400 - 60 and detail["overdue"] is False
    page = a1.get("/console/complaints").text
    assert '<option value="draft">草稿（客户未提交完）</option>' in page
    # staff start a draft from the console like any ticket
    csrf = {"X-CSRF-Token": a1.csrf}
    started = ok(a1.post(f"/console/api/complaints/{d['reference']}/start", headers=csrf))
    assert kinds(started)[-1] == ("started", "draft", "in_progress")


def test_drafts_count_in_the_dashboard_deadline_figures(app, clock):
    from backend.services import complaints as svc
    with app.state.sessionmaker() as db:
        rules = app.state.rules
        base = svc.deadline_stats(db, rules, T0)["open"]
    with TestClient(app) as c:
        ok(c.post(BASE, headers=HEADERS, json=draft(category="fees")), 201)
    with app.state.sessionmaker() as db:
        assert svc.deadline_stats(db, app.state.rules, T0 + timedelta(seconds=1))["open"] == base + 1
