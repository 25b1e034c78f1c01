"""The staff console's dashboard numbers (issue 5, "Dashboard with charts"), JSON-ready.

The period is the last ``days`` business days (Asia/Shanghai, ``rules.timezone``) ending with the
business date of ``now``: from 00:00 of the first day up to, not including, 00:00 of the day after
today. Datetimes are compared in the business timezone (SQLite stores wall time, see handoff._local).

Which rows a number counts, and how:

* conversations_per_day: ConversationSession rows by the local date of ``started_at``, per channel.
* containment: conversations = ConversationSession rows started in the period; handed_off = distinct
  HandoffCase.conversation among cases *created* in the period; contained_share =
  1 - handed_off / conversations, clamped at 0 (handoffs from conversations whose session started
  before the period could otherwise push it below zero), None without conversations; 4 decimals.
* handoff_reasons: cases created in the period, per reason (every reason present).
* first_response: cases created in the period that have a first response; the time is wall-clock
  seconds first_response_at - created_at (not staffed time, unlike the wait estimate). The median is
  statistics.median; the 90th percentile is the "inclusive" (linear interpolation between closest
  ranks, numpy's default) method: sorted x, position h = 0.9 * (n - 1), p90 = x[floor(h)] +
  (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]) -- statistics.quantiles(n=10, method="inclusive")[8];
  with a single answered case both are that case's time. Seconds, 1 decimal.
* csat: cases *closed* in the period with a rating: average (2 decimals), distribution "1".."5".
* reminders: from the outreach log (backend.services.outreach.summary.reminders): ``sent`` = automated
  notices (reminders, overdue notices, promise reminders, hardship offers; not service notices) sent
  in the period; ``answered`` = those after which the borrower wrote on the same channel identity
  (its last_inbound_at is later than the notice); ``failed`` = permanent failures in the period;
  ``available: True``.
* promises: PromiseToPay created in the period, by status; kept_share = kept / (kept + broken),
  None when both are 0; 4 decimals.
* complaints: complaint tickets against their deadline (complaints.deadline_stats with ``since`` =
  the period's start: live tickets now by time left, the share of tickets received in the period and
  resolved within ``complaints.decision_days`` of receipt), plus ``received`` = ComplaintTicket rows
  received in the period (a repeat appended to a live ticket is not a new ticket) and
  ``decision_days``.
* service_quality: see quality_score. Resolution rate = cases created in the period that are now
  closed / all cases created in the period. Complaint rate = complaint tickets received in the
  period (``complaints.received``) / conversations in the period. Response time uses the median
  first response above.

Rounding of shares, averages and the score is half-up on the exact value (Fractions, no float error).
"""
from __future__ import annotations

import statistics
from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.config import BusinessRules, ScoreScale, ServiceQualityRules
from backend.models import (
    Channel, ComplaintTicket, ConversationSession, HandoffCase, HandoffReason, HandoffStatus, PromiseStatus,
    PromiseToPay,
)

from .complaints import deadline_stats
from .handoff import _local, _tz
from .outreach.summary import reminders as outreach_reminders


_MICROSECOND = timedelta(microseconds=1)


def _round(value: Fraction | float | int | None, places: int) -> float | None:
    """Half-up rounding of the exact value, returned as a float for JSON."""
    if value is None:
        return None
    value = Fraction(value)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _share(part: int, whole: int) -> Fraction | None:
    return Fraction(part, whole) if whole else None


def percentile_inclusive(values: list, p: float) -> Fraction:
    """The p-th quantile (0..1) by linear interpolation between closest ranks (the "inclusive"
    method of statistics.quantiles, numpy's default): position p * (n - 1) in the sorted values.
    Exact (a Fraction), so that rounding the result for display is not thrown off by float error."""
    if not values:
        raise ValueError("no values")
    xs = sorted(Fraction(v) for v in values)
    h = Fraction(str(p)) * (len(xs) - 1)
    lo = int(h)  # floor: h >= 0
    if lo + 1 >= len(xs):
        return xs[-1]
    return xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])


# --------------------------------------------------------------------------- service-quality score

def band_score(scale: ScoreScale, value: Fraction) -> float:
    """The score of the first band the value falls in (thresholds compared exactly as decimals)."""
    for band in scale.bands:
        if band.below is not None and value < Fraction(str(band.below)):
            return band.score
        if band.at_most is not None and value <= Fraction(str(band.at_most)):
            return band.score
        if band.at_least is not None and value >= Fraction(str(band.at_least)):
            return band.score
    return scale.otherwise


def quality_score(sq: ServiceQualityRules, *, median_first_response_seconds: Fraction | float | None, cases: int,
                  closed: int, csat_sum: int, rated: int, complaints: int, conversations: int) -> dict:
    """The business's service-quality score (1..5) from the period's raw numbers.

    Sub-scores: response_time from the median first response in minutes (response_minutes bands),
    resolution_rate = closed / cases (resolution_rate bands), satisfaction = the CSAT average itself,
    complaint_rate = complaints / conversations (complaint_rate bands). score = sum(weight * sub-score)
    / sum(weight) over the components that have data (no answered case, no case, no rating, no
    conversation respectively leave a component out), 2 decimals; None when none has data.
    """
    values: dict[str, Fraction | None] = {
        "response_time": None if median_first_response_seconds is None
        else Fraction(median_first_response_seconds) / 60,
        "resolution_rate": _share(closed, cases),
        "satisfaction": _share(csat_sum, rated),
        "complaint_rate": _share(complaints, conversations),
    }
    scales = {"response_time": sq.response_minutes, "resolution_rate": sq.resolution_rate,
              "complaint_rate": sq.complaint_rate}
    scores: dict[str, Fraction | None] = {}
    for name, value in values.items():
        if value is None:
            scores[name] = None
        elif name == "satisfaction":
            scores[name] = value
        else:
            scores[name] = Fraction(str(band_score(scales[name], value)))
    weights = {name: Fraction(str(w)) for name, w in sq.weights.items()}
    present = [name for name, s in scores.items() if s is not None]
    total_weight = sum((weights[n] for n in present), Fraction(0))
    total = None
    if present and total_weight > 0:
        total = sum((weights[n] * scores[n] for n in present), Fraction(0)) / total_weight
    display = {"response_time": lambda v: _round(v * 60, 1),  # shown in seconds, like first_response
               "resolution_rate": lambda v: _round(v, 4), "satisfaction": lambda v: _round(v, 2),
               "complaint_rate": lambda v: _round(v, 4)}
    components = {
        name: {
            "value": None if values[name] is None else display[name](values[name]),
            "score": _round(scores[name], 2),
            "weight": float(sq.weights[name]),
            "applied_weight": _round(weights[name] / total_weight, 4)
            if scores[name] is not None and total_weight > 0 else None,
        }
        for name in values
    }
    return {"score": _round(total, 2), "components": components}


# --------------------------------------------------------------------------- the dashboard

def period_bounds(rules: BusinessRules, now: datetime, days: int) -> tuple[list[date], datetime, datetime]:
    """The period's dates (oldest first) and [start, end) as business-timezone datetimes."""
    if days < 1:
        raise ValueError("days must be at least 1")
    today = _local(now, rules).date()
    dates = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    tz = _tz(rules)
    return dates, datetime.combine(dates[0], time(0), tzinfo=tz), \
        datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz)


def dashboard(db: Session, rules: BusinessRules, now: datetime, days: int = 14) -> dict:
    """The dashboard's numbers for the last ``days`` days; see the module docstring for the rules."""
    dates, start, end = period_bounds(rules, now, days)
    channels = [c.value for c in Channel]

    # ---- conversations per day and channel
    per_day = {d: Counter() for d in dates}
    sessions = db.execute(select(ConversationSession.started_at, ConversationSession.channel).where(
        ConversationSession.started_at >= start, ConversationSession.started_at < end)).all()
    for started_at, channel in sessions:
        day = _local(started_at, rules).date()
        if day in per_day:  # always, bar a clock skew between the bounds and the stored value
            per_day[day][Channel(channel).value] += 1
    conversations_per_day = [
        {"date": d.isoformat(), **{c: per_day[d][c] for c in channels}, "total": sum(per_day[d].values())}
        for d in dates
    ]
    conversations = sum(row["total"] for row in conversations_per_day)

    # ---- handoff cases created in the period
    cases = db.execute(select(
        HandoffCase.conversation, HandoffCase.reason, HandoffCase.status, HandoffCase.created_at,
        HandoffCase.first_response_at,
    ).where(HandoffCase.created_at >= start, HandoffCase.created_at < end)).all()
    handed_off = len({c.conversation for c in cases})
    contained = _share(conversations - handed_off, conversations)
    reasons = Counter(HandoffReason(c.reason).value for c in cases)
    closed = sum(1 for c in cases if HandoffStatus(c.status) == HandoffStatus.closed)

    # ---- complaint tickets received in the period, and all of them against their deadline
    complaints = db.scalar(select(func.count()).select_from(ComplaintTicket).where(
        ComplaintTicket.received_at >= start, ComplaintTicket.received_at < end))

    # ---- first response (wall-clock seconds)
    # Exact seconds (microseconds as a Fraction), not timedelta.total_seconds()'s float.
    waits = [Fraction((_local(c.first_response_at, rules) - _local(c.created_at, rules)) // _MICROSECOND, 10**6)
             for c in cases if c.first_response_at is not None]
    median = statistics.median(waits) if waits else None
    p90 = percentile_inclusive(waits, 0.9) if waits else None

    # ---- CSAT of cases closed in the period
    ratings = list(db.scalars(select(HandoffCase.csat).where(
        HandoffCase.closed_at >= start, HandoffCase.closed_at < end, HandoffCase.csat.is_not(None))))
    rating_counts = Counter(ratings)

    # ---- promises to pay created in the period
    promise_counts = {PromiseStatus(status).value: n for status, n in db.execute(
        select(PromiseToPay.status, func.count()).where(
            PromiseToPay.created_at >= start, PromiseToPay.created_at < end).group_by(PromiseToPay.status))}
    promises = {s.value: promise_counts.get(s.value, 0) for s in PromiseStatus}

    return {
        "period": {"days": days, "start": dates[0].isoformat(), "end": dates[-1].isoformat(),
                   "timezone": rules.timezone},
        "conversations_per_day": conversations_per_day,
        "containment": {
            "conversations": conversations,
            "handed_off": handed_off,
            "contained_share": None if contained is None else _round(max(contained, Fraction(0)), 4),
        },
        "handoff_reasons": {r.value: reasons[r.value] for r in HandoffReason},
        "first_response": {
            "answered": len(waits),
            "median_seconds": _round(median, 1),
            "p90_seconds": _round(p90, 1),
        },
        "csat": {
            "rated": len(ratings),
            "average": _round(_share(sum(ratings), len(ratings)), 2),
            "distribution": {str(score): rating_counts[score] for score in range(1, 6)},
        },
        "reminders": outreach_reminders(db, start, end),
        "promises": {
            **promises,
            "kept_share": _round(_share(promises["kept"], promises["kept"] + promises["broken"]), 4),
        },
        "complaints": {"received": complaints, "decision_days": rules.complaints.decision_days,
                       **deadline_stats(db, rules, now, since=start)},
        "service_quality": quality_score(
            rules.service_quality, median_first_response_seconds=median, cases=len(cases), closed=closed,
            csat_sum=sum(ratings), rated=len(ratings), complaints=complaints, conversations=conversations,
        ),
    }
