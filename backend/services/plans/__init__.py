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

Modules: figures (the arithmetic), eligibility (assess), shaping (API and console shapes), requests
(quote, submission, lists), transitions (the state machine), apply (changing the schedule). Every
name is re-exported here: ``from backend.services import plans; plans.approve(...)``.
"""
from __future__ import annotations

from backend.core.errors import AppError

from ..ledger import position
from ..money import add_months, amortize
from .apply import apply_plan
from .eligibility import LIVE, Assessment, assess, parse_plan_type
from .figures import Plan, PlanRow, deferral_plan, instalment_plan, months_between, spread, upcoming_rows, waiver_plan
from .requests import REFERENCE_TRIES, customer_requests, get_request, quote, staff_list, submit
from .shaping import _local, quote_out, request_out
from .transitions import approve, reject, start_review, withdraw

__all__ = [
    "LIVE", "REFERENCE_TRIES", "AppError", "Assessment", "Plan", "PlanRow", "add_months", "amortize", "apply_plan",
    "assess", "customer_requests", "deferral_plan", "get_request", "instalment_plan", "months_between",
    "parse_plan_type", "position", "quote", "quote_out", "reject", "request_out", "spread", "staff_list",
    "start_review", "submit", "upcoming_rows", "waiver_plan", "approve", "withdraw", "_local",
]
