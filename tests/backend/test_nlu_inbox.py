"""The understanding inbox (理解收件箱) through the real app and database (SQLite and PostgreSQL):

* the bot's API (``POST /api/v1/nlu-review/items``): strict validation, nothing written on a refusal,
  the text stored masked (phones 138****5678, no run of 4+ digits), the conversation masked and
  hashed, the same masked text counted instead of duplicated, the same message never counted twice;
* the console: the page and the list (newest first, filters), only supervisors confirm / correct /
  dismiss (agents 403), the session's CSRF token required, every decision in the audit log;
* 「标记理解有误」: the message is re-read from Rasa's tracker by its event timestamp (fake_rasa); a
  timestamp that is no borrower message is a 404 and writes nothing;
* the export (``python -m backend.cli export-nlu-review``): the exact file, conflicts and redundant
  texts left out, a re-run byte-identical, a valid Rasa NLU YAML document.
"""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from backend.core.clock import SHANGHAI
from backend.core.config import ROOT, contract_intents
from backend.models import AuditLog, NluReviewItem, NluReviewOccurrence, StaffSession
from backend.models.nlu_review import INTENT_LABELS
from backend.services import nlu_export, nlu_review, staff
from backend.services.rasa_api import RasaClient
from fake_rasa import FakeRasa
from testkit import HEADERS, ManualClock, console_sign_in, local

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
PASSWORD = "inbox-test-pass-1"
TS = 1_795_000_000.371  # a Rasa event timestamp (Unix seconds, as Rasa stores them)
API = "/api/v1/nlu-review/items"
SECRET = "dev-nlu-review-secret"  # the default NLU_REVIEW_HASH_SECRET (make_settings leaves it)


@pytest.fixture(scope="module")
def people(app):
    with app.state.sessionmaker() as db:
        for username, name, role in (("agent1", "客服小王", "agent"), ("agent2", "客服小李", "agent"),
                                     ("supervisor1", "主管老陈", "supervisor")):
            staff.create_user(db, username, name, role, PASSWORD, T0, "test")
        db.commit()


@pytest.fixture
def clock(app, people):
    """An empty inbox, no staff session, the business clock at T0."""
    with app.state.sessionmaker() as db:
        db.execute(delete(NluReviewOccurrence))
        db.execute(delete(NluReviewItem))
        db.execute(delete(StaffSession))
        db.commit()
    original, manual = app.state.clock, ManualClock(T0)
    app.state.clock = manual
    yield manual
    app.state.clock = original


def report(**over) -> dict:
    """What bot/review_broker.py sends for a fallback."""
    body = {"conversation": "sms:+8613812345678", "channel": "sms", "text": "我的手机13812345678 验证码123456 阿巴阿巴",
            "timestamp": TS, "source": "fallback", "predicted_intent": "provide_identity", "confidence": 0.446,
            "ranking": [{"intent": "provide_identity", "confidence": 0.446}, {"intent": "complaint", "confidence": 0.298},
                        {"intent": "goodbye", "confidence": 0.171}]}
    body.update(over)
    return body


def rows(app) -> list[NluReviewItem]:
    with app.state.sessionmaker() as db:
        return list(db.scalars(select(NluReviewItem).order_by(NluReviewItem.id)))


def occurrences(app) -> list[NluReviewOccurrence]:
    with app.state.sessionmaker() as db:
        return list(db.scalars(select(NluReviewOccurrence).order_by(NluReviewOccurrence.id)))


def written(app) -> tuple[int, int, int]:
    with app.state.sessionmaker() as db:
        return (db.scalar(select(func.count()).select_from(NluReviewItem)),
                db.scalar(select(func.count()).select_from(NluReviewOccurrence)),
                db.scalar(select(func.count()).select_from(AuditLog)))


def audit_after(app, after: int) -> list[tuple]:
    with app.state.sessionmaker() as db:
        return [(a.actor, a.action, a.entity_type, a.entity_id, a.detail)
                for a in db.scalars(select(AuditLog).where(AuditLog.id > after).order_by(AuditLog.id))]


def last_audit(app) -> int:
    with app.state.sessionmaker() as db:
        return db.scalar(select(func.coalesce(func.max(AuditLog.id), 0)))


def sign_in(app, username):
    return console_sign_in(app, username, PASSWORD)


def write(c, path: str, json=None, csrf: str | None = "own"):
    headers = {"X-CSRF-Token": c.csrf if csrf == "own" else csrf} if csrf else {}
    return c.post(f"/console/api{path}", json=json, headers=headers)


def error_code(r) -> str:
    return r.json()["error"]["code"]


def hmac_hex(value: str) -> str:
    import hmac

    return hmac.new(SECRET.encode(), value.encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- the bot's API

def test_a_fallback_is_stored_masked_with_its_prediction(app, client, clock):
    r = client.post(API, headers=HEADERS, json=report())
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    assert r.json() == {"id": item_id, "outcome": "created", "occurrences": 1, "status": "open"}

    [item] = rows(app)
    assert item.text_masked == "我的手机138****5678 验证码**** 阿巴阿巴"
    assert not re.search(r"\d{5,}", item.text_masked)  # no code, no full number
    assert item.text_key == hashlib.sha256(item.text_masked.encode()).hexdigest()
    assert item.conversation_masked == "sms:138****5678"
    assert item.conversation_hash == hmac_hex("sms:+8613812345678")
    assert (item.channel, item.source.value, item.predicted_intent, item.confidence) == (
        "sms", "fallback", "provide_identity", 0.446)
    assert item.ranking == report()["ranking"]
    assert (item.occurrences, item.status.value, item.final_intent, item.reviewed_by, item.exported_at) == (
        1, "open", None, None, None)
    assert local(item.created_at) == T0 and local(item.last_seen_at) == T0
    [occ] = occurrences(app)
    assert occ.event_key == hmac_hex(f"sms:+8613812345678\x1f{TS!r}")
    assert (occ.item_id, occ.source.value, occ.recorded_by) == (item.id, "fallback", "actions")
    assert local(occ.event_at) == datetime.fromtimestamp(TS, SHANGHAI)
    # the clear phone number and the code are nowhere in the stored rows
    with app.state.sessionmaker() as db:
        dump = repr([tuple(r) for r in db.execute(select(NluReviewItem.__table__))]) + \
            repr([tuple(r) for r in db.execute(select(NluReviewOccurrence.__table__))]) + \
            repr([a.detail for a in db.scalars(select(AuditLog).where(AuditLog.entity_type == "nlu_review_item"))])
    assert "13812345678" not in dump and "123456" not in dump and "8613812345678" not in dump


def test_the_same_masked_text_counts_and_the_same_message_never_twice(app, client, clock):
    first = client.post(API, headers=HEADERS, json=report()).json()
    again = client.post(API, headers=HEADERS, json=report())  # the very same event (a retry)
    assert again.status_code == 200 and again.json() == {**first, "outcome": "duplicate"}
    clock.advance(minutes=5)
    other = client.post(API, headers=HEADERS, json=report(  # another borrower, another code: the same masked text
        conversation="web:77", channel="web", timestamp=TS + 60, text="我的手机13899995678  验证码654321\n阿巴阿巴"))
    assert other.status_code == 200, other.text
    [item] = rows(app)
    assert other.json() == {"id": item.id, "outcome": "counted", "occurrences": 2, "status": "open"}
    assert item.text_masked == "我的手机138****5678 验证码**** 阿巴阿巴"
    assert item.occurrences == 2 and len(occurrences(app)) == 2
    assert local(item.last_seen_at) == T0 + timedelta(minutes=5) and local(item.created_at) == T0
    assert (item.conversation_masked, item.channel) == ("web:77", "web")  # the latest occurrence's


def test_the_phone_mask_keeps_its_last_four_and_texts_differing_only_in_numbers_are_one_item(app, client, clock):
    a = client.post(API, headers=HEADERS, json=report(text="验证码是123456", timestamp=TS + 1)).json()
    b = client.post(API, headers=HEADERS, json=report(text="验证码是654321 ", timestamp=TS + 2)).json()
    c = client.post(API, headers=HEADERS, json=report(text="验证码是9876543", timestamp=TS + 3)).json()
    assert a["id"] == b["id"] == c["id"] and c["occurrences"] == 3
    assert [i.text_masked for i in rows(app)] == ["验证码是****"]


@pytest.mark.parametrize("change, code", [
    ({"predicted_intent": "check_weather", "ranking": [{"intent": "check_weather", "confidence": 0.4}]}, "unknown_intent"),
    ({"predicted_intent": "nlu_fallback", "ranking": [{"intent": "nlu_fallback", "confidence": 0.5}]}, "unknown_intent"),
    ({"ranking": [{"intent": "provide_identity", "confidence": 0.4}, {"intent": "EXTERNAL_due_reminder", "confidence": 0.1}]},
     "unknown_intent"),
    ({"ranking": [{"intent": "complaint", "confidence": 0.5}]}, "bad_ranking"),
    ({"ranking": [{"intent": "provide_identity", "confidence": 0.4}, {"intent": "provide_identity", "confidence": 0.4}]},
     "bad_ranking"),
    ({"source": "low_confidence", "confidence": 0.7, "ranking": [{"intent": "provide_identity", "confidence": 0.7}]},
     "not_low_confidence"),
    ({"text": "字" * 501}, "text_too_long"),  # nlu_review.max_text_chars: 500
    ({"text": " \n\t "}, "empty"),
    ({"text": "\x00\x01"}, "empty"),
])
def test_a_refused_report_writes_nothing(app, client, clock, change, code):
    before = written(app)
    r = client.post(API, headers=HEADERS, json=report(**change))
    assert r.status_code == 422, r.text
    assert error_code(r) == code
    assert written(app) == before


@pytest.mark.parametrize("body", [
    [report()],  # a JSON array
    "text",
    {**report(), "text": 12345},
    {**report(), "confidence": "0.4"},
    {**report(), "confidence": 1.5},
    {**report(), "timestamp": "1795000000"},
    {**report(), "timestamp": 1e20},
    {**report(), "timestamp": -5},
    {**report(), "channel": "fax"},
    {**report(), "source": "staff_flag"},  # only staff flag, in the console
    {**report(), "text": "长" * 5000},
    {**report(), "ranking": []},
    {**report(), "ranking": report()["ranking"] + [{"intent": "greet", "confidence": 0.01}]},
    {**report(), "ranking": [{"intent": "provide_identity"}]},
    {**report(), "extra": 1},
    {k: v for k, v in report().items() if k != "text"},
])
def test_malformed_input_is_a_422_never_a_500(app, client, clock, body):
    before = written(app)
    r = client.post(API, headers=HEADERS, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input"
    assert written(app) == before


def test_nan_confidence_and_a_broken_body_are_refused(app, client, clock):
    before = written(app)
    raw = '{"conversation": "web:1", "channel": "web", "text": "x", "timestamp": 1795000000, "source": "fallback", ' \
          '"predicted_intent": "greet", "confidence": NaN, "ranking": [{"intent": "greet", "confidence": NaN}]}'
    r = client.post(API, headers={**HEADERS, "Content-Type": "application/json"}, content=raw)
    assert r.status_code == 422
    r = client.post(API, headers={**HEADERS, "Content-Type": "application/json"}, content=b'{"text": ')
    assert r.status_code == 422
    assert written(app) == before


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong-key"}])
def test_the_api_needs_the_service_key(app, client, clock, headers):
    before = written(app)
    r = client.post(API, headers=headers, json=report())
    assert r.status_code == 401 and error_code(r) == "unauthorized"
    assert written(app) == before


# --------------------------------------------------------------------------- the console

def seed(client, n: int, clock) -> list[int]:
    """n items, one a minute; sources fallback, low_confidence in turn."""
    ids = []
    for i in range(n):
        low = i % 2 == 1
        body = report(text=f"第{i}句 阿巴", timestamp=TS + 100 + i, source="low_confidence" if low else "fallback",
                      confidence=0.6 if low else 0.446,
                      ranking=[{"intent": "provide_identity", "confidence": 0.6 if low else 0.446},
                               {"intent": "complaint", "confidence": 0.298}])
        r = client.post(API, headers=HEADERS, json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        clock.advance(minutes=1)
    return ids


def test_the_page_is_in_the_nav_and_needs_a_session(app, clock):
    anon = TestClient(app, follow_redirects=False)
    r = anon.get("/console/nlu-inbox")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert anon.get("/console/api/nlu-inbox").status_code == 401
    agent = sign_in(app, "agent1")
    page = agent.get("/console/nlu-inbox")
    assert page.status_code == 200
    assert '<a href="/console/nlu-inbox" class="on">理解收件箱</a>' in page.text
    assert 'src="/static/nlu_inbox.js"' in page.text and "低于70%" in page.text
    assert '<a href="/console/nlu-inbox" class="">理解收件箱</a>' in agent.get("/console").text
    assert agent.get("/static/nlu_inbox.js").status_code == 200


def test_the_list_is_newest_first_with_labels_and_filters(app, client, clock):
    ids = seed(client, 4, clock)
    agent = sign_in(app, "agent1")
    data = agent.get("/console/api/nlu-inbox").json()
    assert [i["id"] for i in data["items"]] == ids[::-1]
    assert data["can_review"] is False and data["review_below"] == 0.7
    assert [i["name"] for i in data["intents"]] == list(contract_intents())
    assert data["intents"][7] == {"name": "query_balance", "label": "查询欠款"}
    first = data["items"][-1]
    assert first == {
        "id": ids[0], "text_masked": "第0句 阿巴", "conversation_masked": "sms:138****5678", "channel": "sms",
        "source": "fallback", "source_label": "未识别（兜底）", "predicted_intent": "provide_identity",
        "predicted_label": "提供身份信息", "confidence": 0.446,
        "ranking": [{"intent": "provide_identity", "label": "提供身份信息", "confidence": 0.446},
                    {"intent": "complaint", "label": "投诉", "confidence": 0.298}],
        "occurrences": 1, "status": "open", "status_label": "待审核", "final_intent": None, "final_label": None,
        "reviewed_by": None, "reviewed_at": None, "exported_at": None,
        "created_at": T0.isoformat(), "last_seen_at": T0.isoformat()}
    low = agent.get("/console/api/nlu-inbox?source=low_confidence").json()["items"]
    assert [i["id"] for i in low] == [ids[3], ids[1]]
    assert agent.get("/console/api/nlu-inbox?status=confirmed").json()["items"] == []
    both = agent.get("/console/api/nlu-inbox?status=open&status=dismissed&source=fallback&source=staff_flag").json()
    assert [i["id"] for i in both["items"]] == [ids[2], ids[0]]
    assert agent.get("/console/api/nlu-inbox?status=closed").status_code == 422
    assert agent.get("/console/api/nlu-inbox?source=bot").status_code == 422
    sup = sign_in(app, "supervisor1")
    assert sup.get("/console/api/nlu-inbox").json()["can_review"] is True


def test_every_contract_intent_has_a_chinese_label():
    assert len(contract_intents()) == 26
    assert set(contract_intents()) == set(INTENT_LABELS)
    assert all(re.search(r"[\u4e00-\u9fff]", label) for label in INTENT_LABELS.values())


def test_an_agent_may_not_review(app, client, clock):
    [item_id] = seed(client, 1, clock)
    agent = sign_in(app, "agent1")
    before = written(app)
    for path, body in ((f"/nlu-inbox/{item_id}/intent", {"intent": "provide_identity"}),
                       (f"/nlu-inbox/{item_id}/intent", {"intent": "complaint"}), (f"/nlu-inbox/{item_id}/dismiss", None)):
        r = write(agent, path, body)
        assert r.status_code == 403 and error_code(r) == "forbidden"
    assert written(app) == before
    [item] = rows(app)
    assert (item.status.value, item.final_intent, item.reviewed_by) == ("open", None, None)


def test_a_supervisor_confirms_corrects_and_dismisses_with_an_audit_row_each(app, client, clock):
    a, b, c = seed(client, 3, clock)
    sup = sign_in(app, "supervisor1")
    clock.advance(minutes=2)
    before = last_audit(app)
    r = write(sup, f"/nlu-inbox/{a}/intent", {"intent": "provide_identity"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["status"], out["status_label"], out["final_intent"], out["final_label"], out["reviewed_by"]) == (
        "confirmed", "已确认", "provide_identity", "提供身份信息", "supervisor1")
    assert out["reviewed_at"] == clock.at.isoformat()
    assert write(sup, f"/nlu-inbox/{b}/intent", {"intent": "out_of_scope"}).json()["status"] == "corrected"
    assert write(sup, f"/nlu-inbox/{c}/dismiss").json()["status"] == "dismissed"
    items = {i.id: i for i in rows(app)}
    assert (items[a].status.value, items[a].final_intent, items[a].reviewed_by, local(items[a].reviewed_at)) == (
        "confirmed", "provide_identity", "supervisor1", clock.at)
    assert (items[b].status.value, items[b].final_intent) == ("corrected", "out_of_scope")
    assert (items[c].status.value, items[c].final_intent, items[c].reviewed_by) == ("dismissed", None, "supervisor1")
    assert audit_after(app, before) == [
        ("supervisor1", "nlu_review.confirmed", "nlu_review_item", str(a),
         {"final_intent": "provide_identity", "predicted_intent": "provide_identity", "previous_status": "open"}),
        ("supervisor1", "nlu_review.corrected", "nlu_review_item", str(b),
         {"final_intent": "out_of_scope", "predicted_intent": "provide_identity", "previous_status": "open"}),
        ("supervisor1", "nlu_review.dismissed", "nlu_review_item", str(c),
         {"final_intent": None, "predicted_intent": "provide_identity", "previous_status": "open"}),
    ]
    # The same decision again changes nothing; another one is recorded (and awaits the next export).
    before = last_audit(app)
    assert write(sup, f"/nlu-inbox/{a}/intent", {"intent": "provide_identity"}).status_code == 200
    assert audit_after(app, before) == []
    assert write(sup, f"/nlu-inbox/{c}/intent", {"intent": "greet"}).json()["status"] == "corrected"
    assert [x[1] for x in audit_after(app, before)] == ["nlu_review.corrected"]
    # the list shows open items by default; reviewed ones by their status
    assert sup.get("/console/api/nlu-inbox").json()["items"] == []
    assert {i["id"] for i in sup.get("/console/api/nlu-inbox?status=corrected").json()["items"]} == {b, c}


def test_decisions_are_checked(app, client, clock):
    [item_id] = seed(client, 1, clock)
    sup = sign_in(app, "supervisor1")
    before = written(app)
    r = write(sup, f"/nlu-inbox/{item_id}/intent", {"intent": "check_weather"})
    assert r.status_code == 422 and error_code(r) == "unknown_intent"
    for body in ({"intent": 5}, {}, {"intent": "greet", "x": 1}, ["greet"], {"intent": ""}):
        r = write(sup, f"/nlu-inbox/{item_id}/intent", body)
        assert r.status_code == 422 and error_code(r) == "invalid_input", body
    r = write(sup, "/nlu-inbox/999999/intent", {"intent": "greet"})
    assert r.status_code == 404 and error_code(r) == "not_found"
    assert write(sup, "/nlu-inbox/999999/dismiss").status_code == 404
    assert written(app) == before


def test_review_needs_the_session_csrf_token(app, client, clock):
    [item_id] = seed(client, 1, clock)
    sup = sign_in(app, "supervisor1")
    before = written(app)
    for token in (None, "forged-token"):
        for path, body in ((f"/nlu-inbox/{item_id}/intent", {"intent": "greet"}), (f"/nlu-inbox/{item_id}/dismiss", None)):
            r = write(sup, path, body, csrf=token)
            assert r.status_code == 403 and error_code(r) == "csrf"
    assert written(app) == before
    assert rows(app)[0].status.value == "open"


# --------------------------------------------------------------------------- 「标记理解有误」

@pytest.fixture
def rasa(app):
    with FakeRasa("flag-token") as fake:
        original = app.state.rasa
        app.state.rasa = RasaClient(fake.url, "flag-token")
        yield fake
        app.state.rasa = original


def open_case(client, conversation: str, channel: str) -> dict:
    r = client.post("/api/v1/handoffs", headers=HEADERS,
                    json={"conversation": conversation, "channel": channel, "reason": "request_human", "summary": "转人工"})
    assert r.status_code == 201, r.text
    return r.json()


def tracker(conversation: str) -> list[dict]:
    """Rasa's events of a conversation: a fallback, a confident answer, a button, a trigger."""
    return [
        {"event": "action", "name": "action_session_start", "timestamp": TS},
        {"event": "user", "text": "我手机13812345678 那个啥 阿巴", "timestamp": TS + 1.25, "parse_data": {
            "intent": {"name": "nlu_fallback", "confidence": 0.5},
            "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.5}, {"name": "complaint", "confidence": 0.41},
                               {"name": "query_balance", "confidence": 0.33}, {"name": "greet", "confidence": 0.1},
                               {"name": "thank", "confidence": 0.05}]}},
        {"event": "bot", "text": "不好意思，我没太明白", "timestamp": TS + 1.5},
        {"event": "user", "text": "我还欠多少钱", "timestamp": TS + 2.125, "parse_data": {
            "intent": {"name": "query_balance", "confidence": 0.99},
            "intent_ranking": [{"name": "query_balance", "confidence": 0.99}, {"name": "thank", "confidence": 0.01}]}},
        {"event": "user", "text": "/affirm", "timestamp": TS + 3, "parse_data": {"intent": {"name": "affirm", "confidence": 1.0}}},
        {"event": "user", "text": "EXTERNAL: EXTERNAL_due_reminder", "timestamp": TS + 4,
         "parse_data": {"intent": {"name": "EXTERNAL_due_reminder", "confidence": 1.0}}},
    ]


def test_staff_flag_a_transcript_message_by_its_timestamp(app, client, clock, rasa):
    conversation = f"sms:+86139{uuid.uuid4().int % 10**8:08d}"
    case = open_case(client, conversation, "sms")
    rasa.trackers[conversation] = tracker(conversation)
    agent = sign_in(app, "agent1")
    # the transcript gives each borrower message its event timestamp
    turns = agent.get(f"/console/api/cases/{case['id']}/transcript").json()["transcript"]
    assert [(t["who"], t.get("ts")) for t in turns] == [("borrower", TS + 1.25), ("bot", None), ("borrower", TS + 2.125)]

    before = last_audit(app)
    r = write(agent, f"/cases/{case['id']}/flag-message", {"timestamp": TS + 2.125})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["outcome"] == "created"
    item = out["item"]
    assert (item["text_masked"], item["source"], item["source_label"], item["predicted_intent"], item["confidence"],
            item["channel"], item["status"]) == ("我还欠多少钱", "staff_flag", "客服标记", "query_balance", 0.99, "sms", "open")
    assert item["conversation_masked"] == "sms:" + conversation[-11:-8] + "****" + conversation[-4:]
    assert audit_after(app, before) == [
        ("agent1", "nlu_review.recorded", "nlu_review_item", str(item["id"]),
         {"source": "staff_flag", "channel": "sms", "predicted_intent": "query_balance"}),
        ("agent1", "nlu_review.flagged", "nlu_review_item", str(item["id"]), {"case_id": case["id"], "outcome": "created"}),
    ]
    # a fallback: the best intent under nlu_fallback, the top three without it, the text masked
    fb = write(agent, f"/cases/{case['id']}/flag-message", {"timestamp": TS + 1.25}).json()["item"]
    assert (fb["text_masked"], fb["predicted_intent"], fb["confidence"]) == ("我手机138****5678 那个啥 阿巴", "complaint", 0.41)
    assert [r["intent"] for r in fb["ranking"]] == ["complaint", "query_balance", "greet"]
    # flagging it again: the same message, not counted twice
    again = write(agent, f"/cases/{case['id']}/flag-message", {"timestamp": TS + 2.125})
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert again.json()["item"]["occurrences"] == 1
    # Rasa was asked for this conversation's tracker
    assert rasa.requests[-1].path == f"/conversations/{conversation}/tracker"


def test_a_flag_on_a_message_the_bot_reported_is_the_same_occurrence(app, client, clock, rasa):
    conversation = "web:4242"
    case = open_case(client, conversation, "web")
    rasa.trackers[conversation] = tracker(conversation)
    reported = client.post(API, headers=HEADERS, json=report(
        conversation=conversation, channel="web", text="我手机13812345678 那个啥 阿巴", timestamp=TS + 1.25,
        predicted_intent="complaint", confidence=0.41,
        ranking=[{"intent": "complaint", "confidence": 0.41}, {"intent": "query_balance", "confidence": 0.33}]))
    assert reported.status_code == 201
    agent = sign_in(app, "agent2")
    r = write(agent, f"/cases/{case['id']}/flag-message", {"timestamp": TS + 1.25})
    assert r.status_code == 200 and r.json()["outcome"] == "duplicate"
    assert (r.json()["item"]["id"], r.json()["item"]["occurrences"]) == (reported.json()["id"], 1)
    assert r.json()["item"]["source"] == "staff_flag"  # a staff member's flag shows


@pytest.mark.parametrize("ts", [TS + 1.2501, TS + 1.5, TS + 3, TS + 4, TS + 99])
def test_a_forged_timestamp_is_a_404_and_writes_nothing(app, client, clock, rasa, ts):
    conversation = f"wechat:o{uuid.uuid4().hex[:20]}"
    case = open_case(client, conversation, "wechat")
    rasa.trackers[conversation] = tracker(conversation)
    agent = sign_in(app, "agent1")
    before = written(app)
    r = write(agent, f"/cases/{case['id']}/flag-message", {"timestamp": ts})  # a bot turn, a button, a trigger, nothing
    assert r.status_code == 404 and error_code(r) == "not_found"
    assert written(app) == before


def test_flagging_is_checked(app, client, clock, rasa):
    conversation = f"wechat:o{uuid.uuid4().hex[:20]}"
    case = open_case(client, conversation, "wechat")
    rasa.trackers[conversation] = tracker(conversation)
    a1, a2 = sign_in(app, "agent1"), sign_in(app, "agent2")
    assert write(a1, f"/cases/{case['id']}/claim").status_code == 200
    before = written(app)
    r = write(a2, f"/cases/{case['id']}/flag-message", {"timestamp": TS + 2.125})  # another agent's case
    assert r.status_code == 403 and error_code(r) == "not_your_case"
    r = write(a1, f"/cases/{case['id']}/flag-message", {"timestamp": TS + 2.125}, csrf=None)
    assert r.status_code == 403 and error_code(r) == "csrf"
    for body in ({"timestamp": "1795000002.125"}, {"timestamp": 1e30}, {}, {"timestamp": TS, "text": "x"}, [TS]):
        r = write(a1, f"/cases/{case['id']}/flag-message", body)
        assert r.status_code == 422 and error_code(r) == "invalid_input", body
    assert write(a1, "/cases/999999/flag-message", {"timestamp": TS + 2.125}).status_code == 404
    rasa.status = 500
    r = write(a1, f"/cases/{case['id']}/flag-message", {"timestamp": TS + 2.125})
    assert r.status_code == 502 and error_code(r) == "rasa_unavailable"
    assert written(app) == before
    rasa.status = 200


# --------------------------------------------------------------------------- export

HAND_WRITTEN = '''version: "3.1"
nlu:
  - intent: greet
    examples: |
      - 你好
      - 您好啊
  - intent: query_balance
    examples: |
      - 我还欠[多少](amount)钱
      - 还欠多少
  - synonym: 信用贷
    examples: |
      - 信用贷款
'''

EXPECTED = '''# GENERATED by `python -m backend.cli export-nlu-review` from the staff console's understanding inbox
# (理解收件箱): borrower messages a supervisor confirmed or corrected. Do NOT edit by hand: the
# file is regenerated whole on every export. Change a decision in the console and export again;
# to settle a conflict with the hand-written data, edit the hand-written file.
version: "3.1"
nlu:
  - intent: ask_interest_fees
    examples: |
      - "利息" 到底: 多少 # 问一下
      - - 利息怎么算
  - intent: out_of_scope
    examples: |
      - 火星上的猫会不会游泳
      - 阿巴阿巴 **** 8
'''


def decided(app, client, clock, text: str, decision: str | None, n: int) -> int:
    """An item for the text (reported as a fallback predicting provide_identity), then decided."""
    r = client.post(API, headers=HEADERS, json=report(text=text, timestamp=TS + 1000 + n))
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    if decision is not None:
        sup = sign_in(app, "supervisor1")
        path, body = (f"/nlu-inbox/{item_id}/dismiss", None) if decision == "dismiss" else \
            (f"/nlu-inbox/{item_id}/intent", {"intent": decision})
        assert write(sup, path, body).status_code == 200
    return item_id


@pytest.fixture
def reviewed(app, client, clock, tmp_path):
    nlu_dir = tmp_path / "nlu"
    nlu_dir.mkdir()
    (nlu_dir / "account.yml").write_text(HAND_WRITTEN, encoding="utf-8")
    (nlu_dir / "real").mkdir()  # Rasa reads data/ recursively: sub-folders are training data too
    (nlu_dir / "real" / "corpus.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: ask_interest_fees\n    examples: |\n      - 利息太高了\n', encoding="utf-8")
    ids = {
        "abc": decided(app, client, clock, "阿巴阿巴 1381234567 8", "out_of_scope", 1),
        "mars": decided(app, client, clock, "火星上的猫会不会游泳", "out_of_scope", 2),
        "quotes": decided(app, client, clock, '"利息"  到底: 多少 # 问一下', "ask_interest_fees", 3),
        "dash": decided(app, client, clock, "- 利息怎么算", "ask_interest_fees", 4),
        "redundant": decided(app, client, clock, "你好", "greet", 5),
        "conflict": decided(app, client, clock, "我还欠多少钱", "complaint", 6),
        "conflict2": decided(app, client, clock, "利息太高了", "complaint", 9),
        "dismissed": decided(app, client, clock, "嗯嗯嗯嗯", "dismiss", 7),
        "open": decided(app, client, clock, "还没审核的一句", None, 8),
    }
    return nlu_dir, ids


def run_cli(db_url: str, out: Path, nlu_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend.cli", "--database-url", db_url, "export-nlu-review",
                           "--out", str(out), "--nlu-dir", str(nlu_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_export_writes_exactly_the_reviewed_examples(app, db_url, reviewed, tmp_path):
    nlu_dir, ids = reviewed
    out = tmp_path / "data" / "reviewed.yml"
    before = last_audit(app)
    proc = run_cli(db_url, out, nlu_dir)
    assert proc.returncode == 0, proc.stderr
    content = out.read_bytes()
    assert content.decode("utf-8") == EXPECTED
    assert proc.stdout.splitlines()[0] == (f"nlu review: 4 examples of 2 intents written to {out} (4 new); "
                                           "1 already in the training data, 2 conflicts, 0 skipped")
    assert proc.stderr.splitlines() == [
        "WARNING conflict: '利息太高了' reviewed as complaint but already ask_interest_fees in real/corpus.yml; "
        "not written (settle it in the hand-written data)",
        "WARNING conflict: '我还欠多少钱' reviewed as complaint but already query_balance in account.yml; "
        "not written (settle it in the hand-written data)"]
    # a YAML document Rasa reads: the examples come back exactly
    doc = yaml.safe_load(content)
    assert doc["version"] == "3.1"
    assert nlu_export.read_examples(content.decode()) == {
        "ask_interest_fees": ['"利息" 到底: 多少 # 问一下', "- 利息怎么算"],
        "out_of_scope": ["火星上的猫会不会游泳", "阿巴阿巴 **** 8"]}
    items = {i.id: i for i in rows(app)}
    assert {k for k, i in ids.items() if items[i].exported_at is not None} == {"abc", "mars", "quotes", "dash"}
    [(actor, action, entity_type, entity_id, detail)] = audit_after(app, before)
    assert (actor, action, entity_type, entity_id) == ("cli", "nlu_review.exported", "nlu_review_export", "reviewed.yml")
    assert detail == {"path": str(out), "written": 4, "newly_exported": 4, "intents": 2, "redundant": 1,
                      "conflicts": 2, "unsafe": 0}

    # a re-run regenerates the same bytes and exports nothing new
    exported_at = {i.id: i.exported_at for i in rows(app)}
    proc = run_cli(db_url, out, nlu_dir)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == content
    assert "(0 new)" in proc.stdout
    assert {i.id: i.exported_at for i in rows(app)} == exported_at


def test_a_changed_decision_is_exported_again_and_the_own_file_is_no_data(app, client, clock, db_url, reviewed):
    nlu_dir, ids = reviewed
    out = nlu_dir / "reviewed.yml"  # where it normally lives: among the hand-written files
    with app.state.sessionmaker() as db:
        first = nlu_review.export(db, out, nlu_dir, T0)
        db.commit()
    assert (first.written, first.newly_exported) == (4, 4)
    sup = sign_in(app, "supervisor1")
    assert write(sup, f"/nlu-inbox/{ids['mars']}/intent", {"intent": "query_balance"}).json()["exported_at"] is None
    with app.state.sessionmaker() as db:
        second = nlu_review.export(db, out, nlu_dir, T0 + timedelta(hours=1))
        db.commit()
    # its own previous output is not "existing data": nothing became redundant
    assert (second.written, second.newly_exported, len(second.redundant)) == (4, 1, 1)
    assert "  - intent: query_balance\n    examples: |\n      - 火星上的猫会不会游泳\n" in out.read_text(encoding="utf-8")
    assert nlu_export.is_generated(out)


def test_export_of_nothing_is_a_valid_empty_file(app, clock, tmp_path):
    out = tmp_path / "reviewed.yml"
    with app.state.sessionmaker() as db:
        result = nlu_review.export(db, out, tmp_path, T0)
        db.commit()
    assert result.written == 0
    assert out.read_text(encoding="utf-8") == nlu_export.HEADER + 'version: "3.1"\nnlu: []\n'
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == {"version": "3.1", "nlu": []}


@pytest.mark.parametrize("text", ["[还款](amount)怎么还", "a\nb", " 前后有空格 ", "", "x\x00y"])
def test_a_text_that_is_no_single_example_line_is_never_rendered(text):
    assert not nlu_export.safe_example(text)
    with pytest.raises(ValueError):
        nlu_export.render({"greet": [text]})


def test_tricky_texts_round_trip_through_yaml():
    texts = sorted(["key: value", "# 井号开头", '"双引号"', "'单引号'", "- 横线开头", "---", "...", "|", ">", "&a *b",
                    "!tag", "%YAML", "@at `tick`", "{a: 1}", "[1, 2]", "[x] y", "null", "true", "~", "0x1F", "1e3",
                    "😀 表情", "繁體字還款", "ｆｕｌｌ－ｗｉｄｔｈ", "a: b # c: d", "\\ 反斜杠 \\n"])
    assert all(nlu_export.safe_example(t) for t in texts)
    content = nlu_export.render({"out_of_scope": texts})
    assert nlu_export.read_examples(content) == {"out_of_scope": texts}
    doc = yaml.safe_load(content)
    assert doc["nlu"][0]["intent"] == "out_of_scope"
    assert [line[2:] for line in doc["nlu"][0]["examples"].splitlines()] == texts
