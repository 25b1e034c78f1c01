"""Human handoff: opening cases, the queue, claim / reassign / first response / notes / close / CSAT,
the wait estimate, staffed hours and masking of what the bot collected.

Each database test starts with empty handoff tables (the module's database is shared) and a clock it
moves (the ``clock`` fixture replaces app.state.clock with ManualClock). Rules from config/business.yml, ``handoff``:
priorities distress / complaint_high 1, vip_plan / plan_review 2, request_human / repeated_fallback 3;
staffed 09:00-21:00 Asia/Shanghai every day; first-response target 3 minutes; the wait quoted is the
median first response (in staffed time) of the last 20 answered cases x queue position, 3 minutes
per position without history. 2026-11-23 is a Monday.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, time, timedelta, timezone

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from backend.core.clock import SHANGHAI
from backend.core.config import ROOT, BusinessRules, HandoffRules, StaffedHours
from backend.models import AuditLog, Channel, HandoffCase, HandoffNote, HandoffReason, HandoffStatus
from backend.services import handoff as svc
from testkit import (
    HEADERS, REPORTS, ManualClock, StaffDesk, assert_error, audit_since, iso, last_audit_id, local, ok,
)

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
BASE = "/api/v1/handoffs"
PRIORITY = {"distress": 1, "complaint_high": 1, "vip_plan": 2, "plan_review": 2,
            "request_human": 3, "repeated_fallback": 3}


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def empty_handoffs(app):
    """Queue contents, reference numbers and the wait-estimate history start from nothing."""
    with app.state.sessionmaker() as db:
        db.execute(delete(HandoffNote))
        db.execute(delete(HandoffCase))
        db.commit()


@pytest.fixture
def clock(app, empty_handoffs):
    """Every database test takes this: an empty queue and a clock at T0 (Monday 10:00 Shanghai)."""
    original = app.state.clock
    manual = ManualClock(T0)
    app.state.clock = manual
    yield manual
    app.state.clock = original


def conv(channel: str = "wechat") -> str:
    return f"{channel}:o{uuid.uuid4().hex[:20]}"


def body(conversation: str | None = None, reason: str = "request_human", summary: str = "客户要求转人工",
         customer_id: int | None = None, **extra) -> dict:
    conversation = conversation or conv()
    data = {"conversation": conversation, "channel": conversation.partition(":")[0], "reason": reason,
            "summary": summary, **extra}
    if customer_id is not None:
        data["customer_id"] = customer_id
    return data


STAFF_ACTION = re.compile(rf"{BASE}/[^/]+/(claim|reassign|first-response|notes|close)")


def post(client, path, json=None):
    """A call of the bot (its API key), or a staff action on a case (through the console: testkit.StaffDesk)."""
    if STAFF_ACTION.fullmatch(path):
        return StaffDesk.of(client.app).act(path, json)
    return client.post(path, headers=HEADERS, json=json)


def create(client, **kw):
    return post(client, BASE, body(**kw))


def counts(app) -> dict[str, int]:
    with app.state.sessionmaker() as db:
        return {m.__tablename__: db.scalar(select(func.count()).select_from(m))
                for m in (HandoffCase, HandoffNote, AuditLog)}


def stored(app, case_id: int) -> HandoffCase:
    with app.state.sessionmaker() as db:
        return db.get(HandoffCase, case_id)


def claimed_case(client, clock, staff: str = "alice", **kw) -> dict:
    case = ok(create(client, **kw), 201)
    return ok(post(client, f"{BASE}/{case['id']}/claim", {"staff": staff}))


# --------------------------------------------------------------------------- configuration

def test_every_reason_has_its_configured_priority():
    rules = BusinessRules.load(ROOT / "config" / "business.yml")
    assert rules.handoff.priorities == PRIORITY
    assert set(rules.handoff.priorities) == {r.value for r in HandoffReason}
    assert rules.handoff.staffed_hours == StaffedHours(start=time(9), end=time(21), days=[1, 2, 3, 4, 5, 6, 7])
    assert rules.handoff.first_response_target_minutes == 3
    assert (rules.handoff.wait_estimate.history_cases, rules.handoff.wait_estimate.default_minutes) == (20, 3)


@pytest.mark.parametrize("bad", [
    {"priorities": {**PRIORITY, "distress": 5}},
    {"priorities": {k: v for k, v in PRIORITY.items() if k != "vip_plan"}},
    {"priorities": {**PRIORITY, "angry": 1}},
    {"staffed_hours": {"start": "21:00", "end": "09:00"}},
    {"staffed_hours": {"start": 540, "end": "21:00"}},  # YAML 1.1 reads an unquoted 09:00 as 540
    {"staffed_hours": {"days": [0, 1]}},
    {"staffed_hours": {"days": []}},
])
def test_bad_handoff_rules_are_refused_at_load(bad):
    with pytest.raises(ValidationError):
        HandoffRules(**bad)


# --------------------------------------------------------------------------- creating a case

def test_create_opens_a_numbered_case_with_priority_and_estimate(app, client, clock, book):
    cust = book.customer("李雷")
    c = conv()
    before, audit_from = counts(app), last_audit_id(app)
    resp = create(client, conversation=c, reason="request_human", summary="想咨询提前还款，要求人工", customer_id=cust.id)
    got = ok(resp, 201)
    case_id = got.pop("id")
    assert got == {
        "reference": "HO20261123-0001", "conversation_masked": f"wechat:{c[7:11]}****{c[-4:]}", "channel": "wechat",
        "customer_id": cust.id, "reason": "request_human", "priority": 3, "summary": "想咨询提前还款，要求人工",
        "status": "open", "assigned_to": None, "created_at": "2026-11-23T10:00:00+08:00", "claimed_at": None,
        "first_response_at": None, "closed_at": None, "csat": None, "csat_comment": None,
        "position": 1, "wait_minutes": 3, "staffed": True, "next_staffed_at": None,
    }
    assert counts(app) == {**before, "handoff_cases": before["handoff_cases"] + 1,
                           "audit_log": before["audit_log"] + 1}
    row = stored(app, case_id)
    assert (row.conversation, row.active_conversation, row.channel, row.reason, row.status, row.priority) == (
        c, c, Channel.wechat, HandoffReason.request_human, HandoffStatus.open, 3)
    assert local(row.created_at) == T0
    assert audit_since(app, audit_from) == [("actions", "handoff.opened", "handoff_case", str(case_id), {
        "reference": "HO20261123-0001", "reason": "request_human", "priority": 3, "channel": "wechat",
        "customer_id": cust.id})]


def test_priority_follows_the_reason_and_references_count_up_per_day(client, clock):
    refs = []
    for reason, priority in PRIORITY.items():
        got = ok(create(client, reason=reason), 201)
        assert (got["reason"], got["priority"]) == (reason, priority)
        refs.append(got["reference"])
        clock.advance(seconds=1)
    assert refs == [f"HO20261123-{n:04d}" for n in range(1, 7)]
    # a new Shanghai day starts again at 0001 (the clock's date in Asia/Shanghai, not UTC)
    clock.at = datetime(2026, 11, 24, 0, 30, tzinfo=SHANGHAI)  # 2026-11-23 16:30 UTC
    assert ok(create(client), 201)["reference"] == "HO20261124-0001"
    assert ok(create(client), 201)["reference"] == "HO20261124-0002"


def test_a_live_case_is_returned_instead_of_a_duplicate(app, client, clock):
    c = conv("sms")
    first = ok(create(client, conversation=c, reason="distress"), 201)
    before, audit_from = counts(app), last_audit_id(app)
    clock.advance(minutes=1)
    again = ok(create(client, conversation=c, reason="request_human", summary="又来了"), 200)
    assert again == {**first}  # same case, same reference, reason and summary unchanged; still first in line
    assert counts(app) == before and audit_since(app, audit_from) == []

    # still the same case once claimed: no queue position, no wait
    ok(post(client, f"{BASE}/{first['id']}/claim", {"staff": "alice"}))
    claimed = ok(create(client, conversation=c), 200)
    assert (claimed["id"], claimed["status"], claimed["position"], claimed["wait_minutes"]) == (
        first["id"], "claimed", 0, 0)

    # once closed, the conversation may open a new case
    ok(post(client, f"{BASE}/{first['id']}/close", {"by": "alice"}))
    fresh = ok(create(client, conversation=c), 201)
    assert fresh["id"] != first["id"] and fresh["reference"] == "HO20261123-0002"
    assert counts(app)["handoff_cases"] == before["handoff_cases"] + 1


def test_the_database_refuses_a_second_live_case_for_a_conversation(app, clock):
    """Two workers racing past the duplicate check cannot both insert (unique active_conversation)."""
    c = conv()

    def case(ref: str) -> HandoffCase:
        return HandoffCase(reference=ref, conversation=c, active_conversation=c, channel=Channel.wechat,
                           reason=HandoffReason.request_human, priority=3, summary="s", status=HandoffStatus.open,
                           created_at=T0)

    with app.state.sessionmaker() as db:
        db.add(case("HO20261123-0901"))
        db.commit()
        db.add(case("HO20261123-0902"))
        with pytest.raises(IntegrityError):
            db.commit()


def test_unknown_customer_is_404_and_nothing_is_written(app, client, clock):
    before = counts(app)
    assert_error(create(client, customer_id=999999), 404, "not_found")
    assert counts(app) == before


@pytest.mark.parametrize("bad", [
    {"reason": "angry"},
    {"channel": "email"},
    {"channel": "sms"},  # the conversation is a wechat one
    {"conversation": "wechat:"},
    {"conversation": "wx"},
    {"summary": ""},
    {"summary": "长" * 2001},
    {"customer_id": 0},
    {"priority": 1},  # the caller does not choose the priority
    {"summary": None},
])
def test_bad_input_is_422_in_both_languages_and_writes_nothing(app, client, clock, bad):
    data = {**body(conversation="wechat:oBadInput0001"), **bad}
    before = counts(app)
    err = assert_error(post(client, BASE, data), 422, "invalid_input")
    assert err["message_en"] == "Invalid input"
    assert counts(app) == before


def test_missing_fields_are_422(app, client, clock):
    before = counts(app)
    for missing in ("conversation", "channel", "reason", "summary"):
        data = body()
        del data[missing]
        err = assert_error(post(client, BASE, data), 422, "invalid_input")
        assert missing in [f["field"] for f in err["fields"]]
    assert counts(app) == before


# --------------------------------------------------------------------------- masking

SUMMARY = "客户手机13812345678，身份证110105198503011234，还款卡6222021234567890123，想协商分期，逾期金额5000元"
MASKED = "客户手机138****5678，身份证****1234，还款卡****0123，想协商分期，逾期金额5000元"


@pytest.mark.parametrize("text, expected", [
    ("手机13812345678", "手机138****5678"),
    ("+8613812345678", "138****5678"),
    ("打+86 138 1234 5678找我", "打138****5678找我"),
    ("138-1234-5678", "138****5678"),
    ("１３８１２３４５６７８", "138****5678"),  # full-width digits from a Chinese IME
    ("身份证110105198503011234。", "身份证****1234。"),
    ("11010519850301123x", "****123X"),
    ("110105 19850301 123X", "****123X"),
    ("110105850301123", "****1123"),  # 15-digit first-generation ID
    ("卡号6222021234567890123", "卡号****0123"),
    ("6222021234567890", "****7890"),
    ("6222 0212 3456 7890", "****7890"),
    (SUMMARY, MASKED),
    ("欠款5000元，2026-11-23到期，借据LNT00000123，验证码123456", "欠款5000元，2026-11-23到期，借据LNT00000123，验证码123456"),
])
def test_mask_numbers(text, expected):
    assert svc.mask_numbers(text) == expected


def test_summary_is_masked_before_it_is_stored_or_shown(app, client, clock):
    raw = ("13812345678", "110105198503011234", "6222021234567890123")
    c = "sms:+8613812345678"
    audit_from = last_audit_id(app)
    created = create(client, conversation=c, reason="plan_review", summary=SUMMARY)
    assert ok(created, 201)["summary"] == MASKED
    assert created.json()["conversation_masked"] == "sms:138****5678"
    case_id = created.json()["id"]
    responses = [created, client.get(f"{BASE}/queue", headers=REPORTS),
                 client.get(f"{BASE}/by-conversation/{c}", headers=HEADERS)]
    for resp in responses:
        assert resp.status_code == 200 or resp.status_code == 201
        assert not any(n in resp.text for n in raw), resp.text
    assert stored(app, case_id).summary == MASKED
    for *_, detail in audit_since(app, audit_from):
        assert not any(n in str(detail) for n in raw)


def test_notes_and_csat_comments_are_masked_too(app, client, clock):
    case = claimed_case(client, clock)
    note = ok(post(client, f"{BASE}/{case['id']}/notes",
                   {"author": "alice", "text": "客户新号码13912345678，核对身份证110105198503011234"}), 201)
    assert note["text"] == "客户新号码139****5678，核对身份证****1234"
    ok(post(client, f"{BASE}/{case['id']}/close", {"by": "alice"}))
    rated = ok(post(client, f"{BASE}/{case['id']}/csat", {"score": 4, "comment": "有事打13812345678"}))
    assert rated["csat_comment"] == "有事打138****5678"
    with app.state.sessionmaker() as db:
        assert db.get(HandoffNote, note["id"]).text == "客户新号码139****5678，核对身份证****1234"
        assert db.get(HandoffCase, case["id"]).csat_comment == "有事打138****5678"


# --------------------------------------------------------------------------- the queue

def test_queue_orders_by_priority_then_waiting_time(app, client, clock, book):
    cust = book.customer("王小明")
    made = {}
    for name, reason, kw in [("A", "request_human", {"customer_id": cust.id}), ("B", "distress", {}),
                             ("C", "repeated_fallback", {}), ("D", "complaint_high", {}), ("E", "vip_plan", {})]:
        made[name] = ok(create(client, reason=reason, **kw), 201)
        clock.advance(minutes=1)
    # queue positions when each was opened
    assert [made[n]["position"] for n in "ABCDE"] == [1, 1, 3, 2, 3]
    assert [made[n]["wait_minutes"] for n in "ABCDE"] == [3, 3, 9, 6, 9]

    closed = ok(create(client, reason="distress"), 201)
    ok(post(client, f"{BASE}/{closed['id']}/close", {"by": "bob"}))
    # at 10:05 alice takes D; bob takes B and answers it, four minutes after it opened
    ok(post(client, f"{BASE}/{made['D']['id']}/claim", {"staff": "alice"}))
    ok(post(client, f"{BASE}/{made['B']['id']}/claim", {"staff": "bob"}))
    ok(post(client, f"{BASE}/{made['B']['id']}/first-response"))

    queue = ok(client.get(f"{BASE}/queue", headers=REPORTS))
    by_id = {v["id"]: k for k, v in made.items()}
    assert [by_id[item["id"]] for item in queue] == ["B", "D", "E", "A", "C"]
    assert [(item["status"], item["assigned_to"]) for item in queue] == [
        ("claimed", "bob"), ("claimed", "alice"), ("open", None), ("open", None), ("open", None)]
    assert [item["waiting_seconds"] for item in queue] == [240, 120, 60, 300, 180]
    # target 3 minutes: A waited 300 s, C exactly 180 s (not past it); B's reply stopped its clock
    assert [item["overdue"] for item in queue] == [False, False, False, True, False]
    clock.advance(seconds=1)
    queue = ok(client.get(f"{BASE}/queue", headers=REPORTS))
    assert [item["waiting_seconds"] for item in queue] == [240, 121, 61, 301, 181]
    assert [item["overdue"] for item in queue] == [False, False, False, True, True]
    assert queue[3]["customer"] == {"id": cust.id, "name_masked": "王**",
                                    "phone_masked": cust.phone[:3] + "****" + cust.phone[-4:]}
    assert [item["customer"] for item in queue if item["id"] != made["A"]["id"]] == [None] * 4
    assert cust.phone not in str(queue) and cust.name not in str(queue)


def test_overdue_counts_staffed_time_only(client, clock):
    daytime = ok(create(client), 201)  # 10:00
    clock.at = datetime(2026, 11, 23, 20, 59, tzinfo=SHANGHAI)
    evening = ok(create(client), 201)

    def flags() -> dict[int, tuple[int, bool]]:
        return {i["id"]: (i["waiting_seconds"], i["overdue"]) for i in ok(client.get(f"{BASE}/queue", headers=REPORTS))}

    clock.at = datetime(2026, 11, 23, 21, 30, tzinfo=SHANGHAI)
    assert flags()[evening["id"]] == (1860, False)  # 31 minutes, of which 1 staffed
    clock.at = datetime(2026, 11, 24, 9, 2, 0, tzinfo=SHANGHAI)
    assert flags()[evening["id"]] == (12 * 3600 + 180, False)  # 60 + 120 staffed seconds: at the target
    clock.at = datetime(2026, 11, 24, 9, 2, 1, tzinfo=SHANGHAI)
    assert flags()[evening["id"]] == (12 * 3600 + 181, True)
    assert flags()[daytime["id"]][1] is True

    # the first reply stops the clock and clears the flag
    ok(post(client, f"{BASE}/{daytime['id']}/claim", {"staff": "alice"}))
    clock.advance(minutes=10)
    assert flags()[daytime["id"]] == (int((clock.at - T0).total_seconds()), True)
    ok(post(client, f"{BASE}/{daytime['id']}/first-response"))
    answered_after = int((clock.at - T0).total_seconds())
    clock.advance(hours=1)
    assert flags()[daytime["id"]] == (answered_after, False)


def test_by_conversation_finds_only_the_live_case(client, clock):
    c = conv()
    case = ok(create(client, conversation=c), 201)
    got = ok(client.get(f"{BASE}/by-conversation/{c}", headers=HEADERS))
    assert got == {k: v for k, v in case.items() if k not in ("position", "wait_minutes", "staffed", "next_staffed_at")}
    assert_error(client.get(f"{BASE}/by-conversation/{conv()}", headers=HEADERS), 404, "not_found")
    ok(post(client, f"{BASE}/{case['id']}/close", {"by": "alice"}))
    assert_error(client.get(f"{BASE}/by-conversation/{c}", headers=HEADERS), 404, "not_found")


# --------------------------------------------------------------------------- wait estimate and staffed hours

def _answered(app, rows: list[tuple[datetime, datetime]]) -> None:
    with app.state.sessionmaker() as db:
        for n, (created, answered) in enumerate(rows, start=1):
            c = conv()
            db.add(HandoffCase(reference=f"HO{created:%Y%m%d}-{n:04d}", conversation=c, channel=Channel.wechat,
                               reason=HandoffReason.request_human, priority=3, summary="历史",
                               status=HandoffStatus.closed, assigned_to="alice", created_at=created, claimed_at=created, first_response_at=answered,
                               closed_at=answered + timedelta(minutes=20)))
        db.commit()


def test_wait_estimate_is_the_median_of_the_last_20_first_responses_times_position(app, client, clock):
    day = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)
    quick = [30, 60, 90, 120, 150, 200, 210, 220, 240]
    slow = [300, 320, 360, 400, 450, 500, 600, 700, 800, 900]
    history = [(day + timedelta(minutes=15 * i), day + timedelta(minutes=15 * i, seconds=s))
               for i, s in enumerate(quick + slow)]
    # opened at 20:58, answered at 09:01 the next morning: 180 staffed seconds, not 12 hours
    history.append((datetime(2026, 11, 21, 20, 58, tzinfo=SHANGHAI), datetime(2026, 11, 22, 9, 1, tzinfo=SHANGHAI)))
    # the 21st most recent answer (5 s) is outside the window of 20
    history.append((datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI), datetime(2026, 11, 20, 10, 0, 5, tzinfo=SHANGHAI)))
    _answered(app, history)
    # sorted staffed times: ... 220, 240 | 300, 320 ... -> median (240 + 300) / 2 = 270 s = 4.5 minutes
    with app.state.sessionmaker() as db:
        assert svc.median_first_response_seconds(db, app.state.rules) == 270

    waits = []
    for reason in ("request_human", "request_human", "request_human", "distress"):
        got = ok(create(client, reason=reason), 201)
        waits.append((got["position"], got["wait_minutes"]))
        clock.advance(seconds=10)
    assert waits == [(1, 5), (2, 9), (3, 14), (1, 5)]  # 4.5, 9, 13.5 -> rounded up


def test_wait_estimate_without_history_is_3_minutes_per_position(client, clock):
    got = [ok(create(client), 201) for _ in range(3)]
    assert [(g["position"], g["wait_minutes"]) for g in got] == [(1, 3), (2, 6), (3, 9)]


def test_outside_staffed_hours_the_customer_learns_when_staff_are_back(client, clock):
    clock.at = datetime(2026, 11, 23, 22, 30, tzinfo=SHANGHAI)
    night = ok(create(client), 201)
    assert (night["staffed"], night["next_staffed_at"], night["position"]) == (False, "2026-11-24T09:00:00+08:00", 1)
    assert night["wait_minutes"] == 630 + 3  # until 09:00, then one median first response

    clock.at = datetime(2026, 11, 24, 7, 15, tzinfo=SHANGHAI)
    early = ok(create(client), 201)
    assert (early["staffed"], early["next_staffed_at"], early["position"], early["wait_minutes"]) == (
        False, "2026-11-24T09:00:00+08:00", 2, 105 + 6)


@pytest.mark.parametrize("at, staffed, next_at", [
    ((2026, 11, 23, 8, 59, 59), False, "2026-11-23T09:00:00+08:00"),
    ((2026, 11, 23, 9, 0, 0), True, None),
    ((2026, 11, 23, 20, 59, 59), True, None),
    ((2026, 11, 23, 21, 0, 0), False, "2026-11-24T09:00:00+08:00"),
    ((2026, 11, 29, 23, 59, 0), False, "2026-11-30T09:00:00+08:00"),  # Sunday night: every day is staffed
])
def test_staffed_hours_boundaries(client, clock, at, staffed, next_at):
    clock.at = datetime(*at, tzinfo=SHANGHAI)
    got = ok(create(client), 201)
    assert (got["staffed"], got["next_staffed_at"]) == (staffed, next_at)


def test_staffed_hours_follow_the_configured_days():
    rules = BusinessRules.load(ROOT / "config" / "business.yml")
    weekdays = rules.model_copy(update={"handoff": HandoffRules(staffed_hours={"start": "08:30", "end": "18:00",
                                                                               "days": [1, 2, 3, 4, 5]})})
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=SHANGHAI)
    assert not svc.is_staffed(weekdays, friday_evening)
    assert svc.next_staffed_at(weekdays, friday_evening) == datetime(2026, 11, 30, 8, 30, tzinfo=SHANGHAI)
    # Friday 17:59 to Monday 08:31: one staffed minute on each side
    assert svc.staffed_seconds(weekdays, friday_evening - timedelta(minutes=1),
                               datetime(2026, 11, 30, 8, 31, tzinfo=SHANGHAI)) == 120
    # an instant given in UTC is judged on Shanghai time: 01:59 UTC is 09:59 in Shanghai
    assert svc.is_staffed(weekdays, datetime(2026, 11, 27, 1, 59, tzinfo=timezone.utc))
    assert not svc.is_staffed(weekdays, datetime(2026, 11, 27, 0, 29, tzinfo=timezone.utc))


# --------------------------------------------------------------------------- claim and reassign

def test_claim_then_409_for_someone_else(app, client, clock):
    case = ok(create(client), 201)
    audit_from = last_audit_id(app)
    clock.advance(seconds=30)
    got = ok(post(client, f"{BASE}/{case['id']}/claim", {"staff": "alice"}))
    assert (got["status"], got["assigned_to"], got["claimed_at"]) == (
        "claimed", "alice", iso(T0 + timedelta(seconds=30)))
    assert audit_since(app, audit_from) == [("alice", "handoff.claimed", "handoff_case", str(case["id"]),
                                             {"via": "console"})]

    # the same staff member again: nothing changes, nothing is logged
    clock.advance(seconds=30)
    assert ok(post(client, f"{BASE}/{case['id']}/claim", {"staff": "alice"})) == got
    before = counts(app)
    err = assert_error(post(client, f"{BASE}/{case['id']}/claim", {"staff": "bob"}), 409, "already_claimed")
    assert "alice" in err["message_en"]
    assert counts(app) == before
    row = stored(app, case["id"])
    assert (row.assigned_to, local(row.claimed_at)) == ("alice", T0 + timedelta(seconds=30))
    assert_error(post(client, f"{BASE}/999999/claim", {"staff": "bob"}), 404, "not_found")
    assert counts(app) == before


def test_only_a_supervisor_reassigns(app, client, clock):
    case = claimed_case(client, clock, "alice")
    before, audit_from = counts(app), last_audit_id(app)
    path = f"{BASE}/{case['id']}/reassign"
    assert_error(post(client, path, {"staff": "bob", "by": "carol", "role": "agent"}), 403, "forbidden")
    assert counts(app) == before and stored(app, case["id"]).assigned_to == "alice"

    clock.advance(minutes=2)
    got = ok(post(client, path, {"staff": "bob", "by": "carol", "role": "supervisor"}))
    assert (got["status"], got["assigned_to"], got["claimed_at"]) == ("claimed", "bob", case["claimed_at"])
    assert audit_since(app, audit_from) == [("carol", "handoff.reassigned", "handoff_case", str(case["id"]),
                                             {"from": "alice", "to": "bob", "role": "supervisor", "via": "console"})]
    # now bob has it: alice's claim is refused
    assert_error(post(client, f"{BASE}/{case['id']}/claim", {"staff": "alice"}), 409, "already_claimed")

    # a supervisor may also assign a case nobody has claimed yet
    waiting = ok(create(client), 201)
    assigned = ok(post(client, f"{BASE}/{waiting['id']}/reassign",
                       {"staff": "dave", "by": "carol", "role": "supervisor"}))
    assert (assigned["status"], assigned["assigned_to"], assigned["claimed_at"]) == ("claimed", "dave", iso(clock.at))

    # but not a closed one
    ok(post(client, f"{BASE}/{waiting['id']}/close", {"by": "dave"}))
    before = counts(app)
    assert_error(post(client, f"{BASE}/{waiting['id']}/reassign",
                      {"staff": "bob", "by": "carol", "role": "supervisor"}), 409, "case_closed")
    assert counts(app) == before


# --------------------------------------------------------------------------- first response, notes, close

def test_first_response_is_recorded_once(app, client, clock):
    case = ok(create(client), 201)
    path = f"{BASE}/{case['id']}/first-response"
    before = counts(app)
    assert_error(post(client, path), 409, "not_claimed")
    assert counts(app) == before and stored(app, case["id"]).first_response_at is None

    ok(post(client, f"{BASE}/{case['id']}/claim", {"staff": "alice"}))
    clock.advance(seconds=90)
    audit_from = last_audit_id(app)
    first = ok(post(client, path))
    assert first["first_response_at"] == iso(T0 + timedelta(seconds=90))
    clock.advance(minutes=5)
    assert ok(post(client, path))["first_response_at"] == iso(T0 + timedelta(seconds=90))
    assert local(stored(app, case["id"]).first_response_at) == T0 + timedelta(seconds=90)
    # the console's reply records it (and each reply is logged)
    replied = ("alice", "handoff.replied", "handoff_case", str(case["id"]), {"chars": 9})
    assert audit_since(app, audit_from) == [("alice", "handoff.first_response", "handoff_case", str(case["id"]),
                                             {"via": "console"}), replied, replied]


def test_notes_are_kept_per_case_and_logged(app, client, clock):
    case = claimed_case(client, clock)
    audit_from = last_audit_id(app)
    clock.advance(minutes=1)
    note = ok(post(client, f"{BASE}/{case['id']}/notes", {"author": "alice", "text": "客户情绪激动，已安抚"}), 201)
    note_id = note.pop("id")
    assert note == {"case_id": case["id"], "author": "alice", "text": "客户情绪激动，已安抚",
                    "created_at": iso(T0 + timedelta(minutes=1))}
    assert audit_since(app, audit_from) == [("alice", "handoff.note_added", "handoff_case", str(case["id"]),
                                             {"note_id": note_id, "via": "console"})]
    before = counts(app)
    assert_error(post(client, f"{BASE}/{case['id']}/notes", {"author": "alice", "text": ""}), 422, "invalid_input")
    assert_error(post(client, f"{BASE}/999999/notes", {"author": "alice", "text": "x"}), 404, "not_found")
    assert counts(app) == before
    # notes are for staff: nothing the bot reads carries them
    again = create(client, conversation=stored(app, case["id"]).conversation)
    for resp in (client.get(f"{BASE}/queue", headers=REPORTS), again):
        assert "已安抚" not in resp.text


def test_close_ends_the_case_once(app, client, clock):
    case = claimed_case(client, clock)
    clock.advance(minutes=7)
    audit_from = last_audit_id(app)
    got = ok(post(client, f"{BASE}/{case['id']}/close", {"by": "alice"}))
    assert (got["status"], got["closed_at"], got["assigned_to"]) == ("closed", iso(T0 + timedelta(minutes=7)), "alice")
    assert audit_since(app, audit_from) == [
        ("alice", "handoff.closed", "handoff_case", str(case["id"]), {"via": "console"})]
    row = stored(app, case["id"])
    assert (row.status, row.active_conversation) == (HandoffStatus.closed, None)
    assert ok(client.get(f"{BASE}/queue", headers=REPORTS)) == []

    before = counts(app)
    assert_error(post(client, f"{BASE}/{case['id']}/close", {"by": "alice"}), 409, "case_closed")
    assert_error(post(client, f"{BASE}/{case['id']}/claim", {"staff": "bob"}), 409, "case_closed")
    assert_error(post(client, f"{BASE}/{case['id']}/first-response"), 409, "case_closed")
    assert counts(app) == before
    assert local(stored(app, case["id"]).closed_at) == T0 + timedelta(minutes=7)


# --------------------------------------------------------------------------- CSAT

def test_csat_only_on_closed_cases_in_range_and_once(app, client, clock):
    case = claimed_case(client, clock)
    path = f"{BASE}/{case['id']}/csat"
    before = counts(app)
    assert_error(post(client, path, {"score": 5}), 409, "not_closed")
    assert counts(app) == before

    ok(post(client, f"{BASE}/{case['id']}/close", {"by": "alice"}))
    before = counts(app)
    for bad in ({"score": 0}, {"score": 6}, {"score": -1}, {"score": "5"}, {"score": 4.5}, {"score": True}, {},
                {"score": 5, "comment": "长" * 501}, {"score": 5, "extra": 1}):
        assert_error(post(client, path, bad), 422, "invalid_input")
    assert counts(app) == before and stored(app, case["id"]).csat is None

    audit_from = last_audit_id(app)
    got = ok(post(client, path, {"score": 5, "comment": "很耐心"}))
    assert (got["csat"], got["csat_comment"]) == (5, "很耐心")
    assert audit_since(app, audit_from) == [("actions", "handoff.rated", "handoff_case", str(case["id"]), {"score": 5})]

    before = counts(app)
    assert_error(post(client, path, {"score": 1}), 409, "already_rated")
    assert counts(app) == before
    assert (stored(app, case["id"]).csat, stored(app, case["id"]).csat_comment) == (5, "很耐心")


def test_csat_score_bounds_are_accepted(client, clock):
    for score in (1, 5):
        case = claimed_case(client, clock)
        ok(post(client, f"{BASE}/{case['id']}/close", {"by": "alice"}))
        got = ok(post(client, f"{BASE}/{case['id']}/csat", {"score": score}))
        assert (got["csat"], got["csat_comment"]) == (score, None)


def test_every_handoff_route_needs_the_api_key(client, clock):
    case = ok(create(client), 201)
    for method, path in [("POST", BASE), ("GET", f"{BASE}/queue"), ("GET", f"{BASE}/by-conversation/wechat:x"),
                         ("POST", f"{BASE}/{case['id']}/csat")]:
        resp = client.request(method, path, headers={"X-API-Key": "wrong"})
        assert resp.status_code == 401, (method, path)


def test_no_api_key_claims_reassigns_notes_or_closes_a_case(app, client, clock):
    """Staff actions are the console's (a signed-in staff member), never a service caller's with a name
    in the body: the routes that took one are gone, whatever the key."""
    case = ok(create(client), 201)
    before = counts(app)
    for action, data in (("claim", {"staff": "alice"}), ("reassign", {"staff": "bob", "by": "sup", "role": "supervisor"}),
                         ("first-response", None), ("notes", {"author": "alice", "text": "x"}),
                         ("close", {"by": "alice"})):
        for headers in (HEADERS, REPORTS):
            resp = client.post(f"{BASE}/{case['id']}/{action}", headers=headers, json=data)
            assert resp.status_code == 404, (action, resp.status_code)
    assert counts(app) == before and stored(app, case["id"]).status == HandoffStatus.open
