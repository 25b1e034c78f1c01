"""The staff dashboard's numbers (backend.services.dashboard), on SQLite and PostgreSQL.

Each database test starts from empty conversation-session, handoff, promise and complaint tables and inserts
exact rows with chosen timestamps. "Now" is Monday 2026-11-23 15:00 Asia/Shanghai, so the default
14-day period is 2026-11-10 00:00 .. 2026-11-24 00:00 (exclusive) Shanghai time. Times around
midnight Shanghai fall on the previous UTC date, so PostgreSQL (which returns UTC-aware values)
checks the bucketing by business date. Service-quality rules from config/business.yml: weights
0.3 / 0.4 / 0.2 / 0.1; response under 5 min -> 5, up to 10 min -> 4, else 3; resolution 100% -> 5,
>= 80% -> 4, >= 60% -> 3, else 2; complaints <= 1% -> 5, <= 3% -> 4, <= 5% -> 3, else 2. The complaint
rate counts complaint tickets received in the period (not handoff cases with reason complaint_high);
a complaint's decision is due 15 days after receipt.
"""
from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, update

from backend.core.clock import SHANGHAI
from backend.core.config import ROOT, BusinessRules, ScoreBand, ServiceQualityRules
from backend.models import (
    Channel, ComplaintCategory, ComplaintEvent, ComplaintPriority, ComplaintStatus, ComplaintTicket,
    ConversationSession, HandoffCase, HandoffNote, HandoffReason, HandoffStatus, PromiseStatus, PromiseToPay,
)
from backend.services import dashboard as svc

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=SHANGHAI)
REASONS = [r.value for r in HandoffReason]
_ref = itertools.count(1)


def at(day: int, hh: int = 12, mm: int = 0, ss: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hh, mm, ss, tzinfo=SHANGHAI)


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def db(app):
    """A session on an empty dashboard: no sessions, handoff cases, promises or complaint tickets."""
    with app.state.sessionmaker() as s:
        for model in (HandoffNote, HandoffCase, ConversationSession, PromiseToPay, ComplaintEvent):
            s.execute(delete(model))
        s.execute(update(ComplaintTicket).values(linked_to_id=None))
        s.execute(delete(ComplaintTicket))
        s.commit()
        yield s


@pytest.fixture
def rules(app) -> BusinessRules:
    return app.state.rules


def sessions(db, *rows: tuple[str, datetime]) -> None:
    for channel, started in rows:
        db.add(ConversationSession(conversation=f"{channel}:s{next(_ref)}", channel=Channel(channel),
                                   started_at=started))
    db.commit()


def case(db, created: datetime, *, conversation: str | None = None, reason: str = "request_human",
         status: str = "closed", first: float | None = None, closed: datetime | None = None,
         csat: int | None = None) -> HandoffCase:
    """A handoff case; ``first`` is the first-response time in seconds after created."""
    n = next(_ref)
    conversation = conversation or f"web:c{n}"
    status = HandoffStatus(status)
    if status == HandoffStatus.closed and closed is None:
        closed = created + timedelta(minutes=30)
    c = HandoffCase(
        reference=f"HO-T{n:06d}", conversation=conversation,
        active_conversation=None if status == HandoffStatus.closed else conversation,
        channel=Channel(conversation.partition(":")[0]), reason=HandoffReason(reason), priority=3,
        summary="测试", status=status, assigned_to=None if status == HandoffStatus.open else "alice",
        created_at=created, claimed_at=None if status == HandoffStatus.open else created,
        first_response_at=None if first is None else created + timedelta(seconds=first),
        closed_at=closed, csat=csat,
    )
    db.add(c)
    db.commit()
    return c


def promise(db, customer_id: int, loan_id: int, status: str, created: datetime) -> None:
    db.add(PromiseToPay(customer_id=customer_id, loan_id=loan_id, promised_date=date(2026, 11, 30),
                        amount=Decimal("500.00"), channel="web", status=PromiseStatus(status), created_at=created))
    db.commit()


def ticket(db, received: datetime, *, status: str = "received", due: datetime | None = None,
           resolved: datetime | None = None, closed: datetime | None = None) -> ComplaintTicket:
    """A complaint ticket received at ``received``, due 15 days later unless extended to ``due``."""
    n = next(_ref)
    t = ComplaintTicket(
        reference=f"CP-T{n:06d}", conversation=f"web:t{n}", channel=Channel.web, category=ComplaintCategory.fees,
        description="多收了服务费", status=ComplaintStatus(status), priority=ComplaintPriority.normal, distress=False,
        received_at=received, due_at=due or received + timedelta(days=15), extended=due is not None,
        resolved_at=resolved, closed_at=closed, pauses_reminders=False,
    )
    db.add(t)
    db.commit()
    return t


def run(db, rules, now: datetime = NOW, days: int = 14) -> dict:
    out = svc.dashboard(db, rules, now, days)
    assert json.loads(json.dumps(out)) == out  # JSON-ready: no dates, Decimals or int keys
    return out


def zero_day(d: str) -> dict:
    return {"date": d, "wechat": 0, "sms": 0, "web": 0, "total": 0}


# --------------------------------------------------------------------------- configuration

def test_service_quality_rules_come_from_business_yml():
    sq = BusinessRules.load(ROOT / "config" / "business.yml").service_quality
    assert sq.weights == {"response_time": 0.3, "resolution_rate": 0.4, "satisfaction": 0.2, "complaint_rate": 0.1}
    assert [(b.below, b.at_most, b.score) for b in sq.response_minutes.bands] == [(5, None, 5), (None, 10, 4)]
    assert sq.response_minutes.otherwise == 3
    assert [(b.at_least, b.score) for b in sq.resolution_rate.bands] == [(1.0, 5), (0.8, 4), (0.6, 3)]
    assert sq.resolution_rate.otherwise == 2
    assert [(b.at_most, b.score) for b in sq.complaint_rate.bands] == [(0.01, 5), (0.03, 4), (0.05, 3)]
    assert sq.complaint_rate.otherwise == 2
    assert sq == ServiceQualityRules()  # the code defaults say the same


@pytest.mark.parametrize("weights", [
    {"response_time": 0.3, "resolution_rate": 0.4, "satisfaction": 0.2, "complaint_rate": 0.2},  # 1.1
    {"response_time": 0.3, "resolution_rate": 0.4, "satisfaction": 0.2},  # one missing
    {"response_time": 0.3, "resolution_rate": 0.4, "satisfaction": 0.2, "complaint_rate": 0.1, "speed": 0.0},
    {"response_time": 0.7, "resolution_rate": 0.4, "satisfaction": 0.0, "complaint_rate": -0.1},
])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValidationError):
        ServiceQualityRules(weights=weights)


def test_weights_that_add_up_in_decimals_are_accepted():
    # 0.1 + 0.2 + 0.3 + 0.4 is 1.0000000000000002 in floats: the check is on decimals.
    ServiceQualityRules(weights={"response_time": 0.1, "resolution_rate": 0.2, "satisfaction": 0.3,
                                 "complaint_rate": 0.4})


@pytest.mark.parametrize("band", [{"score": 5}, {"score": 5, "below": 5, "at_most": 10}, {"score": 6, "below": 1}])
def test_bad_bands_are_refused(band):
    with pytest.raises(ValidationError):
        ScoreBand(**band)


# --------------------------------------------------------------------------- score bands (pure)

SQ = ServiceQualityRules()


def only(**kw) -> dict:
    base = dict(median_first_response_seconds=None, cases=0, closed=0, csat_sum=0, rated=0, complaints=0,
                conversations=0)
    return svc.quality_score(SQ, **{**base, **kw})


@pytest.mark.parametrize("seconds, score", [
    (0, 5), (299, 5), (299.5, 5), (300, 4),  # exactly 5 minutes is no longer "under 5 minutes"
    (450, 4), (600, 4), (600.5, 3), (3600, 3),  # exactly 10 minutes still scores 4
])
def test_response_time_bands(seconds, score):
    out = only(median_first_response_seconds=seconds)
    assert out["components"]["response_time"] == {"value": seconds, "score": score, "weight": 0.3,
                                                  "applied_weight": 1.0}
    assert out["score"] == score  # the only component with data carries all the weight


@pytest.mark.parametrize("closed, cases, share, score", [
    (5, 5, 1.0, 5), (99, 100, 0.99, 4), (4, 5, 0.8, 4), (79, 100, 0.79, 3),
    (3, 5, 0.6, 3), (599, 1000, 0.599, 2), (0, 3, 0.0, 2),
])
def test_resolution_rate_bands(closed, cases, share, score):
    out = only(closed=closed, cases=cases)
    assert out["components"]["resolution_rate"] == {"value": share, "score": score, "weight": 0.4,
                                                    "applied_weight": 1.0}
    assert out["score"] == score


@pytest.mark.parametrize("complaints, conversations, share, score", [
    (0, 10, 0.0, 5), (1, 100, 0.01, 5), (101, 10000, 0.0101, 4), (3, 100, 0.03, 4),
    (5, 100, 0.05, 3), (51, 1000, 0.051, 2), (1, 2, 0.5, 2),
])
def test_complaint_rate_bands(complaints, conversations, share, score):
    out = only(complaints=complaints, conversations=conversations)
    assert out["components"]["complaint_rate"] == {"value": share, "score": score, "weight": 0.1,
                                                   "applied_weight": 1.0}
    assert out["score"] == score


def test_satisfaction_is_the_csat_average_itself():
    out = only(csat_sum=9, rated=2)  # 4.5
    assert out["components"]["satisfaction"] == {"value": 4.5, "score": 4.5, "weight": 0.2, "applied_weight": 1.0}
    assert out["score"] == 4.5


def test_no_data_no_score():
    out = only()
    assert out["score"] is None
    for name, weight in SQ.weights.items():
        assert out["components"][name] == {"value": None, "score": None, "weight": weight, "applied_weight": None}


def test_renormalised_weights_and_half_up_rounding():
    # response 5 (w .3), resolution 4 (w .4), complaints 4 (w .1), no CSAT:
    # (0.3*5 + 0.4*4 + 0.1*4) / 0.8 = 3.5 / 0.8 = 4.375 exactly -> 4.38 (half up)
    out = only(median_first_response_seconds=240, closed=4, cases=5, complaints=1, conversations=50)
    assert out["score"] == 4.38
    assert {n: c["applied_weight"] for n, c in out["components"].items()} == {
        "response_time": 0.375, "resolution_rate": 0.5, "satisfaction": None, "complaint_rate": 0.125}


def test_percentile_inclusive():
    assert svc.percentile_inclusive([900, 60, 300, 120, 600, 240, 180], 0.9) == 720  # 600 + 0.4 * 300
    assert svc.percentile_inclusive([60, 120], 0.9) == 114  # 60 + 0.9 * 60
    assert svc.percentile_inclusive([95], 0.9) == 95
    assert svc.percentile_inclusive([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.9) == 10  # h = 9 exactly


# --------------------------------------------------------------------------- the dashboard on a database

def test_empty_period(db, rules):
    out = run(db, rules)
    assert out["period"] == {"days": 14, "start": "2026-11-10", "end": "2026-11-23", "timezone": "Asia/Shanghai"}
    assert out["conversations_per_day"] == [zero_day((date(2026, 11, 10) + timedelta(days=i)).isoformat())
                                            for i in range(14)]
    assert out["containment"] == {"conversations": 0, "handed_off": 0, "contained_share": None}
    assert out["handoff_reasons"] == {r: 0 for r in REASONS}
    assert out["first_response"] == {"answered": 0, "median_seconds": None, "p90_seconds": None}
    assert out["csat"] == {"rated": 0, "average": None, "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}}
    assert out["reminders"] == {"sent": 0, "answered": 0, "failed": 0, "available": True}
    assert out["promises"] == {"open": 0, "kept": 0, "broken": 0, "cancelled": 0, "kept_share": None}
    assert out["complaints"] == {
        "received": 0, "decision_days": 15, "open": 0, "overdue": 0,
        "due_buckets": {"overdue": 0, "within_3_days": 0, "within_7_days": 0, "within_15_days": 0, "later": 0},
        "resolved": 0, "resolved_within_deadline": 0, "resolved_within_deadline_share": None}
    assert out["service_quality"]["score"] is None
    assert list(out) == ["period", "conversations_per_day", "containment", "handoff_reasons", "first_response",
                         "csat", "reminders", "promises", "complaints", "service_quality"]


def test_conversations_per_day_by_channel_and_business_date(db, rules):
    sessions(
        db,
        ("wechat", at(9, 23, 59, 59)),  # the day before the period
        ("wechat", at(10, 0, 0, 0)),  # the period's first instant (2026-11-09 16:00 UTC)
        ("sms", at(10, 0, 30)),
        ("web", at(15, 8, 0)), ("web", at(15, 23, 30)), ("wechat", at(15, 12, 0)),
        ("sms", at(23, 0, 0)), ("web", at(23, 14, 59, 59)),
        ("sms", at(24, 0, 0)),  # tomorrow
    )
    out = run(db, rules)
    days = {row["date"]: row for row in out["conversations_per_day"]}
    assert [row["date"] for row in out["conversations_per_day"]] == \
        [(date(2026, 11, 10) + timedelta(days=i)).isoformat() for i in range(14)]
    assert days["2026-11-10"] == {"date": "2026-11-10", "wechat": 1, "sms": 1, "web": 0, "total": 2}
    assert days["2026-11-15"] == {"date": "2026-11-15", "wechat": 1, "sms": 0, "web": 2, "total": 3}
    assert days["2026-11-23"] == {"date": "2026-11-23", "wechat": 0, "sms": 1, "web": 1, "total": 2}
    for d, row in days.items():
        if d not in ("2026-11-10", "2026-11-15", "2026-11-23"):
            assert row == zero_day(d)
    assert out["containment"] == {"conversations": 7, "handed_off": 0, "contained_share": 1.0}

    # "now" in UTC is still Monday 23 November in Shanghai (01:00): the same period
    assert run(db, rules, now=datetime(2026, 11, 22, 17, 0, tzinfo=timezone.utc)) == out
    # a 1-day period is today only; a 7-day one starts on the 17th
    assert run(db, rules, days=1)["conversations_per_day"] == [days["2026-11-23"]]
    week = run(db, rules, days=7)
    assert week["period"]["start"] == "2026-11-17" and week["containment"]["conversations"] == 2
    with pytest.raises(ValueError):
        svc.dashboard(db, rules, NOW, 0)


def test_containment_and_handoff_reasons(db, rules):
    sessions(db, ("web", at(20)), ("wechat", at(21)), ("sms", at(22)))
    case(db, at(20, 10), conversation="web:A", reason="request_human", status="closed")
    case(db, at(20, 11), conversation="web:A", reason="repeated_fallback", status="open")  # same conversation
    case(db, at(22, 9), conversation="sms:B", reason="complaint_high", status="claimed")
    case(db, at(9, 23, 0), conversation="wechat:C", reason="distress")  # before the period
    out = run(db, rules)
    # 1 - 2/3 = 0.33333 -> 0.3333
    assert out["containment"] == {"conversations": 3, "handed_off": 2, "contained_share": 0.3333}
    assert out["handoff_reasons"] == {"request_human": 1, "repeated_fallback": 1, "complaint_high": 1,
                                      "distress": 0, "vip_plan": 0, "plan_review": 0}
    # more handoffs than sessions (sessions logged before the period): clamped, never negative
    case(db, at(22, 10), conversation="web:D", reason="vip_plan", status="open")
    case(db, at(22, 11), conversation="web:E", reason="plan_review", status="open")
    out = run(db, rules)
    assert out["containment"] == {"conversations": 3, "handed_off": 4, "contained_share": 0.0}
    assert out["handoff_reasons"]["vip_plan"] == 1 and out["handoff_reasons"]["plan_review"] == 1


def test_first_response_median_and_p90(db, rules):
    for day, seconds in [(10, 60), (11, 120), (12, 180), (13, 240), (14, 600), (15, 900)]:
        case(db, at(day, 10), first=seconds)
    # 23:58 -> 00:03 the next day: 300 wall-clock seconds (0 staffed seconds; staffed time is not used)
    case(db, at(22, 23, 58), first=300)
    case(db, at(16, 10), status="open")  # not answered yet
    case(db, at(9, 10), first=5)  # answered, but created before the period
    out = run(db, rules)
    # sorted 60 120 180 240 300 600 900: median 240; p90 at 0.9 * 6 = 5.4 -> 600 + 0.4 * (900 - 600) = 720
    assert out["first_response"] == {"answered": 7, "median_seconds": 240.0, "p90_seconds": 720.0}


def test_first_response_with_one_and_two_cases(db, rules):
    case(db, at(20, 10), first=95)
    assert run(db, rules)["first_response"] == {"answered": 1, "median_seconds": 95.0, "p90_seconds": 95.0}
    case(db, at(21, 10), first=35.5)
    # median (35.5 + 95) / 2 = 65.25 -> 65.3; p90 35.5 + 0.9 * 59.5 = 89.05 -> 89.1 (1 decimal, half up)
    assert run(db, rules)["first_response"] == {"answered": 2, "median_seconds": 65.3, "p90_seconds": 89.1}


def test_csat_of_cases_closed_in_the_period(db, rules):
    for day, score in [(12, 5), (13, 5), (14, 4), (15, 3), (16, 1)]:
        case(db, at(day, 10), csat=score)
    case(db, at(5, 10), closed=at(10, 0, 0), csat=5)  # created before, closed at the period's first instant
    case(db, at(9, 10), closed=at(9, 23, 59), csat=1)  # closed before the period
    case(db, at(17, 10))  # closed, not rated
    case(db, at(18, 10), status="claimed")
    out = run(db, rules)
    # (5 + 5 + 4 + 3 + 1 + 5) / 6 = 23 / 6 = 3.8333 -> 3.83
    assert out["csat"] == {"rated": 6, "average": 3.83, "distribution": {"1": 1, "2": 0, "3": 1, "4": 1, "5": 3}}


def test_promises_by_status_and_kept_share(db, rules, book):
    cust = book.customer()
    loan = book.loan(cust.id, "6000", "0.12", 6, date(2026, 9, 13), product="xinyongdai", paid=1)
    for status, day in [("open", 20), ("open", 23), ("kept", 10), ("kept", 11), ("kept", 12),
                        ("broken", 13), ("cancelled", 14)]:
        promise(db, cust.id, loan.id, status, at(day, 0, 30))  # 00:30 Shanghai is the previous day in UTC
    promise(db, cust.id, loan.id, "kept", at(9, 23, 30))  # before the period
    promise(db, cust.id, loan.id, "broken", at(24, 0, 0))  # tomorrow
    out = run(db, rules)
    assert out["promises"] == {"open": 2, "kept": 3, "broken": 1, "cancelled": 1, "kept_share": 0.75}


def test_service_quality_hand_computed(db, rules):
    # 50 conversations; 5 handoff cases created in the period, 4 of them closed; one complaint_high
    # (a handoff, not a complaint ticket: not counted); 2 complaint tickets received in the period.
    sessions(db, *[(("wechat", "sms", "web")[i % 3], at(10 + i % 14, 9, i)) for i in range(50)])
    case(db, at(20, 10), first=180, csat=4)
    case(db, at(20, 11), first=240, csat=4)
    case(db, at(21, 10), first=420, csat=3, reason="complaint_high")
    case(db, at(21, 11))  # closed, never answered by a person, not rated
    case(db, at(22, 10), status="claimed")
    ticket(db, at(10, 0, 0))  # the period's first instant
    ticket(db, at(21, 9), status="resolved", resolved=at(22, 9))
    ticket(db, at(9, 23, 59, 59))  # received before the period
    out = run(db, rules)
    assert out["containment"] == {"conversations": 50, "handed_off": 5, "contained_share": 0.9}
    assert out["first_response"] == {"answered": 3, "median_seconds": 240.0, "p90_seconds": 384.0}
    assert out["csat"]["average"] == 3.67
    # response: median 240 s = 4 min < 5           -> 5
    # resolution: 4 closed / 5 cases = 80%           -> 4
    # satisfaction: (4 + 4 + 3) / 3 = 11/3           -> 3.6667
    # complaints: 2 tickets / 50 conversations = 4% (<= 5%) -> 3
    #   (counting the complaint_high handoff too would be 3 / 50 = 6% -> 2)
    # 0.3 * 5 + 0.4 * 4 + 0.2 * 11/3 + 0.1 * 3 = 1.5 + 1.6 + 0.7333 + 0.3 = 4.1333 -> 4.13
    assert out["complaints"]["received"] == 2
    assert out["service_quality"] == {"score": 4.13, "components": {
        "response_time": {"value": 240.0, "score": 5.0, "weight": 0.3, "applied_weight": 0.3},
        "resolution_rate": {"value": 0.8, "score": 4.0, "weight": 0.4, "applied_weight": 0.4},
        "satisfaction": {"value": 3.67, "score": 3.67, "weight": 0.2, "applied_weight": 0.2},
        "complaint_rate": {"value": 0.04, "score": 3.0, "weight": 0.1, "applied_weight": 0.1},
    }}


def test_service_quality_without_ratings_renormalises(db, rules):
    sessions(db, *[("web", at(15, 9, i)) for i in range(50)])
    case(db, at(20, 10), first=180)
    case(db, at(20, 11), first=240)
    case(db, at(21, 10), first=420, reason="complaint_high")
    case(db, at(21, 11))
    case(db, at(22, 10), status="claimed")
    ticket(db, at(23, 14, 59, 59), status="closed", closed=at(23, 15))  # closed tickets count as received
    out = run(db, rules)
    # same as above without the satisfaction component: weights 0.3 + 0.4 + 0.1 = 0.8
    # (0.3 * 5 + 0.4 * 4 + 0.1 * 4) / 0.8 = 3.5 / 0.8 = 4.375 -> 4.38
    assert out["service_quality"] == {"score": 4.38, "components": {
        "response_time": {"value": 240.0, "score": 5.0, "weight": 0.3, "applied_weight": 0.375},
        "resolution_rate": {"value": 0.8, "score": 4.0, "weight": 0.4, "applied_weight": 0.5},
        "satisfaction": {"value": None, "score": None, "weight": 0.2, "applied_weight": None},
        "complaint_rate": {"value": 0.02, "score": 4.0, "weight": 0.1, "applied_weight": 0.125},
    }}


@pytest.mark.parametrize("seconds, closed_of_five, score, response, resolution", [
    # exactly 5 minutes -> 4; all 5 closed -> 5; 0.3*4 + 0.4*5 = 3.2 / 0.7 = 4.5714 -> 4.57
    (300, 5, 4.57, 4, 5),
    # exactly 10 minutes -> 4; 3 of 5 = 60% -> 3; (1.2 + 1.2) / 0.7 = 3.4286 -> 3.43
    (600, 3, 3.43, 4, 3),
    # 10 min 1 s -> 3; 4 of 5 = 80% -> 4; (0.9 + 1.6) / 0.7 = 3.5714 -> 3.57
    (601, 4, 3.57, 3, 4),
    # 4 min 59 s -> 5; 2 of 5 = 40% -> 2; (1.5 + 0.8) / 0.7 = 3.2857 -> 3.29
    (299, 2, 3.29, 5, 2),
])
def test_band_edges_on_the_database(db, rules, seconds, closed_of_five, score, response, resolution):
    # no conversations logged (complaint rate left out) and no ratings: response and resolution only
    for i in range(5):
        case(db, at(15, 10 + i), first=seconds, status="closed" if i < closed_of_five else "claimed")
    sq = run(db, rules)["service_quality"]
    assert sq["components"]["response_time"]["value"] == seconds
    assert (sq["components"]["response_time"]["score"], sq["components"]["resolution_rate"]["score"]) == \
        (response, resolution)
    assert sq["components"]["satisfaction"]["score"] is None and sq["components"]["complaint_rate"]["score"] is None
    assert sq["score"] == score


def test_complaint_rate_counts_tickets_not_complaint_handoffs(db, rules):
    sessions(db, *[("wechat", at(15, 9 + i // 60, i % 60)) for i in range(100)])
    case(db, at(15, 10), reason="complaint_high", status="claimed")  # a handoff: not a complaint ticket
    ticket(db, at(15, 11))
    sq = run(db, rules)["service_quality"]
    # 1 ticket / 100 conversations = 1% (<= 1%) -> 5
    assert sq["components"]["complaint_rate"] == {"value": 0.01, "score": 5.0, "weight": 0.1, "applied_weight": 0.2}
    ticket(db, at(16, 11))
    sq = run(db, rules)["service_quality"]
    # 2 / 100 = 2% -> 4 (resolution 0 of 1 closed -> 2): (0.4 * 2 + 0.1 * 4) / 0.5 = 2.4
    assert sq["components"]["complaint_rate"] == {"value": 0.02, "score": 4.0, "weight": 0.1, "applied_weight": 0.2}
    assert sq["score"] == 2.4


def test_complaints_against_their_15_day_deadline(db, rules):
    sessions(db, *[("web", at(15, 9 + i // 60, i % 60)) for i in range(100)])
    ticket(db, at(5, 10))  # due 11-20 10:00: overdue now; received before the period
    ticket(db, at(20, 15))  # due 12-05 15:00: 12 days left
    ticket(db, at(10, 0, 0), status="in_progress")  # due 11-25 00:00: 1 day 9 hours left
    ticket(db, at(12, 16))  # due 11-27 16:00: 4 days 1 hour left
    ticket(db, at(12, 10), status="in_progress", due=at(30, 10, month=12))  # extended: 37 days left
    ticket(db, at(11, 9), status="resolved", resolved=at(23, 9))  # 12 days: within the deadline
    ticket(db, at(9, 23, 59, 59), status="resolved", resolved=at(20, 9))  # received before the period
    ticket(db, at(15, 9), status="closed", closed=at(16, 9))  # ended without a decision
    out = run(db, rules)
    assert out["complaints"] == {
        "received": 6, "decision_days": 15, "open": 5, "overdue": 1,
        "due_buckets": {"overdue": 1, "within_3_days": 1, "within_7_days": 1, "within_15_days": 1, "later": 1},
        "resolved": 1, "resolved_within_deadline": 1, "resolved_within_deadline_share": 1.0}
    # 6 tickets / 100 conversations = 6% -> 2
    assert out["service_quality"]["components"]["complaint_rate"] == {
        "value": 0.06, "score": 2.0, "weight": 0.1, "applied_weight": 1.0}
    assert out["service_quality"]["score"] == 2.0
