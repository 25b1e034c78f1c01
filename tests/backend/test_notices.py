"""Decisions told to the borrower (backend.services.notices and the outbox, backend.services.outreach):
after a plan request is approved or rejected, and after a complaint ticket is started, resolved,
closed or extended, the decision's transaction saves its notice and its message, worded by the backend;
the staff request returns without calling Rasa; the backend's outbox worker (worker.run_once here, a
thread in the running app) delivers it through Rasa's HTTP API (a fake Rasa HTTP server on 127.0.0.1,
tests/backend/fake_rasa.py) as a bot message in the borrower's conversation, on their channel:

    POST /conversations/<conversation>/tracker/events?token=<token>&output_channel=<socketio|wechat|sms>
         &execute_side_effects=true&include_events=ALL
    [{"event": "bot", "text": "<the notice>", "metadata": {"notice_id": "<uuid>", "kind": "plan_decision" | "complaint_update"}},
     {"event": "action", "name": "action_listen"}]

(a conversation Rasa has nothing of yet first gets its session opened: an ``action_listen`` alone)

(notice_id: the decision's row in the outreach log; one per decision)

Rasa down or failing, or the conversation paused for staff, leaves the decision standing (200, the
decided record) with a ``notice_failed`` audit row and a log line without personal data; anything that
is not a decision (review, withdrawal, clearing the reminder pause, a refused change) sends nothing.
"""
from __future__ import annotations

import copy
import logging
import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from backend.core.clock import SHANGHAI
from backend.core.config import Settings, effective_rules
from backend.models import ComplaintTicket, Customer, OutboxMessage, OutreachNotice, PlanRequest
from backend.services import staff
from backend.services.outreach import worker
from backend.services.rasa_api import RasaClient
from fake_rasa import FakeRasa
from testkit import (
    HEADERS, ManualClock, assert_error, audit_since, console_sign_in, last_audit_id, ok, set_identity,
)

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
TOKEN = "rasa-test-token"
PASSWORD = "console-test-pass-1"
OUTPUT = {"web": "socketio", "wechat": "wechat", "sms": "sms"}
PLAN, COMPLAINT = "EXTERNAL_plan_decision", "EXTERNAL_complaint_update"


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def fake_rasa():
    with FakeRasa(TOKEN) as fake:
        yield fake


@pytest.fixture(scope="module")
def people(app):
    with app.state.sessionmaker() as db:
        staff.create_user(db, "agent1", "客服小王", "agent", PASSWORD, T0, "test")
        db.commit()


@pytest.fixture
def rasa(app, people, fake_rasa):
    """The app talks to the fake Rasa (answering 200) with a clock at T0; restored afterwards."""
    original_rasa, original_clock = app.state.rasa, app.state.clock
    app.state.rasa, app.state.clock = RasaClient(fake_rasa.url, TOKEN), ManualClock(T0)
    fake_rasa.status, fake_rasa.paused, fake_rasa.silent, fake_rasa.on_request = 200, False, False, None
    fake_rasa.bare_answer = False
    fake_rasa.take()
    yield fake_rasa
    app.state.rasa, app.state.clock = original_rasa, original_clock


def conversation(cust, channel: str) -> str:
    return {"web": f"web:{cust.id}", "wechat": f"wechat:{cust.wechat_id}", "sms": f"sms:{cust.sms_id}"}[channel]


def wrote_on(book, cust, channel: str, at: datetime = T0 - timedelta(hours=1)) -> None:
    """The borrower wrote on that channel (a WeChat request opens WeChat's 48-hour window)."""
    set_identity(book.sessionmaker, cust.id, channel, last_inbound_at=at)


KIND = {PLAN: "plan_decision", COMPLAINT: "complaint_update"}
NOTICE = "<the decision's notice id>"


def trigger(conv: str, channel: str, intent: str, ref: str) -> tuple:
    """The exact delivery Rasa must receive for a decision on ``ref`` (see shape for the notice id and
    the text)."""
    return ("POST", f"/conversations/{conv}/tracker/events",
            {"token": TOKEN, "output_channel": OUTPUT[channel], "execute_side_effects": "true", "include_events": "ALL"},
            [{"event": "bot", "text": ref, "metadata": {"notice_id": NOTICE, "kind": KIND[intent]}},
             {"event": "action", "name": "action_listen"}])


def shape(app, r) -> tuple:
    """The delivery, its notice_id checked against the outreach log (a notice of that very reference,
    whose reference the text names), then replaced by NOTICE, and the text by the reference, so the rest
    compares exactly (the texts themselves: test_the_texts_borrowers_read)."""
    body = copy.deepcopy(r.json)
    for event in body if isinstance(body, list) else []:
        meta = event.get("metadata") or {}
        if "notice_id" in meta:
            with app.state.sessionmaker() as db:
                key = db.scalar(select(OutreachNotice.dedupe_key).where(OutreachNotice.notice_id == meta["notice_id"]))
            ref = key.split(":")[1]
            assert f"编号 {ref}" in event["text"], (key, event["text"])
            meta["notice_id"], event["text"] = NOTICE, ref
    return (r.method, r.path, r.query, body)


def deliver(app) -> None:
    """A round of the backend's outbox worker (a thread in the running app)."""
    worker.run_once(app)


def received(app, fake: FakeRasa) -> list[tuple]:
    deliver(app)
    return [shape(app, r) for r in fake.take() if r.is_delivery]


def posts(app, fake: FakeRasa) -> list:
    deliver(app)
    return [r for r in fake.take() if r.is_delivery]


def plan_status(app, ref: str) -> str:
    with app.state.sessionmaker() as db:
        return db.scalar(select(PlanRequest.status).where(PlanRequest.reference == ref)).value


def ticket_state(app, ref: str) -> tuple[str, bool]:
    with app.state.sessionmaker() as db:
        t = db.scalar(select(ComplaintTicket).where(ComplaintTicket.reference == ref))
        return t.status.value, t.extended


def plan_under_review(desk, client, book, channel: str) -> tuple[str, str]:
    """A borrower's plan request on the channel, under review; (reference, conversation)."""
    cust = book.customer("周立")
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    conv = conversation(cust, channel)
    wrote_on(book, cust, channel)
    ref = ok(client.post("/api/v1/plan-requests", headers=HEADERS, json={
        "conversation": conv, "channel": channel, "customer_id": cust.id, "loan_id": loan.id,
        "reason_category": "income_drop", "plan_type": "instalment", "months": 12}), 201)["reference"]
    ok(desk.act(f"/api/v1/plan-requests/{ref}/review", {"by": "alice"}))
    return ref, conv


def complaint(client, book, channel: str, category: str = "fees") -> tuple[str, str]:
    cust = book.customer("吴芳")
    conv = conversation(cust, channel)
    wrote_on(book, cust, channel)
    ref = ok(client.post("/api/v1/complaints", headers=HEADERS, json={
        "conversation": conv, "channel": channel, "customer_id": cust.id, "category": category,
        "description": "多收了我一笔服务费"}), 201)["reference"]
    return ref, conv


class Staff:
    """Decisions the only way they are made: by a staff member signed in to the console (no API key can)."""

    def __init__(self, app, client, via: str = "console") -> None:
        self.via, self.client = via, client
        self.console = console_sign_in(app, "agent1", PASSWORD)
        self.actor = "agent1"

    def plan(self, ref: str, action: str, **data):
        return self.console.post(f"/console/api/plans/{ref}/{action}", json=data,
                                 headers={"X-CSRF-Token": self.console.csrf})

    def ticket(self, ref: str, action: str, **data):
        return self.console.post(f"/console/api/complaints/{ref}/{action}", json=data or None,
                                 headers={"X-CSRF-Token": self.console.csrf})


def notice_rows(app, after: int) -> list[tuple]:
    return [row for row in audit_since(app, after) if row[1].startswith("notice_")]


def sent(actor: str, entity: str, ref: str, intent: str, channel: str, via: str) -> tuple:
    return (actor, "notice_sent", entity, {"reference": ref, "intent": intent, "channel": channel, "via": via})


# --------------------------------------------------------------------------- what is sent

@pytest.mark.parametrize("via, channel", [("console", "web"), ("console", "wechat"), ("console", "sms")])
def test_an_approval_is_told_after_it_is_committed(desk, app, client, book, rasa, via, channel):
    ref, conv = plan_under_review(desk, client, book, channel)
    who = Staff(app, client, via)
    rasa.take()
    rasa.on_request = lambda r: plan_status(app, ref) if r.is_delivery else None
    after = last_audit_id(app)
    got = ok(who.plan(ref, "approve", note="同意"))
    assert got["status"] == "approved"
    assert rasa.take() == []  # the request did not wait on Rasa
    with app.state.sessionmaker() as db:  # its message was saved with the decision
        (message,) = db.scalars(select(OutboxMessage).join(OutreachNotice, OutreachNotice.id == OutboxMessage.notice_id)
                                .where(OutreachNotice.dedupe_key.like(f"plan:{ref}:%")))
        assert (message.status.value, message.conversation, message.channel.value) == ("queued", conv, channel)
    requests = posts(app, rasa)
    assert [shape(app, r) for r in requests] == [trigger(conv, channel, PLAN, ref)]
    assert requests[0].seen == "approved"  # already committed when Rasa was asked
    with app.state.sessionmaker() as db:
        req_id = db.scalar(select(PlanRequest.id).where(PlanRequest.reference == ref))
    assert [(a, act, et, eid) for a, act, et, eid, _ in audit_since(app, after)][-2:] == [
        (who.actor, "plan_request.approved", "plan_request", str(req_id)),
        (who.actor, "notice_sent", "plan_request", str(req_id))]
    assert [(a, act, et, d) for a, act, et, _, d in notice_rows(app, after)] == [
        sent(who.actor, "plan_request", ref, PLAN, channel, "console")]


@pytest.mark.parametrize("via, channel", [("console", "wechat"), ("console", "sms"), ("console", "web")])
def test_a_rejection_is_told(desk, app, client, book, rasa, via, channel):
    ref, conv = plan_under_review(desk, client, book, channel)
    who = Staff(app, client, via)
    rasa.take()
    rasa.on_request = lambda r: plan_status(app, ref) if r.is_delivery else None
    got = ok(who.plan(ref, "reject", reason="收入证明不足"))
    assert (got["status"], got["decision_reason"]) == ("rejected", "收入证明不足")
    requests = posts(app, rasa)
    assert [shape(app, r) for r in requests] == [trigger(conv, channel, PLAN, ref)]
    assert requests[0].seen == "rejected"


def test_the_sms_conversation_id_keeps_its_plus_sign(app, client, book, rasa):
    ref, conv = complaint(client, book, "sms")
    ok(Staff(app, client).ticket(ref, "start"))
    (request,) = posts(app, rasa)
    assert conv.startswith("sms:+86") and request.path == f"/conversations/{conv}/tracker/events"


@pytest.mark.parametrize("via", ["console"])
def test_each_complaint_change_and_the_extension_is_told(app, client, book, rasa, via):
    ref, conv = complaint(client, book, "sms")
    other, other_conv = complaint(client, book, "wechat", "service")
    anon = f"web:anon-{uuid.uuid4().hex[:8]}"
    third = ok(client.post("/api/v1/complaints", headers=HEADERS, json={
        "conversation": anon, "channel": "web", "category": "other", "description": "网页打不开"}), 201)["reference"]
    who = Staff(app, client, via)
    rasa.take()
    after = last_audit_id(app)
    assert ok(who.ticket(ref, "start"))["status"] == "in_progress"
    started = posts(app, rasa)
    assert ok(who.ticket(ref, "extend", reason="需调取通话录音"))["extended"] is True
    assert ok(who.ticket(ref, "resolve", resolution="已退还服务费"))["status"] == "resolved"
    assert ok(who.ticket(other, "close", note="客户撤回投诉"))["status"] == "closed"
    assert ok(who.ticket(third, "resolve", resolution="已修复"))["status"] == "resolved"  # an anonymous visitor too
    requests = started + posts(app, rasa)
    assert [shape(app, r) for r in requests] == [
        *[trigger(conv, "sms", COMPLAINT, ref)] * 3,  # started, extended, resolved
        trigger(other_conv, "wechat", COMPLAINT, other), trigger(anon, "web", COMPLAINT, third)]
    # Each worded as the ticket stood when it was decided (in the decision's transaction).
    said = [r.json[0]["text"] for r in requests]
    assert "有新进展：正在处理" in said[0] and "已延期" not in said[0]
    assert "已延期，原因：需调取通话录音" in said[1]
    assert "处理结果：已退还服务费" in said[2] and "处理结果：已修复" in said[4]
    channel_of = {ref: "sms", other: "wechat", third: "web"}
    assert [(a, act, et, d) for a, act, et, _, d in notice_rows(app, after)] == [
        sent(who.actor, "complaint_ticket", r, COMPLAINT, channel_of[r], via) for r in (ref, ref, ref, other, third)]


# --------------------------------------------------------------------------- WeChat's 48-hour window

@pytest.mark.parametrize("template", ["", "tmpl-notice"])
def test_a_decision_asked_for_on_wechat_outside_its_window(desk, app, client, book, rasa, template):
    """Outside the window WeChat can send only a template: without one (or without the rule allowing
    it) the decision goes by the borrower's next channel (SMS here), not to a WeChat that sends nothing."""
    ref, conv = plan_under_review(desk, client, book, "wechat")
    with app.state.sessionmaker() as db:
        cust_id = db.scalar(select(PlanRequest.customer_id).where(PlanRequest.reference == ref))
    set_identity(book.sessionmaker, cust_id, "wechat", last_inbound_at=T0 - timedelta(hours=49))
    original = app.state.rules
    yml = original.model_copy(update={"outreach": original.outreach.model_copy(
        update={"wechat_template_outside_window": True})})
    app.state.rules = effective_rules(yml, Settings(WECHAT_TEMPLATE_ID=template))
    try:
        rasa.take()
        after = last_audit_id(app)
        assert ok(Staff(app, client).plan(ref, "approve"))["status"] == "approved"
        (request,) = posts(app, rasa)
    finally:
        app.state.rules = original
    detail = {"reference": ref, "intent": PLAN, "channel": "wechat", "via": "console"}
    if template:
        assert shape(app, request) == trigger(conv, "wechat", PLAN, ref)
    else:
        with app.state.sessionmaker() as db:
            phone = db.get(Customer, cust_id).phone
        assert shape(app, request) == trigger(f"sms:+86{phone}", "sms", PLAN, ref)
        detail["sent_on"] = "sms"
    assert [(act, d) for _, act, _, _, d in notice_rows(app, after)] == [("notice_sent", detail)]


# --------------------------------------------------------------------------- what is not sent

def test_withdrawal_review_and_other_non_decisions_send_nothing(desk, app, client, book, rasa):
    cust = book.customer("郑浩")
    loan = book.loan(cust.id, "6000", "0.12", 12, date(2026, 7, 13), paid=4)
    ref = ok(client.post("/api/v1/plan-requests", headers=HEADERS, json={
        "conversation": f"web:{cust.id}", "channel": "web", "customer_id": cust.id, "loan_id": loan.id,
        "reason_category": "income_drop", "plan_type": "instalment", "months": 12}), 201)["reference"]
    ok(desk.act(f"/api/v1/plan-requests/{ref}/review", {"by": "alice"}))
    withdrawn = ok(client.post(f"/api/v1/plan-requests/{ref}/withdraw", headers=HEADERS,
                               json={"customer_id": cust.id}))
    assert withdrawn["status"] == "withdrawn"
    # refused decisions change nothing and tell nobody
    assert_error(desk.act(f"/api/v1/plan-requests/{ref}/approve", {"by": "bob", "role": "agent"}), 409, "request_ended")
    assert_error(desk.act(f"/api/v1/plan-requests/{ref}/reject", {"by": "bob", "role": "agent", "reason": "无"}), 409, "request_ended")
    cref, conv = complaint(client, book, "wechat", "collection")  # opening one pauses reminders
    ok(desk.act(f"/api/v1/complaints/{cref}/clear-reminder-pause", {"by": "alice"}))
    assert received(app, rasa) == []
    ok(desk.act(f"/api/v1/complaints/{cref}/close", {"by": "alice"}))
    assert received(app, rasa) == [trigger(conv, "wechat", COMPLAINT, cref)]  # only the close is told
    assert_error(desk.act(f"/api/v1/complaints/{cref}/start", {"by": "alice"}), 409,
                 "complaint_ended")
    assert_error(desk.act(f"/api/v1/complaints/{cref}/extend", {"by": "alice", "reason": "再等等"}), 409, "complaint_ended")
    assert received(app, rasa) == []


# --------------------------------------------------------------------------- Rasa down or failing

@pytest.mark.parametrize("failure, error", [
    ("unreachable", "ConnectError"),
    ("failing", "http_500"),
    ("intent_not_in_domain", "http_404"),  # what Rasa answers for an intent its domain lacks
    ("wrong_token", "http_401"),
    ("paused_for_staff", "conversation_paused"),  # 200, but Rasa runs no action in a paused conversation
    ("bot_silent", "no_reply"),  # 200, the action ran, but the bot said nothing (e.g. the backend unreachable)
])
def test_a_failed_notice_leaves_the_decision_standing(desk, app, client, book, rasa, caplog, failure, error):
    ref, conv = plan_under_review(desk, client, book, "sms")
    cref, cconv = complaint(client, book, "wechat")
    if failure == "unreachable":
        app.state.rasa = RasaClient("http://127.0.0.1:9", TOKEN)  # nothing listens on port 9
    elif failure == "wrong_token":
        app.state.rasa = RasaClient(rasa.url, "not-the-token")
    elif failure == "paused_for_staff":
        rasa.paused = True
    elif failure == "bot_silent":
        rasa.silent = True
    else:
        rasa.status = int(error.removeprefix("http_"))
    after = last_audit_id(app)
    with caplog.at_level(logging.WARNING, logger="backend.services.notices"):
        got = ok(desk.act(f"/api/v1/plan-requests/{ref}/approve", {"by": "bob", "role": "agent"}))
        assert got["status"] == "approved" and got["reference"] == ref
        deliver(app)
        ticket = ok(Staff(app, client, "console").ticket(cref, "resolve", resolution="已处理"))
        assert ticket["status"] == "resolved"
        deliver(app)
    assert plan_status(app, ref) == "approved" and ticket_state(app, cref) == ("resolved", False)
    rows = [(a, act, d) for a, act, _, _, d in audit_since(app, after)
            if act in ("plan_request.approved", "complaint.resolved") or act.startswith("notice_")]
    assert [(a, act) for a, act, _ in rows] == [("bob", "plan_request.approved"), ("bob", "notice_failed"),
                                                ("agent1", "complaint.resolved"), ("agent1", "notice_failed")]
    assert rows[1][2] == {"reference": ref, "intent": PLAN, "channel": "sms", "via": "console", "error": error}
    assert rows[3][2] == {"reference": cref, "intent": COMPLAINT, "channel": "wechat", "via": "console",
                          "error": error}
    logged = [r.getMessage() for r in caplog.records if r.name == "backend.services.notices"]
    assert logged == [f"notice {PLAN} for {ref} not delivered: {error}",
                      f"notice {COMPLAINT} for {cref} not delivered: {error}"]
    phone = conv.removeprefix("sms:")
    assert not any(phone in m or phone[3:] in m or cconv in m for m in caplog.messages)  # no personal data
