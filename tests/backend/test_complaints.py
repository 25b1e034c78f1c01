"""Complaint tickets: references, priority, the 15-day deadline and its one extension (60 days at most),
refusals that change nothing, linking (same borrower and category within 7 days), the reminder pause,
the audit trail, masking, the staff list with its countdown, and the dashboard's deadline figures.

Each database test starts with empty complaint tables (the module's database is shared) and a clock it
moves (the ``clock`` fixture replaces app.state.clock with ManualClock). Rules from config/business.yml,
``complaints``: decision in 15 days, one extension to at most 60 days after receipt, link window 7 days,
high priority for collection and privacy (and distress), collection pauses reminders.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select, update

from backend.core.clock import SHANGHAI
from backend.core.config import ROOT, BusinessRules, ComplaintRules
from backend.models import (
    AuditLog, Channel, ComplaintCategory, ComplaintEvent, ComplaintPriority, ComplaintStatus, ComplaintTicket,
)
from backend.services import complaints as svc
from testkit import HEADERS, REPORTS, ManualClock, StaffDesk, assert_error, audit_since, last_audit_id, local, ok

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)  # a Monday
BASE = "/api/v1/complaints"
CATEGORIES = ["collection", "fees", "service", "wrong_info", "privacy", "other"]
LABELS = {"collection": "催收方式", "fees": "费用争议", "service": "服务态度", "wrong_info": "信息错误",
          "privacy": "隐私", "other": "其他"}


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def empty_complaints(app):
    with app.state.sessionmaker() as db:
        db.execute(delete(ComplaintEvent))
        db.execute(update(ComplaintTicket).values(linked_to_id=None))
        db.execute(delete(ComplaintTicket))
        db.commit()


@pytest.fixture
def clock(app, empty_complaints):
    original = app.state.clock
    manual = ManualClock(T0)
    app.state.clock = manual
    yield manual
    app.state.clock = original


def conv(channel: str = "wechat") -> str:
    if channel == "sms":
        return f"sms:+86139{uuid.uuid4().int % 10**8:08d}"
    return f"{channel}:o{uuid.uuid4().hex[:20]}"


def body(conversation: str | None = None, category: str = "fees", description: str = "多收了我一笔服务费",
         customer_id: int | None = None, **extra) -> dict:
    conversation = conversation or conv()
    data = {"conversation": conversation, "channel": conversation.partition(":")[0], "category": category,
            "description": description, **extra}
    if customer_id is not None:
        data["customer_id"] = customer_id
    return data


def post(client, path, json=None):
    return client.post(path, headers=HEADERS, json=json)


def get(client, path):
    return client.get(path, headers=HEADERS)


def create(client, **kw):
    return post(client, BASE, body(**kw))


def counts(app) -> dict[str, int]:
    with app.state.sessionmaker() as db:
        return {m.__tablename__: db.scalar(select(func.count()).select_from(m))
                for m in (ComplaintTicket, ComplaintEvent, AuditLog)}


def stored(app, reference: str) -> ComplaintTicket:
    with app.state.sessionmaker() as db:
        return db.scalar(select(ComplaintTicket).where(ComplaintTicket.reference == reference))


def snapshot(app, reference: str) -> dict:
    """Every column of a stored ticket, to show a refused request changed nothing."""
    row = stored(app, reference)
    return {c.name: getattr(row, c.name) for c in ComplaintTicket.__table__.columns}


def act(client, ref: str, action: str, **data):
    """A staff decision on the ticket, by alice unless ``by`` says otherwise (through the console)."""
    return StaffDesk.of(client.app).act(f"{BASE}/{ref}/{action}", {"by": "alice", **data})


def failed_notice(ref: str, actor: str, ticket_id: str, channel: str = "wechat") -> tuple:
    """The audit row of a change's notice to the borrower: Rasa is unreachable in this module
    (tests/backend/test_notices.py checks what is sent when it answers)."""
    return (actor, "notice_failed", "complaint_ticket", ticket_id, {
        "reference": ref, "intent": "EXTERNAL_complaint_update", "channel": channel, "via": "console",
        "error": "ConnectError"})


def events(ticket: dict) -> list[tuple]:
    return [(e["kind"], e["actor"], e["from_status"], e["to_status"], e["channel"], e["note"]) for e in ticket["events"]]


# --------------------------------------------------------------------------- configuration

def test_complaint_rules_come_from_business_yml():
    rules = BusinessRules.load(ROOT / "config" / "business.yml")
    assert rules.complaints == ComplaintRules(decision_days=15, max_total_days=60, link_window_days=7,
                                              high_priority_categories=["collection", "privacy"],
                                              pause_reminders_categories=["collection"])
    assert set(CATEGORIES) == {c.value for c in ComplaintCategory}


@pytest.mark.parametrize("bad", [
    {"decision_days": 0},
    {"decision_days": 30, "max_total_days": 20},
    {"link_window_days": -1},
    {"high_priority_categories": ["harassment"]},
    {"pause_reminders_categories": ["催收方式"]},
])
def test_bad_complaint_rules_are_refused_at_load(bad):
    with pytest.raises(ValidationError):
        ComplaintRules(**bad)


# --------------------------------------------------------------------------- opening a ticket

def test_open_stores_a_numbered_ticket_due_in_exactly_15_days(app, client, clock, book):
    cust = book.customer("李雷")
    c = conv()
    before, audit_from = counts(app), last_audit_id(app)
    got = ok(create(client, conversation=c, category="fees", description="上个月多扣了我200元手续费",
                    desired_outcome="退还多收的费用", contact="微信联系，晚上8点后", customer_id=cust.id), 201)
    ticket_id = got.pop("id")
    opened_at = "2026-11-23T10:00:00+08:00"
    assert got == {
        "reference": "CP20261123-0001", "customer_id": cust.id, "conversation_masked": f"wechat:{c[7:11]}****{c[-4:]}",
        "channel": "wechat", "category": "fees", "category_label": "费用争议",
        "other_categories": [], "other_category_labels": [],
        "description": "上个月多扣了我200元手续费", "desired_outcome": "退还多收的费用", "contact": "微信联系，晚上8点后",
        "status": "received", "status_label": "已受理", "priority": "normal", "distress": False,
        "received_at": opened_at, "due_at": "2026-12-08T10:00:00+08:00", "due_date": "2026-12-08",
        "extended": False, "extension_reason": None, "resolution": None, "resolved_at": None, "closed_at": None,
        "linked_to": None, "pauses_reminders": False, "reminders_cleared_at": None, "reminders_cleared_by": None,
        "last_update_at": opened_at, "last_update": "已受理您的投诉",
        "events": [{"at": opened_at, "kind": "opened", "label": "已受理您的投诉", "actor": "customer",
                    "from_status": None, "to_status": "received", "channel": "wechat", "note": None}],
        "linked": [], "outcome": "new", "offer_human": False,
    }
    assert counts(app) == {"complaint_tickets": before["complaint_tickets"] + 1,
                           "complaint_events": before["complaint_events"] + 1,
                           "audit_log": before["audit_log"] + 1}
    row = stored(app, "CP20261123-0001")
    assert (row.id, row.conversation, row.channel, row.category, row.status, row.priority) == (
        ticket_id, c, Channel.wechat, ComplaintCategory.fees, ComplaintStatus.received, ComplaintPriority.normal)
    assert local(row.received_at) == T0
    assert local(row.due_at) - local(row.received_at) == timedelta(days=15)
    assert audit_since(app, audit_from) == [("actions", "complaint.opened", "complaint_ticket", str(ticket_id), {
        "reference": "CP20261123-0001", "category": "fees", "priority": "normal", "distress": False,
        "channel": "wechat", "customer_id": cust.id, "linked_to": None, "pauses_reminders": False,
        "due_at": "2026-12-08T10:00:00+08:00"})]
    # the borrower's status query shows the same ticket
    shown = ok(get(client, f"{BASE}/CP20261123-0001"))
    assert shown == {k: v for k, v in {"id": ticket_id, **got}.items() if k not in ("outcome", "offer_human")}


def test_references_count_up_per_business_day(client, clock):
    refs = []
    for category in CATEGORIES:  # different conversations: no linking
        refs.append(ok(create(client, category=category), 201)["reference"])
        clock.advance(seconds=1)
    assert refs == [f"CP20261123-{n:04d}" for n in range(1, 7)]
    clock.at = datetime(2026, 11, 23, 23, 59, 59, tzinfo=SHANGHAI)
    assert ok(create(client), 201)["reference"] == "CP20261123-0007"
    # a new Shanghai day starts again at 0001 (the clock's date in Asia/Shanghai, not UTC)
    clock.at = datetime(2026, 11, 24, 0, 30, tzinfo=SHANGHAI)  # 2026-11-23 16:30 UTC
    got = ok(create(client), 201)
    assert (got["reference"], got["due_at"], got["due_date"]) == (
        "CP20261124-0001", "2026-12-09T00:30:00+08:00", "2026-12-09")
    assert ok(create(client), 201)["reference"] == "CP20261124-0002"


@pytest.mark.parametrize("category, distress, priority", [
    ("collection", False, "high"), ("privacy", False, "high"),
    ("fees", False, "normal"), ("service", False, "normal"), ("wrong_info", False, "normal"),
    ("other", False, "normal"),
    ("fees", True, "high"), ("other", True, "high"), ("collection", True, "high"),
])
def test_priority_follows_category_and_distress(client, clock, category, distress, priority):
    got = ok(create(client, category=category, distress=distress), 201)
    assert (got["category"], got["category_label"], got["priority"], got["distress"], got["offer_human"]) == (
        category, LABELS[category], priority, distress, priority == "high")
    assert got["pauses_reminders"] is (category == "collection")


# --------------------------------------------------------------------------- refusals change nothing

@pytest.mark.parametrize("bad", [
    {"category": "harassment"},
    {"category": "催收方式"},  # the bot maps labels to values; the API takes values
    {"channel": "email"},
    {"channel": "sms"},  # the conversation is a wechat one
    {"conversation": "wechat:"},
    {"description": ""},
    {"description": "   "},
    {"description": "长" * 4001},
    {"contact": "1" * 201},
    {"customer_id": 0},
    {"priority": "high"},  # the caller does not choose the priority
    {"status": "resolved"},
])
def test_bad_complaints_are_422_and_write_nothing(app, client, clock, bad):
    before = counts(app)
    err = assert_error(post(client, BASE, {**body(), **bad}), 422, "invalid_input")
    assert err["message_en"] == "Invalid input"
    assert counts(app) == before


def test_missing_fields_are_422(app, client, clock):
    before = counts(app)
    for missing in ("conversation", "channel", "category", "description"):
        data = body()
        del data[missing]
        err = assert_error(post(client, BASE, data), 422, "invalid_input")
        assert missing in [f["field"] for f in err["fields"]]
    assert counts(app) == before


def test_unknown_customer_and_unknown_reference_are_404(app, client, clock):
    before = counts(app)
    assert_error(create(client, customer_id=999999), 404, "not_found")
    assert_error(get(client, f"{BASE}/CP20261123-9999"), 404, "not_found")
    for action, extra in [("start", {}), ("resolve", {"resolution": "已退款"}), ("close", {}),
                          ("extend", {"reason": "需要调取录音"}), ("clear-reminder-pause", {})]:
        assert_error(act(client, "CP20261123-9999", action, **extra), 404, "not_found")
    assert_error(get(client, "/api/v1/customers/999999/complaints"), 404, "not_found")
    assert_error(get(client, "/api/v1/customers/999999/reminder-pause"), 404, "not_found")
    assert counts(app) == before


def test_state_changes_and_their_refusals(app, client, clock):
    ref = ok(create(client), 201)["reference"]
    clock.advance(hours=1)
    started = ok(act(client, ref, "start"))
    assert (started["status"], started["status_label"], started["last_update"]) == ("in_progress", "处理中", "正在处理")

    frozen, before = snapshot(app, ref), counts(app)
    assert_error(act(client, ref, "start"), 409, "already_started")
    assert_error(act(client, ref, "resolve", resolution=""), 422, "resolution_required")
    assert_error(act(client, ref, "resolve", resolution="  "), 422, "resolution_required")
    assert_error(act(client, ref, "resolve"), 422, "resolution_required")
    assert_error(act(client, ref, "clear-reminder-pause"), 409, "no_reminder_pause")
    assert snapshot(app, ref) == frozen and counts(app) == before

    clock.advance(days=2)
    done = ok(act(client, ref, "resolve", resolution="核实后已退还多收的200元，卡号6222021234567890123"))
    assert (done["status"], done["status_label"], done["resolution"], done["resolved_at"], done["closed_at"]) == (
        "resolved", "已解决", "核实后已退还多收的200元，卡号****0123", "2026-11-25T11:00:00+08:00", None)
    assert events(done) == [
        ("opened", "customer", None, "received", "wechat", None),
        ("started", "alice", "received", "in_progress", None, None),
        ("resolved", "alice", "in_progress", "resolved", None, "核实后已退还多收的200元，卡号****0123"),
    ]
    assert stored(app, ref).resolution == "核实后已退还多收的200元，卡号****0123"

    frozen, before = snapshot(app, ref), counts(app)
    for action, extra, code in [("start", {}, "complaint_ended"), ("resolve", {"resolution": "再次处理"}, "complaint_ended"),
                                ("close", {}, "complaint_ended"), ("extend", {"reason": "需要更多时间"}, "complaint_ended")]:
        assert_error(act(client, ref, action, **extra), 409, code)
    assert snapshot(app, ref) == frozen and counts(app) == before


def test_a_closed_ticket_cannot_be_resolved(app, client, clock):
    ref = ok(create(client, category="other"), 201)["reference"]
    closed = ok(act(client, ref, "close", note="客户撤回投诉"))
    assert (closed["status"], closed["closed_at"], closed["resolution"], closed["last_update"]) == (
        "closed", "2026-11-23T10:00:00+08:00", None, "已关闭")
    assert events(closed)[-1] == ("closed", "alice", "received", "closed", None, "客户撤回投诉")
    frozen, before = snapshot(app, ref), counts(app)
    assert_error(act(client, ref, "resolve", resolution="已处理"), 409, "complaint_ended")
    assert_error(act(client, ref, "close"), 409, "complaint_ended")
    assert snapshot(app, ref) == frozen and counts(app) == before


def test_two_staff_acting_at_once_cannot_both_win(app, client, clock):
    """The transitions are conditional UPDATEs: a session that read the ticket before another staff
    member closed it still gets 409 and writes nothing."""
    ref = ok(create(client), 201)["reference"]
    rules = app.state.rules
    with app.state.sessionmaker() as late:
        assert svc.get_ticket(late, ref).status == ComplaintStatus.received  # read, not yet acted on
        with app.state.sessionmaker() as first:
            svc.close(first, rules, ref, "alice", None, clock.now(), "test")
            first.commit()
        before = counts(app)
        with pytest.raises(svc.AppError) as refused:
            svc.resolve(late, rules, ref, "bob", "已处理", clock.now(), "test")
        assert (refused.value.status, refused.value.code) == (409, "complaint_ended")
        late.commit()
    assert counts(app) == before
    assert stored(app, ref).status == ComplaintStatus.closed


# --------------------------------------------------------------------------- the deadline and its extension

def test_extension_once_with_a_reason_up_to_60_days(app, client, clock):
    ref = ok(create(client), 201)["reference"]
    clock.advance(days=10)
    frozen, before = snapshot(app, ref), counts(app)
    assert_error(act(client, ref, "extend"), 422, "reason_required")  # no reason
    assert_error(act(client, ref, "extend", reason=""), 422, "reason_required")
    assert_error(act(client, ref, "extend", reason="   "), 422, "reason_required")
    # received 2026-11-23 10:00: at most 2027-01-22 10:00
    err = assert_error(act(client, ref, "extend", reason="需调取通话录音", due_date="2027-01-23"), 422,
                       "extension_too_long")
    assert "2027-01-22" in err["message_zh"]
    assert_error(act(client, ref, "extend", reason="需调取通话录音", due_date="2026-12-08"), 422,
                 "extension_not_later")  # the current deadline's own date
    assert_error(act(client, ref, "extend", reason="需调取通话录音", due_date="2026-12-01"), 422,
                 "extension_not_later")
    assert snapshot(app, ref) == frozen and counts(app) == before

    audit_from = last_audit_id(app)
    got = ok(act(client, ref, "extend", reason="需调取通话录音，客户电话13812345678", due_date="2027-01-22"))
    assert (got["extended"], got["extension_reason"], got["due_at"], got["due_date"], got["last_update"]) == (
        True, "需调取通话录音，客户电话138****5678", "2027-01-22T10:00:00+08:00", "2027-01-22", "处理期限已延长")
    assert got["status"] == "received"  # extending does not change the status
    assert events(got)[-1] == ("extended", "alice", None, None, None, "需调取通话录音，客户电话138****5678")
    row = stored(app, ref)
    assert local(row.due_at) - local(row.received_at) == timedelta(days=60)
    assert row.extension_reason == "需调取通话录音，客户电话138****5678"
    # ten days after the complaint WeChat's 48-hour window is closed (no template): the notice waits
    assert audit_since(app, audit_from) == [("alice", "complaint.extended", "complaint_ticket", str(row.id), {
        "reference": ref, "from_due_at": "2026-12-08T10:00:00+08:00", "due_at": "2027-01-22T10:00:00+08:00",
        "via": "console"}), ("alice", "notice_deferred", "complaint_ticket", str(row.id), {
        "reason": "no_channel", "until": "2026-12-03T11:00:00+08:00", "reference": ref,
        "intent": "EXTERNAL_complaint_update", "channel": "wechat", "via": "console"})]

    frozen, before = snapshot(app, ref), counts(app)
    assert_error(act(client, ref, "extend", reason="还需要时间", due_date="2027-01-20"), 409, "already_extended")
    assert_error(act(client, ref, "extend", reason="还需要时间"), 409, "already_extended")
    assert snapshot(app, ref) == frozen and counts(app) == before


def test_extension_defaults_to_the_cap_and_works_in_progress(app, client, clock):
    ref = ok(create(client, category="privacy"), 201)["reference"]
    ok(act(client, ref, "start"))
    clock.advance(days=14, hours=23)
    got = ok(act(client, ref, "extend", reason="涉及第三方机构，需要核查"))
    assert (got["due_at"], got["status"], got["extended"]) == ("2027-01-22T10:00:00+08:00", "in_progress", True)


def test_an_overdue_ticket_may_still_be_extended_to_a_later_date(client, clock):
    ref = ok(create(client), 201)["reference"]
    clock.at = T0 + timedelta(days=20)  # 2026-12-13 10:00, five days overdue
    assert_error(act(client, ref, "extend", reason="补充材料", due_date="2026-12-13"), 422, "extension_not_later")
    got = ok(act(client, ref, "extend", reason="补充材料", due_date="2026-12-14"))
    assert got["due_at"] == "2026-12-14T10:00:00+08:00"


# --------------------------------------------------------------------------- linking

def test_same_borrower_and_topic_within_7_days_is_added_to_the_open_ticket(app, client, clock, book):
    cust = book.customer("韩梅梅")
    first = ok(create(client, conversation=f"wechat:{cust.wechat_id}", customer_id=cust.id,
                      description="多收了手续费"), 201)
    clock.advance(days=3)
    before, audit_from = counts(app), last_audit_id(app)
    again = ok(create(client, conversation=f"sms:{cust.sms_id}", customer_id=cust.id,
                      description="还是没退，我的手机13812345678", desired_outcome="尽快退款", contact="打13812345678"), 200)
    assert (again["id"], again["reference"], again["outcome"], again["linked_to"], again["linked"]) == (
        first["id"], first["reference"], "appended", None, [])
    assert (again["channel"], again["due_at"], again["description"], again["last_update"]) == (
        "wechat", first["due_at"], "多收了手续费", "已补充投诉内容")
    assert events(again) == [
        ("opened", "customer", None, "received", "wechat", None),
        ("follow_up", "customer", None, None, "sms", "还是没退，我的手机138****5678\n诉求：尽快退款\n联系方式：打138****5678"),
    ]
    assert again["events"][1]["at"] == "2026-11-26T10:00:00+08:00"
    assert counts(app) == {**before, "complaint_events": before["complaint_events"] + 1,
                           "audit_log": before["audit_log"] + 1}
    assert audit_since(app, audit_from) == [("actions", "complaint.follow_up", "complaint_ticket", str(first["id"]), {
        "reference": first["reference"], "channel": "sms", "customer_id": cust.id, "distress": False,
        "priority_raised": False, "reminders_paused": False})]

    # exactly 7 days after the first: still linked; one second later: a new, unlinked ticket
    clock.at = T0 + timedelta(days=7)
    assert ok(create(client, conversation=conv("web"), customer_id=cust.id), 200)["reference"] == first["reference"]
    clock.advance(seconds=1)
    later = ok(create(client, conversation=conv("web"), customer_id=cust.id), 201)
    assert (later["reference"], later["outcome"], later["linked_to"], later["channel"]) == (
        "CP20261130-0001", "new", None, "web")
    assert stored(app, first["reference"]).status == ComplaintStatus.received


def test_other_topics_and_other_borrowers_are_not_linked(client, clock, book):
    a, b = book.customer("甲"), book.customer("乙")
    first = ok(create(client, customer_id=a.id, category="fees"), 201)
    assert ok(create(client, customer_id=a.id, category="service"), 201)["outcome"] == "new"
    assert ok(create(client, customer_id=b.id, category="fees"), 201)["outcome"] == "new"
    # no customer: linked by conversation only
    c = conv()
    anon = ok(create(client, conversation=c, category="fees"), 201)
    assert ok(create(client, conversation=c, category="fees"), 200)["reference"] == anon["reference"]
    assert ok(create(client, conversation=conv(), category="fees"), 201)["outcome"] == "new"
    # the same conversation, once the borrower is identified, joins the ticket they filed before
    assert ok(create(client, conversation=c, category="fees", customer_id=b.id), 200)["reference"] == anon["reference"]
    assert first["reference"] == "CP20261123-0001"


def test_after_a_decision_a_repeat_is_a_new_ticket_in_the_same_group(app, client, clock, book):
    cust = book.customer()
    first = ok(create(client, customer_id=cust.id, category="service", description="客服态度恶劣"), 201)
    ok(act(client, first["reference"], "resolve", resolution="已致歉并培训相关人员"))
    clock.advance(days=2)
    second = ok(create(client, customer_id=cust.id, category="service", conversation=conv("sms"),
                       description="又被凶了"), 201)
    assert (second["reference"], second["outcome"], second["linked_to"], second["linked"], second["due_at"]) == (
        "CP20261125-0001", "linked", first["reference"], [first["reference"]], "2026-12-10T10:00:00+08:00")
    ok(act(client, second["reference"], "close"))
    clock.advance(days=1)
    third = ok(create(client, customer_id=cust.id, category="service"), 201)
    assert (third["outcome"], third["linked_to"], third["linked"]) == (
        "linked", first["reference"], [first["reference"], second["reference"]])
    assert ok(get(client, f"{BASE}/{first['reference']}"))["linked"] == [second["reference"], third["reference"]]
    assert stored(app, third["reference"]).linked_to_id == first["id"]
    assert audit_since(app, 0)[-1][4]["linked_to"] == first["reference"]
    # a repeat while the third is open joins the third
    assert ok(create(client, customer_id=cust.id, category="service"), 200)["reference"] == third["reference"]


def test_a_distressed_repeat_raises_the_priority(app, client, clock, book):
    cust = book.customer()
    first = ok(create(client, customer_id=cust.id, category="fees"), 201)
    assert first["offer_human"] is False
    again = ok(create(client, customer_id=cust.id, category="fees", distress=True, description="我真的撑不下去了"), 200)
    assert (again["priority"], again["distress"], again["offer_human"], again["last_update"]) == (
        "high", True, True, "已转为优先处理")
    assert [e[0] for e in events(again)] == ["opened", "follow_up", "priority_raised"]


# --------------------------------------------------------------------------- the reminder pause

def test_a_collection_complaint_pauses_reminders_until_staff_clear_it(app, client, clock, book):
    cust, other = book.customer(), book.customer()
    path = f"/api/v1/customers/{cust.id}/reminder-pause"
    assert ok(get(client, path)) == {"paused": False, "references": []}
    got = ok(create(client, customer_id=cust.id, category="collection", description="别再打电话骚扰我"), 201)
    ref = got["reference"]
    assert (got["pauses_reminders"], got["priority"], got["offer_human"], got["last_update"]) == (
        True, "high", True, "已暂停自动还款提醒")
    assert events(got) == [("opened", "customer", None, "received", "wechat", None),
                           ("reminders_paused", "customer", None, None, None, None)]
    assert ok(get(client, path)) == {"paused": True, "references": [ref]}
    assert ok(get(client, f"/api/v1/customers/{other.id}/reminder-pause")) == {"paused": False, "references": []}
    with app.state.sessionmaker() as db:
        assert svc.customer_has_reminder_pause(db, cust.id) is True
        assert svc.customer_has_reminder_pause(db, other.id) is False

    # resolving the complaint does not lift the pause by itself
    ok(act(client, ref, "resolve", resolution="已要求催收团队停止致电"))
    assert ok(get(client, path))["paused"] is True

    clock.advance(hours=2)
    audit_from = last_audit_id(app)
    cleared = StaffDesk.of(client.app).act(f"{BASE}/{ref}/clear-reminder-pause", {"by": "bob"})
    cleared = ok(cleared)
    assert (cleared["pauses_reminders"], cleared["reminders_cleared_at"], cleared["reminders_cleared_by"],
            cleared["last_update"]) == (False, "2026-11-23T12:00:00+08:00", "bob", "已恢复自动还款提醒")
    assert events(cleared)[-1] == ("reminders_cleared", "bob", None, None, None, None)
    assert ok(get(client, path)) == {"paused": False, "references": []}
    assert audit_since(app, audit_from) == [("bob", "complaint.reminders_cleared", "complaint_ticket",
                                             str(got["id"]), {"reference": ref, "customer_id": cust.id,
                                                              "customer_still_paused": False, "via": "console"})]
    before = counts(app)
    assert_error(StaffDesk.of(client.app).act(f"{BASE}/{ref}/clear-reminder-pause", {"by": "bob"}), 409, "no_reminder_pause")
    assert counts(app) == before


def test_a_repeated_collection_complaint_pauses_again(client, clock, book):
    cust = book.customer()
    path = f"/api/v1/customers/{cust.id}/reminder-pause"
    ref = ok(create(client, customer_id=cust.id, category="collection"), 201)["reference"]
    ok(StaffDesk.of(client.app).act(f"{BASE}/{ref}/clear-reminder-pause", {"by": "bob"}))
    clock.advance(days=1)
    again = ok(create(client, customer_id=cust.id, category="collection", conversation=conv("sms"),
                      description="又打电话来了"), 200)
    assert (again["reference"], again["pauses_reminders"], again["reminders_cleared_at"],
            again["reminders_cleared_by"]) == (ref, True, None, None)
    assert [e[0] for e in events(again)] == [
        "opened", "reminders_paused", "reminders_cleared", "follow_up", "reminders_paused"]
    assert ok(get(client, path)) == {"paused": True, "references": [ref]}


# --------------------------------------------------------------------------- audit and masking

def test_every_change_is_audited_with_its_actor(app, client, clock, book):
    cust = book.customer()
    audit_from = last_audit_id(app)
    got = ok(create(client, customer_id=cust.id, category="collection"), 201)
    ref, tid = got["reference"], str(got["id"])
    ok(act(client, ref, "start"))
    ok(StaffDesk.of(client.app).act(f"{BASE}/{ref}/extend", {"by": "carol", "reason": "需要核查外包催收记录"}))
    ok(StaffDesk.of(client.app).act(f"{BASE}/{ref}/clear-reminder-pause", {"by": "dave"}))
    ok(StaffDesk.of(client.app).act(f"{BASE}/{ref}/resolve", {"by": "carol", "resolution": "已停止外包催收"}))
    rows = audit_since(app, audit_from)
    assert [(actor, action, etype, eid) for actor, action, etype, eid, _ in rows] == [
        ("actions", "complaint.opened", "complaint_ticket", tid),
        ("alice", "complaint.started", "complaint_ticket", tid),
        ("alice", "notice_failed", "complaint_ticket", tid),  # each change is told to the borrower
        ("carol", "complaint.extended", "complaint_ticket", tid),
        ("carol", "notice_failed", "complaint_ticket", tid),
        ("dave", "complaint.reminders_cleared", "complaint_ticket", tid),  # not a status change: no notice
        ("carol", "complaint.resolved", "complaint_ticket", tid),
        ("carol", "notice_failed", "complaint_ticket", tid),
    ]
    assert rows[1][4] == {"reference": ref, "via": "console"}
    assert rows[2] == failed_notice(ref, "alice", tid)
    assert rows[6][4] == {"reference": ref, "from_status": "in_progress", "via": "console"}
    detail = ok(get(client, f"{BASE}/{ref}"))
    assert [(e[0], e[1]) for e in events(detail)] == [
        ("opened", "customer"), ("reminders_paused", "customer"), ("started", "alice"), ("extended", "carol"),
        ("reminders_cleared", "dave"), ("resolved", "carol")]


DESCRIPTION = "催收员打我手机13812345678，还把我身份证110105198503011234念给我同事听"
DESCRIPTION_MASKED = "催收员打我手机138****5678，还把我身份证****1234念给我同事听"


def test_numbers_are_masked_in_stored_contact_and_in_every_response(app, client, clock, book):
    cust = book.customer()
    raw = ("13812345678", "13912345678", "110105198503011234", "6222021234567890123")
    audit_from = last_audit_id(app)
    created = create(client, conversation="sms:+8613812345678", customer_id=cust.id, category="privacy",
                     description=DESCRIPTION, desired_outcome="道歉，卡6222021234567890123别再扣款",
                     contact="打我另一个号码 139 1234 5678")
    got = ok(created, 201)
    assert (got["description"], got["desired_outcome"], got["contact"], got["conversation_masked"]) == (
        DESCRIPTION_MASKED, "道歉，卡****0123别再扣款", "打我另一个号码 139****5678", "sms:138****5678")
    row = stored(app, got["reference"])
    assert row.contact == "打我另一个号码 139****5678"  # masked before it is stored
    assert row.description == DESCRIPTION  # the verbatim record, shown masked
    responses = [created, get(client, f"{BASE}/{got['reference']}"), client.get(BASE, headers=REPORTS),
                 get(client, f"/api/v1/customers/{cust.id}/complaints")]
    for resp in responses:
        assert resp.status_code in (200, 201)
        assert not any(n in resp.text for n in raw), resp.text
    for *_, detail in audit_since(app, audit_from):
        assert not any(n in str(detail) for n in raw)


# --------------------------------------------------------------------------- lists and the countdown

def test_staff_list_is_ordered_by_deadline_with_a_countdown(app, client, clock, book):
    cust = book.customer("王小明")
    a = ok(create(client, category="fees", customer_id=cust.id), 201)  # due 12-08 10:00
    clock.advance(hours=1)
    b = ok(create(client, category="other"), 201)  # due 12-08 11:00
    c = ok(create(client, category="privacy"), 201)  # due 12-08 11:00, high priority: before b
    clock.advance(hours=1)
    d = ok(create(client, category="service"), 201)  # due 12-08 12:00, then extended
    e = ok(create(client, category="wrong_info"), 201)  # resolved: not listed
    ok(act(client, d["reference"], "extend", reason="等待第三方回复", due_date="2026-12-20"))
    ok(act(client, e["reference"], "resolve", resolution="已更正"))

    clock.at = T0 + timedelta(days=14, hours=23)  # 2026-12-08 09:00
    listed = ok(client.get(BASE, headers=REPORTS))
    assert [(i["reference"], i["seconds_remaining"], i["overdue"]) for i in listed] == [
        (a["reference"], 3600, False), (c["reference"], 7200, False), (b["reference"], 7200, False),
        (d["reference"], 12 * 86400 + 3 * 3600, False)]
    assert listed[0]["customer"] == {"id": cust.id, "name_masked": "王**",
                                     "phone_masked": cust.phone[:3] + "****" + cust.phone[-4:]}
    assert [i["customer"] for i in listed[1:]] == [None] * 3

    clock.at = T0 + timedelta(days=15)  # exactly a's deadline: not yet overdue
    assert [(i["seconds_remaining"], i["overdue"]) for i in ok(client.get(BASE, headers=REPORTS))][:1] == [(0, False)]
    clock.advance(seconds=1)
    listed = ok(client.get(BASE, headers=REPORTS))
    assert [(i["seconds_remaining"], i["overdue"]) for i in listed] == [
        (-1, True), (3599, False), (3599, False), (12 * 86400 + 2 * 3600 - 1, False)]

    ended = ok(client.get(BASE, headers=REPORTS, params={"status": ["resolved", "closed"]}))
    assert [(i["reference"], i["seconds_remaining"], i["overdue"]) for i in ended] == [(e["reference"], None, False)]
    assert_error(client.get(BASE, headers=REPORTS, params={"status": "pending"}), 422, "invalid_input")


def test_a_customers_tickets_newest_first(client, clock, book):
    cust, other = book.customer(), book.customer()
    first = ok(create(client, customer_id=cust.id, category="fees"), 201)
    clock.advance(minutes=5)
    second = ok(create(client, customer_id=cust.id, category="service"), 201)
    ok(create(client, customer_id=other.id, category="fees"), 201)
    listed = ok(get(client, f"/api/v1/customers/{cust.id}/complaints"))
    assert [(t["reference"], t["status"], t["due_date"]) for t in listed] == [
        (second["reference"], "received", "2026-12-08"), (first["reference"], "received", "2026-12-08")]
    assert "events" not in listed[0]


def test_deadline_stats_for_the_dashboard(app, client, clock):
    refs = {}
    for name, hours in [("a", 0), ("b", 24), ("c", 24 * 5), ("d", 24 * 9), ("e", 24 * 10), ("f", 24 * 10)]:
        clock.at = T0 + timedelta(hours=hours)
        refs[name] = ok(create(client), 201)["reference"]
    clock.at = T0 + timedelta(days=10)
    ok(act(client, refs["e"], "resolve", resolution="已退款"))  # within 15 days
    ok(act(client, refs["f"], "close"))
    ok(act(client, refs["d"], "extend", reason="需要核查", due_date="2027-01-20"))
    clock.at = T0 + timedelta(days=15, seconds=1)  # a is overdue
    ok(act(client, refs["b"], "resolve", resolution="已解释费用构成"))  # 14 days and 1 second: in time
    with app.state.sessionmaker() as db:
        stats = svc.deadline_stats(db, app.state.rules, clock.now())
    # open: a overdue; c due 12-13 10:00 (4d 23:59:59 left: within 7 days); d extended: later
    assert stats == {"open": 3, "overdue": 1,
                     "due_buckets": {"overdue": 1, "within_3_days": 0, "within_7_days": 1, "within_15_days": 0,
                                     "later": 1},
                     "resolved": 2, "resolved_within_deadline": 2, "resolved_within_deadline_share": 1.0}
    clock.at = T0 + timedelta(days=20)
    ok(act(client, refs["a"], "resolve", resolution="已处理"))  # 20 days: late
    with app.state.sessionmaker() as db:
        stats = svc.deadline_stats(db, app.state.rules, clock.now())
        assert (stats["resolved"], stats["resolved_within_deadline"], stats["resolved_within_deadline_share"]) == (
            3, 2, 0.6667)
        since = svc.deadline_stats(db, app.state.rules, clock.now(), since=T0 + timedelta(hours=1))
        assert (since["resolved"], since["resolved_within_deadline"]) == (2, 2)
        # ``since`` narrows the resolved share only; open tickets are counted as they stand now
        # (c is due at this very second: 0 seconds left, within 3 days, not overdue)
        assert (since["open"], since["overdue"], since["due_buckets"]) == (2, 0, {
            "overdue": 0, "within_3_days": 1, "within_7_days": 0, "within_15_days": 0, "later": 1})


# --------------------------------------------------------------------------- authentication

def test_every_complaint_route_needs_the_api_key(client, clock):
    for method, path in [("POST", BASE), ("GET", BASE), ("GET", f"{BASE}/CP20261123-0001"),
                         ("GET", "/api/v1/customers/1/complaints"), ("GET", "/api/v1/customers/1/reminder-pause")]:
        for headers in ({}, {"X-API-Key": "wrong"}):
            assert client.request(method, path, headers=headers, json={}).status_code == 401, (method, path)


def test_no_api_key_works_a_ticket(app, client, clock):
    """Starting, resolving, closing, extending and clearing the pause are the console's (a signed-in
    staff member): the service routes that took the staff member from the body are gone, whatever the key."""
    ref = ok(create(client, category="collection"), 201)["reference"]
    frozen, before = snapshot(app, ref), counts(app)
    for action in ("start", "resolve", "close", "extend", "clear-reminder-pause"):
        for headers in (HEADERS, REPORTS):
            resp = client.post(f"{BASE}/{ref}/{action}", headers=headers,
                               json={"by": "supervisor1", "resolution": "x", "reason": "x"})
            assert resp.status_code == 404, (action, resp.status_code)
    assert snapshot(app, ref) == frozen and counts(app) == before
