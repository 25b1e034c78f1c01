"""Repayment-plan (hardship) requests: the indicative plan, eligibility, the request and its decision.

Every amount is a Decimal in yuan, rounded to cents half up (money.q2) except where said. Rules come
from config/business.yml, ``repayment_plans``. "Today" is the business date (Clock.today()).

The plan, computed from the loan's position today (ledger.position)
--------------------------------------------------------------------
Let m = whole months from the loan's start date to today's month, S = add_months(start, m) (the
loan's due day in the current month) and the loan's due dates be add_months(start, j) as in the
contract.

分期 instalment, N new monthly instalments (instalment_min_months..instalment_max_months):
  * every unpaid instalment is replaced (overdue ones included);
  * P = the outstanding principal (all unpaid principal);
  * carried arrears C = unpaid interest of the replaced instalments due on or before S (periods that
    ended before the plan's first period) + all their unpaid fees + penalty interest to today; the
    interest of instalments due after S is not carried: the new schedule charges interest for those
    periods instead;
  * the new schedule is money.amortize(P, contract annual rate, N, S): level payment
    A = q2(P*r*(1+r)^N/((1+r)^N-1)), r = rate/12, interest_k = q2(balance_{k-1}*r),
    principal_k = A - interest_k, the last instalment taking the remaining balance (it absorbs the
    rounding remainder, so the principals add up to P exactly); due dates add_months(start, m+k),
    so the first is next month on the loan's due day;
  * C bears no interest (no interest on interest) and is spread over the N instalments in the
    instalment's ``fee``: c = C / N rounded down to the cent for instalments 1..N-1, and the last
    takes C - (N-1)*c (never negative), so the fees add up to C exactly;
  * monthly amount = the first instalment (A + c); total interest = sum of interest_k;
    amount = P + C; total term = m + N months.
  Example: 10,000.00 at 12 %/year, nothing overdue, N = 3: r = 0.01, (1.01)^3 = 1.030301,
  A = q2(10000 * 0.01 * 1.030301 / 0.030301) = q2(3400.2211...) = 3400.22;
  1: interest 100.00, principal 3300.22, balance 6699.78; 2: interest q2(66.9978) = 67.00,
  principal 3333.22, balance 3366.56; 3: interest q2(33.6656) = 33.67, principal 3366.56,
  total 3400.23 (the remainder); total interest 200.67.

延期 deferral of the next k instalments (1..defer_max_instalments):
  * the next k unpaid instalments due today or later move, in order, to the months after the loan's
    last due date (add_months(start, M+1..M+k), M = months from start to that date); the later ones
    keep their dates, so nothing is due in the deferred months;
  * interest: none added. A deferred instalment keeps its principal, interest and fee (the unpaid
    part); the principal is not charged interest for the extra months. Total interest unchanged;
  * overdue instalments are not deferred: arrears stay due as they are (分期 folds them in);
  * amount = the deferred instalments' unpaid total; monthly amount = the first instalment due
    after the plan; total term = M + k.

减免 waiver (the parts in ``waivable``):
  * penalty interest to today and the unpaid fees of every instalment are waived; principal and
    interest stay as scheduled; amount = the waived total; the remaining debt is shown;
  * penalty interest on principal still overdue accrues again from the approval date.

Eligibility (each refusal has a code and a Chinese and English message; a quote lists all of them,
a submission is refused with the first): the plan type must be offered; settled loans cannot
apply; one open request per loan; at most ``max_approved_in_window`` approved plans per loan in the
last ``approved_plans_window_months`` months (by business date); months within range; the total
term within ``max_total_term_months``; something to defer or waive. A request beyond a staff-review
threshold (outstanding principal or days past due) is flagged ``needs_staff_review``: staff assess
it in full instead of relying on the automatic pre-check.

The request: submitted -> under_review -> approved / rejected, or withdrawn by the borrower while
submitted or under review. State changes are conditional UPDATEs (two staff cannot both decide);
each writes an audit row. Approval needs a supervisor when the plan's amount is above
``supervisor_approval_above``. Approval recomputes the plan as of the approval date (payments may
have arrived since the quote), refuses if it is no longer eligible, and applies it:
  * 分期 / 延期: the replaced instalments are removed from the schedule (one that had received a
    payment is kept, cut down to what was paid, and counts as paid), the plan's instalments are
    appended with the next sequence numbers, and the loan becomes ``restructured`` (the ledger keeps
    that status; statuses of instalments are refreshed as usual);
  * 减免: fees and booked penalty are reduced to what was paid and penalty accrual restarts today;
    the schedule and the loan status otherwise stay as they are (a waiver is not a restructuring).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.core.config import BusinessRules
from backend.core.errors import AppError, not_found
from backend.models import Channel, Instalment, Loan, LoanStatus, PlanReason, PlanRequest, PlanStatus, PlanType
from backend.models.plan import PLAN_REASON_LABELS, PLAN_STATUS_LABELS, PLAN_TYPE_LABELS
from backend.plan_schemas import (
    DeferredOut, PlanFiguresOut, PlanQuoteOut, PlanRefusalOut, PlanRequestIn, PlanRequestOut, PlanRowOut,
)

from . import accounts, audit, records
from .ledger import LoanPosition, position, refresh_loan_status
from .masking import mask_numbers
from .money import CENT, ZERO, add_months, amortize

LIVE = (PlanStatus.submitted, PlanStatus.under_review)
REFERENCE_TRIES = 5


# --------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class PlanRow:
    seq: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee


@dataclass
class Plan:
    plan_type: PlanType
    months: int | None
    as_of: date
    annual_rate: Decimal
    outstanding_principal: Decimal
    carried_interest: Decimal = ZERO
    carried_fees: Decimal = ZERO
    carried_penalty: Decimal = ZERO
    amount: Decimal = ZERO
    total_term_months: int | None = None
    waived_penalty: Decimal = ZERO
    waived_fees: Decimal = ZERO
    remaining_after_waiver: Decimal = ZERO
    deferred: list[DeferredOut] = field(default_factory=list)
    rows: list[PlanRow] = field(default_factory=list)
    replaced_seqs: list[int] = field(default_factory=list)  # the loan's instalments the plan replaces

    @property
    def carried_total(self) -> Decimal:
        return self.carried_interest + self.carried_fees + self.carried_penalty

    def figures(self) -> PlanFiguresOut:
        rows = self.rows
        waiver = self.plan_type == PlanType.waiver
        return PlanFiguresOut(
            plan_type=self.plan_type.value, months=self.months, as_of=self.as_of, annual_rate=self.annual_rate,
            outstanding_principal=self.outstanding_principal, carried_interest=self.carried_interest,
            carried_fees=self.carried_fees, carried_penalty_interest=self.carried_penalty,
            carried_total=self.carried_total, amount=self.amount,
            monthly_amount=rows[0].total if rows else None, instalments=len(rows),
            total_interest=sum((r.interest for r in rows), ZERO),
            total_repayable=self.remaining_after_waiver if waiver else sum((r.total for r in rows), ZERO),
            first_due_date=rows[0].due_date if rows else None, last_due_date=rows[-1].due_date if rows else None,
            total_term_months=self.total_term_months, waived_penalty_interest=self.waived_penalty,
            waived_fees=self.waived_fees, waived_amount=self.waived_penalty + self.waived_fees,
            deferred=self.deferred,
            schedule=[PlanRowOut(seq=r.seq, due_date=r.due_date, principal=r.principal, interest=r.interest,
                                 fee=r.fee, total=r.total) for r in rows],
        )


def months_between(start: date, day: date) -> int:
    """Whole calendar months from start's month to day's month."""
    return (day.year - start.year) * 12 + day.month - start.month


def spread(total: Decimal, n: int) -> list[Decimal]:
    """total over n parts: total/n rounded down to the cent, the last part taking the remainder."""
    part = (total / n).quantize(CENT, rounding=ROUND_DOWN)
    return [part] * (n - 1) + [total - part * (n - 1)]


def instalment_plan(loan: Loan, pos: LoanPosition, months: int) -> Plan:
    start, as_of = loan.start_date, pos.as_of
    m = months_between(start, as_of)
    s = add_months(start, m)
    replaced = pos.open_rows
    principal = sum((r.unpaid_principal for r in replaced), ZERO)
    plan = Plan(
        PlanType.instalment, months, as_of, loan.annual_rate, principal,
        carried_interest=sum((r.unpaid_interest for r in replaced if r.instalment.due_date <= s), ZERO),
        carried_fees=sum((r.unpaid_fee for r in replaced), ZERO),
        carried_penalty=sum((r.penalty_due for r in replaced), ZERO),
        total_term_months=m + months, replaced_seqs=[r.instalment.seq for r in replaced],
    )
    plan.amount = principal + plan.carried_total
    fees = spread(plan.carried_total, months)
    plan.rows = [
        PlanRow(k.seq, add_months(start, m + k.seq), k.principal, k.interest, fees[k.seq - 1])
        for k in amortize(principal, loan.annual_rate, months, s)
    ]
    return plan


def upcoming_rows(pos: LoanPosition):
    return [r for r in pos.open_rows if r.instalment.due_date >= pos.as_of]


def deferral_plan(loan: Loan, pos: LoanPosition, count: int) -> Plan:
    start = loan.start_date
    upcoming = upcoming_rows(pos)
    last = max(i.due_date for i in loan.instalments)
    m_last = months_between(start, last)
    moved, kept = upcoming[:count], upcoming[count:]
    plan = Plan(PlanType.deferral, count, pos.as_of, loan.annual_rate, pos.outstanding_principal,
                total_term_months=m_last + count, replaced_seqs=[r.instalment.seq for r in upcoming])
    rows: list[tuple[date, Decimal, Decimal, Decimal]] = [
        (r.instalment.due_date, r.unpaid_principal, r.unpaid_interest, r.unpaid_fee) for r in kept]
    for j, r in enumerate(moved, start=1):
        new_due = add_months(start, m_last + j)
        plan.deferred.append(DeferredOut(seq=r.instalment.seq, due_date=r.instalment.due_date, new_due_date=new_due,
                                         amount=r.unpaid_principal + r.unpaid_interest + r.unpaid_fee))
        rows.append((new_due, r.unpaid_principal, r.unpaid_interest, r.unpaid_fee))
    plan.rows = [PlanRow(k, *row) for k, row in enumerate(rows, start=1)]
    plan.amount = sum((d.amount for d in plan.deferred), ZERO)
    return plan


def waiver_plan(loan: Loan, pos: LoanPosition, rules: BusinessRules) -> Plan:
    parts = rules.repayment_plans.waivable
    plan = Plan(PlanType.waiver, None, pos.as_of, loan.annual_rate, pos.outstanding_principal)
    plan.waived_penalty = pos.penalty_interest if "penalty_interest" in parts else ZERO
    plan.waived_fees = sum((r.unpaid_fee for r in pos.rows), ZERO) if "fees" in parts else ZERO
    plan.amount = plan.waived_penalty + plan.waived_fees
    plan.remaining_after_waiver = pos.total_outstanding - plan.amount
    return plan


# --------------------------------------------------------------------------- eligibility

@dataclass
class Assessment:
    plan_type: PlanType
    months: int | None
    pos: LoanPosition
    refusals: list[AppError]
    staff_review_reasons: list[str]
    plan: Plan | None
    requires_supervisor: bool

    @property
    def eligible(self) -> bool:
        return not self.refusals


def _refuse(status: int, code: str, zh: str, en: str) -> AppError:
    return AppError(status, code, zh, en)


def _approved_recently(db: Session, rules: BusinessRules, loan_id: int, as_of: date) -> list[PlanRequest]:
    since = add_months(as_of, -rules.repayment_plans.approved_plans_window_months)
    return list(db.scalars(select(PlanRequest).where(
        PlanRequest.loan_id == loan_id, PlanRequest.status == PlanStatus.approved, PlanRequest.decided_on > since)
        .order_by(PlanRequest.decided_on.desc(), PlanRequest.id.desc())))


def _open_request(db: Session, loan_id: int, exclude_id: int | None = None) -> PlanRequest | None:
    stmt = select(PlanRequest).where(PlanRequest.loan_id == loan_id, PlanRequest.status.in_(LIVE))
    if exclude_id is not None:
        stmt = stmt.where(PlanRequest.id != exclude_id)
    return db.scalars(stmt.order_by(PlanRequest.id)).first()


def parse_plan_type(value: str) -> PlanType:
    try:
        return PlanType(value)
    except ValueError:
        raise AppError(422, "invalid_plan_type", "申请类型不正确，可选：分期、延期、减免",
                       f"Unknown plan type {value!r}; use instalment, deferral or waiver") from None


def assess(db: Session, rules: BusinessRules, loan: Loan, plan_type: PlanType, months: int | None, as_of: date,
           exclude_request_id: int | None = None) -> Assessment:
    """Every eligibility rule for the plan, the staff-review flag and, when eligible, the plan. Writes nothing."""
    pr = rules.repayment_plans
    months = None if plan_type == PlanType.waiver else months  # a waiver has no months
    pos = position(loan, rules, as_of)
    refusals: list[AppError] = []
    if plan_type.value not in pr.plan_types:
        refusals.append(_refuse(422, "plan_type_not_offered", f"暂不受理{PLAN_TYPE_LABELS[plan_type]}申请",
                                f"{plan_type.value} plans are not offered"))
    settled = loan.status == LoanStatus.settled or pos.total_outstanding == ZERO
    if settled:
        refusals.append(_refuse(409, "loan_settled", "该笔借款已结清，无需申请还款计划",
                                "The loan is settled; no repayment plan is needed"))
    pending = _open_request(db, loan.id, exclude_request_id)
    if pending is not None:
        refusals.append(_refuse(409, "request_pending",
                                f"该笔借款已有一份正在处理的申请（编号 {pending.reference}），请等待结果或先撤回",
                                f"The loan already has an open request ({pending.reference}); wait for the decision "
                                f"or withdraw it first"))
    recent = _approved_recently(db, rules, loan.id, as_of)
    if len(recent) >= pr.max_approved_in_window:
        last = recent[0].decided_on
        refusals.append(_refuse(409, "recent_plan_approved",
                                f"该笔借款在{pr.approved_plans_window_months}个月内已批准过还款计划"
                                f"（{last:%Y-%m-%d}），暂不能再次申请",
                                f"A repayment plan was approved for this loan within the last "
                                f"{pr.approved_plans_window_months} months ({last:%Y-%m-%d})"))

    plan: Plan | None = None
    if plan_type == PlanType.instalment:
        if months is None:
            refusals.append(_refuse(422, "months_required", "请告诉我们想分多少期", "Say how many instalments"))
        elif not pr.instalment_min_months <= months <= pr.instalment_max_months:
            refusals.append(_refuse(
                422, "months_out_of_range",
                f"分期期数需在{pr.instalment_min_months}到{pr.instalment_max_months}期之间",
                f"The number of instalments must be {pr.instalment_min_months} to {pr.instalment_max_months}"))
        elif not settled:
            plan = instalment_plan(loan, pos, months)
    elif plan_type == PlanType.deferral:
        upcoming = len(upcoming_rows(pos))
        if months is None:
            refusals.append(_refuse(422, "months_required", "请告诉我们想延期几期", "Say how many instalments to defer"))
        elif not 1 <= months <= pr.defer_max_instalments:
            refusals.append(_refuse(422, "months_out_of_range", f"延期期数需在1到{pr.defer_max_instalments}期之间",
                                    f"Between 1 and {pr.defer_max_instalments} instalments can be deferred"))
        elif not settled and months > upcoming:
            refusals.append(_refuse(422, "not_enough_instalments",
                                    f"该笔借款只剩{upcoming}期未到期，无法延期{months}期",
                                    f"Only {upcoming} instalments are still to come; {months} cannot be deferred"))
        elif not settled:
            plan = deferral_plan(loan, pos, months)
    elif not settled:
        plan = waiver_plan(loan, pos, rules)
        if plan.amount == ZERO:
            refusals.append(_refuse(422, "nothing_to_waive", "该笔借款目前没有可减免的罚息或费用",
                                    "There is no penalty interest or fee to waive"))
    if plan is not None and plan.total_term_months is not None and plan.total_term_months > pr.max_total_term_months:
        refusals.append(_refuse(
            422, "term_too_long",
            f"调整后总期限为{plan.total_term_months}个月，超过最长{pr.max_total_term_months}个月",
            f"The total term would be {plan.total_term_months} months, over the {pr.max_total_term_months}-month "
            f"maximum"))

    th = pr.staff_review_thresholds
    review = []
    if pos.outstanding_principal > th.outstanding_principal_above:
        review.append("outstanding_principal_above")
    if pos.days_past_due > th.days_past_due_above:
        review.append("days_past_due_above")
    supervisor = plan is not None and plan.amount > pr.supervisor_approval_above
    return Assessment(plan_type, months, pos, refusals, review, plan if not refusals else None, supervisor)


def quote_out(rules: BusinessRules, loan: Loan, a: Assessment) -> PlanQuoteOut:
    return PlanQuoteOut(
        loan_id=loan.id, plan_type=a.plan_type.value, months=a.months, as_of=a.pos.as_of, eligible=a.eligible,
        refusals=[PlanRefusalOut(code=e.code, message_zh=e.message_zh, message_en=e.message_en) for e in a.refusals],
        needs_staff_review=bool(a.staff_review_reasons), staff_review_reasons=a.staff_review_reasons,
        requires_supervisor=a.requires_supervisor, decision_days=rules.repayment_plans.decision_days,
        quote=a.plan.figures() if a.plan else None,
    )


def quote(db: Session, rules: BusinessRules, loan_id: int, plan_type: str, months: int | None,
          as_of: date) -> PlanQuoteOut:
    """The indicative plan and its eligibility; writes nothing."""
    loan = accounts.get_loan(db, loan_id)
    return quote_out(rules, loan, assess(db, rules, loan, parse_plan_type(plan_type), months, as_of))


# --------------------------------------------------------------------------- business time

def _local(dt: datetime | None, rules: BusinessRules) -> datetime | None:
    """In the business timezone. SQLite returns naive datetimes: the wall time they were stored in."""
    if dt is None:
        return None
    tz = ZoneInfo(rules.timezone)
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt.astimezone(tz)


# --------------------------------------------------------------------------- requests

def get_request(db: Session, reference: str) -> PlanRequest:
    req = db.scalar(select(PlanRequest).where(PlanRequest.reference == reference))
    if req is None:
        raise not_found("该还款计划申请", "Repayment-plan request")
    return req


def _next_reference(db: Session, day: date) -> str:
    return records.next_reference(db, PlanRequest.reference, "RP", day)


def request_out(db: Session, rules: BusinessRules, req: PlanRequest) -> PlanRequestOut:
    loan_no = db.scalar(select(Loan.loan_no).where(Loan.id == req.loan_id))
    channel, _, external = req.conversation.partition(":")
    return PlanRequestOut(
        id=req.id, reference=req.reference, loan_id=req.loan_id, loan_no_last4=loan_no[-4:],
        customer_id=req.customer_id,
        conversation_masked=f"{channel}:{accounts._mask_external(Channel(channel), external)}",
        channel=req.channel.value, reason_category=req.reason_category.value,
        reason_label=PLAN_REASON_LABELS[req.reason_category], reason_text=req.reason_text,
        plan_type=req.plan_type.value, plan_type_label=PLAN_TYPE_LABELS[req.plan_type], months=req.months,
        amount=req.amount, status=req.status.value, status_label=PLAN_STATUS_LABELS[req.status],
        needs_staff_review=req.needs_staff_review, staff_review_reasons=list(req.staff_review_reasons or []),
        requires_supervisor=req.amount > rules.repayment_plans.supervisor_approval_above,
        submitted_on=req.submitted_on, decision_due_on=req.decision_due_on,
        created_at=_local(req.created_at, rules), reviewer=req.reviewer,
        review_started_at=_local(req.review_started_at, rules), decided_by=req.decided_by,
        decided_at=_local(req.decided_at, rules), decision_reason=req.decision_reason,
        withdrawn_at=_local(req.withdrawn_at, rules), quote=PlanFiguresOut.model_validate(req.quote),
        approved_quote=PlanFiguresOut.model_validate(req.approved_quote) if req.approved_quote else None,
    )


def submit(db: Session, rules: BusinessRules, data: PlanRequestIn, today: date, now: datetime,
           actor: str) -> PlanRequest:
    """Store the request the borrower confirmed; eligibility is checked again (refused with the first reason)."""
    accounts.get_customer(db, data.customer_id)
    loan = accounts.get_loan(db, data.loan_id)
    if loan.customer_id != data.customer_id:
        raise not_found("该客户名下的这笔借款", "Loan of this customer")
    plan_type = PlanType(data.plan_type)
    months = None if plan_type == PlanType.waiver else data.months
    a = assess(db, rules, loan, plan_type, months, today)
    if a.refusals:
        raise a.refusals[0]
    now = _local(now, rules)
    figures = a.plan.figures()
    for _ in range(REFERENCE_TRIES):
        req = PlanRequest(
            reference=_next_reference(db, today), loan_id=loan.id, customer_id=data.customer_id,
            conversation=data.conversation, channel=Channel(data.channel),
            reason_category=PlanReason(data.reason_category),
            reason_text=mask_numbers(data.reason_text) if data.reason_text else None,
            plan_type=plan_type, months=months, amount=a.plan.amount, quote=figures.model_dump(mode="json"),
            status=PlanStatus.submitted, needs_staff_review=bool(a.staff_review_reasons),
            staff_review_reasons=a.staff_review_reasons, submitted_on=today,
            decision_due_on=today + timedelta(days=rules.repayment_plans.decision_days), created_at=now,
        )
        try:
            with db.begin_nested():
                db.add(req)
        except IntegrityError:
            continue  # the reference number was just taken by a concurrent request
        break
    else:
        raise AppError(409, "busy", "系统繁忙，请稍后再试", "Could not number the request; try again")
    audit.record(db, actor, "plan_request.submitted", "plan_request", req.id, reference=req.reference,
                 loan_id=loan.id, customer_id=data.customer_id, plan_type=plan_type.value, months=months,
                 amount=str(req.amount), reason_category=data.reason_category,
                 needs_staff_review=req.needs_staff_review, channel=data.channel)
    return req


def customer_requests(db: Session, rules: BusinessRules, customer_id: int) -> list[PlanRequestOut]:
    """The customer's requests, newest first (「我的申请怎么样了」 is the first)."""
    accounts.get_customer(db, customer_id)
    reqs = db.scalars(select(PlanRequest).where(PlanRequest.customer_id == customer_id)
                      .order_by(PlanRequest.id.desc()))
    return [request_out(db, rules, r) for r in reqs]


def staff_list(db: Session, rules: BusinessRules, statuses: list[PlanStatus] | None = None,
               plan_type: PlanType | None = None, needs_staff_review: bool | None = None,
               loan_id: int | None = None) -> list[PlanRequestOut]:
    """Requests for staff, oldest first; the open ones (submitted, under review) unless statuses are given."""
    stmt = select(PlanRequest).where(PlanRequest.status.in_(statuses or LIVE))
    if plan_type is not None:
        stmt = stmt.where(PlanRequest.plan_type == plan_type)
    if needs_staff_review is not None:
        stmt = stmt.where(PlanRequest.needs_staff_review.is_(needs_staff_review))
    if loan_id is not None:
        stmt = stmt.where(PlanRequest.loan_id == loan_id)
    return [request_out(db, rules, r) for r in db.scalars(stmt.order_by(PlanRequest.id))]


# --------------------------------------------------------------------------- transitions

_transition = records.transition


def _ended(req: PlanRequest) -> AppError:
    label = PLAN_STATUS_LABELS[req.status]
    return AppError(409, "request_ended", f"该申请已结束（{label}），不能再更改",
                    f"The request has already ended ({req.status.value})")


def withdraw(db: Session, rules: BusinessRules, reference: str, customer_id: int, now: datetime,
             actor: str) -> PlanRequest:
    """The borrower withdraws their request while it is submitted or under review."""
    req = get_request(db, reference)
    if req.customer_id != customer_id:
        raise not_found("该还款计划申请", "Repayment-plan request")
    before = req.status
    if not _transition(db, req, PlanRequest.status.in_(LIVE), status=PlanStatus.withdrawn,
                       withdrawn_at=_local(now, rules)):
        raise _ended(req)
    audit.record(db, actor, "plan_request.withdrawn", "plan_request", req.id, reference=req.reference,
                 from_status=before.value, customer_id=customer_id)
    return req


def start_review(db: Session, rules: BusinessRules, reference: str, by: str, now: datetime, via: str) -> PlanRequest:
    req = get_request(db, reference)
    if not _transition(db, req, PlanRequest.status == PlanStatus.submitted, status=PlanStatus.under_review,
                       reviewer=by, review_started_at=_local(now, rules)):
        if req.status == PlanStatus.under_review:
            raise AppError(409, "already_under_review", "该申请已在审核中", "The request is already under review")
        raise _ended(req)
    audit.record(db, by, "plan_request.review_started", "plan_request", req.id, reference=req.reference, via=via)
    return req


def _not_under_review(req: PlanRequest) -> AppError:
    if req.status == PlanStatus.submitted:
        return AppError(409, "not_under_review", "请先开始审核该申请", "Start the review before deciding")
    return _ended(req)


def _supervisor_required(rules: BusinessRules) -> AppError:
    limit = rules.repayment_plans.supervisor_approval_above
    return AppError(403, "supervisor_required", f"金额超过{limit}元的还款计划需由主管批准",
                    f"Plans above {limit} yuan need a supervisor's approval")


def approve(db: Session, rules: BusinessRules, reference: str, by: str, role: str, note: str | None,
            today: date, now: datetime, via: str) -> PlanRequest:
    """Approve and apply the plan, recomputed for today (see the module docstring)."""
    req = get_request(db, reference)
    if req.status != PlanStatus.under_review:
        raise _not_under_review(req)
    limit = rules.repayment_plans.supervisor_approval_above
    if req.amount > limit and role != "supervisor":
        raise _supervisor_required(rules)
    loan = accounts.get_loan(db, req.loan_id)
    a = assess(db, rules, loan, req.plan_type, req.months, today, exclude_request_id=req.id)
    if a.refusals:
        first = a.refusals[0]
        raise AppError(409, first.code, f"该申请已不符合条件：{first.message_zh}",
                       f"The request is no longer eligible: {first.message_en}")
    plan = a.plan
    if plan.amount > limit and role != "supervisor":
        raise _supervisor_required(rules)
    note = mask_numbers(note) if note and note.strip() else None
    if not _transition(db, req, PlanRequest.status == PlanStatus.under_review, status=PlanStatus.approved,
                       decided_by=by, decided_role=role, decided_at=_local(now, rules), decided_on=today,
                       decision_reason=note, approved_quote=plan.figures().model_dump(mode="json")):
        raise _not_under_review(req)
    replaced = apply_plan(db, rules, loan, plan)
    audit.record(db, by, "plan_request.approved", "plan_request", req.id, reference=req.reference,
                 loan_id=loan.id, plan_type=req.plan_type.value, months=req.months, role=role,
                 amount=str(plan.amount), quoted_amount=str(PlanFiguresOut.model_validate(req.quote).amount),
                 replaced_instalments=replaced, new_instalments=len(plan.rows), loan_status=loan.status.value,
                 via=via)
    return req


def reject(db: Session, rules: BusinessRules, reference: str, by: str, role: str, reason: str, today: date,
           now: datetime, via: str) -> PlanRequest:
    req = get_request(db, reference)
    if not reason.strip():
        raise AppError(422, "reason_required", "拒绝申请必须填写原因", "A rejection needs a reason")
    reason = mask_numbers(reason)
    if not _transition(db, req, PlanRequest.status == PlanStatus.under_review, status=PlanStatus.rejected,
                       decided_by=by, decided_role=role, decided_at=_local(now, rules), decided_on=today,
                       decision_reason=reason):
        raise _not_under_review(req)
    audit.record(db, by, "plan_request.rejected", "plan_request", req.id, reference=req.reference,
                 loan_id=req.loan_id, role=role, via=via)
    return req


# --------------------------------------------------------------------------- applying a plan

def apply_plan(db: Session, rules: BusinessRules, loan: Loan, plan: Plan) -> list[int]:
    """Change the loan's schedule as the plan says; returns the replaced instalment numbers."""
    as_of = plan.as_of
    if plan.plan_type == PlanType.waiver:
        pos = position(loan, rules, as_of)
        for r in pos.rows:
            inst = r.instalment
            if plan.waived_fees > 0 and inst.fee != inst.paid_fee:
                inst.fee = inst.paid_fee
            if plan.waived_penalty > 0 and r.penalty_due > 0:
                inst.penalty_charged = inst.paid_penalty
                if r.days_past_due > 0:
                    inst.penalty_accrued_to = as_of  # accrual on principal still overdue restarts today
        refresh_loan_status(loan, as_of)
        db.flush()
        return []

    replaced = set(plan.replaced_seqs)
    for inst in list(loan.instalments):
        if inst.seq not in replaced:
            continue
        if inst.paid_principal + inst.paid_interest + inst.paid_fee + inst.paid_penalty > 0:
            # Keep what was paid as the record of the payment; the rest is in the plan.
            inst.principal, inst.interest, inst.fee = inst.paid_principal, inst.paid_interest, inst.paid_fee
            inst.penalty_charged = inst.paid_penalty
            inst.settled_on = as_of
        else:
            loan.instalments.remove(inst)  # delete-orphan
    db.flush()  # deletes before the inserts below (sequence numbers are unique per loan)
    seq = max((i.seq for i in loan.instalments), default=0)
    for row in plan.rows:
        seq += 1
        loan.instalments.append(Instalment(seq=seq, due_date=row.due_date, principal=row.principal,
                                           interest=row.interest, fee=row.fee))
    loan.status = LoanStatus.restructured
    refresh_loan_status(loan, as_of)
    db.flush()
    return sorted(replaced)
