"""Planning a day's outreach notices (backend.services.outreach.planner), on SQLite and PostgreSQL.

Rules from config/business.yml (``outreach``): reminders 3, 1 and 0 days before the due date, overdue
notices 1, 3, 7, 15 and 30 days after; each valid until the next of the series, at most 3 days late;
the contact window opens at 08:00 Asia/Shanghai; hardship offer after 2 overdue instalments due in
the last 183 days, once per 90 days; a promise reminder the day before the promised date; a CSAT
follow-up the day after a handoff case closed without a rating. Loans: ¥6,000 at 12 % over 6 months,
first due date one month after the start.
"""
from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from backend.models import (
    Channel, HandoffCase, HandoffReason, HandoffStatus, OutreachNotice, PromiseStatus, PromiseToPay,
)
from backend.services.outreach.planner import plan_day
from testkit import D, local, q, shanghai

DAY = date(2026, 12, 7)
RULES_PENALTY = Decimal("1.5") / 360  # rate multiplier / day-count basis


def notices(app) -> list[OutreachNotice]:
    with app.state.sessionmaker() as db:
        return list(db.scalars(select(OutreachNotice).order_by(OutreachNotice.id)))


def planned(app) -> set[tuple]:
    return {(n.kind.value, n.loan_id, n.instalment_seq) for n in notices(app)}


def loan_due(book, cust, due: date, **kw):
    """A 6-month loan whose first instalment is due on ``due``."""
    start = date(due.year - (due.month == 1), (due.month - 2) % 12 + 1, due.day)
    return book.loan(cust.id, "6000", "0.12", 6, start, **kw)


def test_reminders_and_overdue_notices_of_the_day(app, empty_book):
    book = empty_book
    cust = book.customer("李雷")
    due = {name: loan_due(book, cust, d) for name, d in {
        "in3": date(2026, 12, 10), "in3_missed": date(2026, 12, 9), "in1": date(2026, 12, 8),
        "today": date(2026, 12, 7), "od1": date(2026, 12, 6), "od1_missed": date(2026, 12, 5),
        "od3_missed": date(2026, 12, 2), "stale": date(2026, 12, 1), "od3": date(2026, 12, 4),
        "od7": date(2026, 11, 30), "od15": date(2026, 11, 22), "od30": date(2026, 11, 7),
        "in4": date(2026, 12, 11)}.items()}
    paid = loan_due(book, cust, date(2026, 12, 10), paid=1)  # paid ahead of time: nothing
    with app.state.sessionmaker() as db:
        result = plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 7))
    assert planned(app) == {
        ("due_in_3_days", due["in3"].id, 1),
        ("due_in_3_days", due["in3_missed"].id, 1),  # yesterday's, still valid today (a missed day)
        ("due_in_1_day", due["in1"].id, 1),
        ("due_today", due["today"].id, 1),
        ("overdue_1", due["od1"].id, 1),
        ("overdue_1", due["od1_missed"].id, 1),  # 2 days past due: yesterday's, still valid
        ("overdue_3", due["od3_missed"].id, 1),  # 5 days past due: valid 3 days from its day
        ("overdue_3", due["od3"].id, 1),
        ("overdue_7", due["od7"].id, 1),
        ("overdue_15", due["od15"].id, 1),
        ("overdue_30", due["od30"].id, 1),
        ("due_today", due["od30"].id, 2),  # the same loan's next instalment is due today
        ("hardship_offer", None, None),  # with eight instalments unpaid past due, the borrower is offered a plan
    }
    assert result["inserted"] == 13 and result["found"] == 13
    assert paid.id not in {n.loan_id for n in notices(app)}
    by_key = {n.dedupe_key: n for n in notices(app)}
    n = by_key[f"loan:{due['in3'].id}:seq:1:due_in_3_days"]
    assert (n.customer_id, n.status.value, n.service, n.attempts, n.planned_on) == (cust.id, "planned", False, 0, DAY)
    assert local(n.planned_for) == local(n.next_attempt_at) == shanghai(2026, 12, 7, 8)  # the window opens
    assert local(n.expires_at) == shanghai(2026, 12, 9)  # due_in_1_day takes over on 12-09
    first = due["in3"].rows[0]
    assert n.payload == {"due_date": "2026-12-10", "amount": str(first.principal + first.interest),
                         "loan_status": "active"}
    # overdue: the instalment's amount with penalty interest for the days past due
    # (loan_status: as stored, refreshed by the daily job as of 11-23)
    for name, days, expires, status in (("od1", 1, shanghai(2026, 12, 9), "active"),
                                        ("od7", 7, shanghai(2026, 12, 10), "active"),
                                        ("od30", 30, shanghai(2026, 12, 10), "overdue")):
        loan = due[name]
        row = loan.rows[0]
        penalty = q(row.principal * D("0.12") * RULES_PENALTY * days)
        n = by_key[f"loan:{loan.id}:seq:1:overdue_{days}"]
        assert n.payload == {"due_date": row.due_date.isoformat(), "amount": str(row.principal + row.interest + penalty),
                             "penalty": str(penalty), "days_past_due": days, "loan_status": status}, name
        assert local(n.expires_at) == expires


def test_planning_is_idempotent_and_after_the_window_waits_for_the_morning(app, empty_book):
    cust = empty_book.customer()
    loan = loan_due(empty_book, cust, date(2026, 12, 10))
    with app.state.sessionmaker() as db:
        assert plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 22))["inserted"] == 1
        again = plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 23))
    assert again == {"found": 0, "inserted": 0, "by_kind": {}}
    (n,) = notices(app)
    assert (n.kind.value, n.loan_id) == ("due_in_3_days", loan.id)
    assert local(n.planned_for) == shanghai(2026, 12, 8, 8)  # planned at 22:00: tomorrow 08:00


def test_later_in_the_day_planned_for_is_now(app, empty_book):
    cust = empty_book.customer()
    loan_due(empty_book, cust, date(2026, 12, 10))
    with app.state.sessionmaker() as db:
        plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 13, 30))
    assert local(notices(app)[0].planned_for) == shanghai(2026, 12, 7, 13, 30)


def test_two_planners_at_once_plan_each_notice_once(app, empty_book):
    cust = empty_book.customer()
    for d in (date(2026, 12, 10), date(2026, 12, 8), date(2026, 12, 7), date(2026, 11, 30)):
        loan_due(empty_book, cust, d)
    results, barrier = [], threading.Barrier(2)

    def run():
        with app.state.sessionmaker() as db:
            barrier.wait()
            results.append(plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 7)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(notices(app)) == 4
    assert sum(r["inserted"] for r in results) == 4  # each row inserted by exactly one of them
    assert len({n.dedupe_key for n in notices(app)}) == 4


def _late_history(book, cust, late: dict[int, int], start: date = date(2026, 5, 20), paid: int = 6):
    """Instalments 1..paid paid, those in ``late`` that many days after their due date."""
    return book.loan(cust.id, "6000", "0.12", 12, start, paid=paid, late_days=late)


def test_hardship_offer_after_two_overdue_instalments_in_six_months_once_per_cooldown(app, empty_book):
    book = empty_book
    twice = book.customer("陈晨")
    _late_history(book, twice, {2: 5, 4: 3})  # due 07-20 paid 07-25, due 09-20 paid 09-23
    once = book.customer("周一")
    _late_history(book, once, {3: 2})
    long_ago = book.customer("吴二")
    _late_history(book, long_ago, {1: 4, 2: 4}, start=date(2026, 1, 5), paid=11)  # due 02-05, 03-05: > 183 days
    unpaid_now = book.customer("郑三")  # one paid late, one unpaid past due (12-04 is in the window)
    book.loan(unpaid_now.id, "6000", "0.12", 12, date(2026, 8, 4), paid=3, late_days={2: 9})
    settled = book.customer("王四")  # two late payments but nothing left to pay
    book.loan(settled.id, "6000", "0.12", 6, date(2026, 6, 1), paid=6, late_days={2: 3, 5: 3})
    asked = book.customer("孙五")  # asked for a plan recently: no offer
    asked_loan = _late_history(book, asked, {2: 5, 4: 3})
    with app.state.sessionmaker() as db:
        from backend.models import Channel as Ch, PlanReason, PlanRequest, PlanStatus, PlanType
        db.add(PlanRequest(reference="RP20261120-0001", loan_id=asked_loan.id, customer_id=asked.id,
                           conversation=f"sms:{asked.sms_id}", channel=Ch.sms, reason_category=PlanReason.other,
                           plan_type=PlanType.instalment, months=12, amount=Decimal("1000.00"), quote={},
                           status=PlanStatus.rejected, needs_staff_review=False, staff_review_reasons=[],
                           submitted_on=date(2026, 11, 20), decision_due_on=date(2026, 11, 23),
                           created_at=shanghai(2026, 11, 20, 10)))
        db.commit()
        plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 7))
    offers = {(n.customer_id, n.dedupe_key, n.payload["episodes"]) for n in notices(app) if n.kind.value == "hardship_offer"}
    assert offers == {(twice.id, f"hardship:{twice.id}:2026-12-07", 2),
                      (unpaid_now.id, f"hardship:{unpaid_now.id}:2026-12-07", 2)}
    offer = next(n for n in notices(app) if n.customer_id == twice.id and n.kind.value == "hardship_offer")
    assert (offer.loan_id, offer.instalment_seq, local(offer.expires_at)) == (None, None, shanghai(2026, 12, 10))
    with app.state.sessionmaker() as db:  # within the 90-day cooldown: no second offer
        plan_day(db, app.state.rules, DAY + timedelta(days=30), shanghai(2027, 1, 6, 7))
        plan_day(db, app.state.rules, DAY + timedelta(days=91), shanghai(2027, 3, 8, 7))
    offers = sorted(n.planned_on for n in notices(app) if n.kind.value == "hardship_offer" and n.customer_id == twice.id)
    assert offers == [DAY, DAY + timedelta(days=91)]


def test_promise_reminder_the_day_before_the_promised_date(app, empty_book):
    cust = empty_book.customer()
    loan = loan_due(empty_book, cust, date(2026, 12, 1))
    with app.state.sessionmaker() as db:
        def promise(day: date, status=PromiseStatus.open) -> int:
            p = PromiseToPay(customer_id=cust.id, loan_id=loan.id, promised_date=day, amount=Decimal("1000.00"),
                             channel="sms", status=status, created_at=shanghai(2026, 12, 2, 10))
            db.add(p)
            db.flush()
            return p.id
        tomorrow, later, kept = promise(date(2026, 12, 8)), promise(date(2026, 12, 9)), promise(date(2026, 12, 8), PromiseStatus.kept)
        db.commit()
        plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 7))
    reminders = [n for n in notices(app) if n.kind.value == "promise_reminder"]
    assert [(n.dedupe_key, n.loan_id, n.payload, local(n.expires_at)) for n in reminders] == [
        (f"promise:{tomorrow}", loan.id, {"promise_id": tomorrow, "promised_date": "2026-12-08", "amount": "1000.00",
                                          "loan_status": "active"}, shanghai(2026, 12, 8))]
    assert later != kept


def test_csat_follow_up_the_day_after_an_unrated_closed_case(app, empty_book):
    cust = empty_book.customer()
    with app.state.sessionmaker() as db:
        def case(ref: str, closed, csat=None, customer=cust.id) -> int:
            c = HandoffCase(reference=ref, conversation=f"web:{cust.web_id}", channel=Channel.web, customer_id=customer,
                            reason=HandoffReason.request_human, priority=3, summary="s", status=HandoffStatus.closed,
                            created_at=closed - timedelta(hours=1), closed_at=closed, csat=csat)
            db.add(c)
            db.flush()
            return c.id
        unrated = case("HO20261206-0001", shanghai(2026, 12, 6, 23, 59))
        case("HO20261206-0002", shanghai(2026, 12, 6, 15), csat=5)
        case("HO20261205-0001", shanghai(2026, 12, 5, 15))
        case("HO20261206-0003", shanghai(2026, 12, 6, 15), customer=None)
        case("HO20261207-0001", shanghai(2026, 12, 7, 0, 1))
        db.commit()
        plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 7))
    (n,) = [n for n in notices(app) if n.kind.value == "csat_followup"]
    assert (n.dedupe_key, n.customer_id, n.service, n.priority) == (f"handoff:{unrated}:csat", cust.id, True, 5)
    assert n.payload == {"case_id": unrated, "reference": "HO20261206-0001", "conversation": f"web:{cust.web_id}",
                         "channel": "web"}
    assert local(n.expires_at) == shanghai(2026, 12, 8)


def test_restructured_loans_get_reminders_settled_ones_do_not(app, empty_book):
    cust = empty_book.customer()
    restructured = loan_due(empty_book, cust, date(2026, 12, 10))
    settled = loan_due(empty_book, cust, date(2026, 12, 10))
    with app.state.sessionmaker() as db:
        from backend.models import Loan, LoanStatus
        db.get(Loan, restructured.id).status = LoanStatus.restructured
        db.get(Loan, settled.id).status = LoanStatus.settled
        db.commit()
        plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 7))
    (n,) = notices(app)
    assert (n.loan_id, n.payload["loan_status"]) == (restructured.id, "restructured")


def test_a_book_of_2000_loans_plans_quickly(app, empty_book):
    """Set-based: a couple of SELECTs per kind and bulk inserts (the 100,000-loan figure: bench.book)."""
    import time

    from bench.book import generate_book

    with app.state.sessionmaker() as db:
        generate_book(db, 2000, DAY, seed=7)
        started = time.perf_counter()
        result = plan_day(db, app.state.rules, DAY, shanghai(2026, 12, 7, 7))
        elapsed = time.perf_counter() - started
        assert db.scalar(select(func.count()).select_from(OutreachNotice)) == result["inserted"] > 100
    assert elapsed < 10, elapsed
