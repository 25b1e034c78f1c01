"""Shapes of the staff console's JSON endpoints (backend/api/routes/console.py), as its script reads them.

The console models forbid keys they do not declare and declare no defaults, except where a key is
present only sometimes (a transcript turn's ``ts`` and ``staff``; those endpoints leave unset keys
out), so a response has exactly the keys the service builds: a new key is added here first. The
models of the service API (HandoffOut, PlanRequestOut, ComplaintDetailOut ...) are reused as they are.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from backend.plan_schemas import PlanRequestOut
from backend.schemas import (
    ComplaintCustomerOut, ComplaintDetailOut, ComplaintStatusName, HandoffCustomerOut, HandoffNoteOut, HandoffOut,
    HandoffQueueItem,
)


class _Exact(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- cases

class QueueOut(_Exact):
    cases: list[HandoffQueueItem]
    target_minutes: int


class TranscriptTurn(_Exact):
    who: str  # borrower, bot, staff, system
    text: str  # masked
    at: str  # ISO time in the business timezone, to the second
    ts: int | float | None = None  # borrower turns: Rasa's timestamp of the event (「标记理解有误」 sends it back)
    staff: str | None = None  # staff turns: who wrote it


class PanelLoanOut(_Exact):
    loan_no_last4: str
    product_name: str
    status: str
    total_outstanding: Decimal
    amount_due: Decimal
    next_due_date: date | None
    days_past_due: int
    penalty_interest: Decimal


class PanelPromiseOut(_Exact):
    promised_date: date
    amount: Decimal


class PanelSettlementOut(_Exact):
    loan_no_last4: str
    settle_on: date
    total: Decimal
    recorded_on: date


class PanelPlanOut(_Exact):
    reference: str
    plan_type: str
    plan_type_label: str
    months: int | None
    status: str
    status_label: str
    submitted_on: date


class PanelComplaintOut(_Exact):
    reference: str
    category: str
    category_label: str
    other_categories: list[str]
    other_category_labels: list[str]
    status: str
    status_label: str
    priority: str
    due_date: date


class CustomerPanelOut(_Exact):
    name: str  # masked: the first character
    phone_masked: str
    id_last4: str
    card: str | None
    risk_tier: str | None
    value_tier: str | None
    preferred_channel: str
    loans: list[PanelLoanOut]
    promises: list[PanelPromiseOut]
    settlement_intents: list[PanelSettlementOut]
    plan_requests: list[PanelPlanOut]
    complaints: list[PanelComplaintOut]


class CaseDetailOut(_Exact):
    case: HandoffOut
    notes: list[HandoffNoteOut]
    customer: CustomerPanelOut | None
    transcript: list[TranscriptTurn] | None
    transcript_error: str | None  # Chinese, when the conversation store could not answer
    mine: bool


class TranscriptOut(_Exact):
    status: str
    assigned_to: str | None
    transcript: list[TranscriptTurn]


class StaffMemberOut(_Exact):
    username: str
    name: str
    role: str


class CannedReplyOut(_Exact):
    id: int
    title: str
    text: str


# --------------------------------------------------------------------------- dashboard

class DashboardPeriodOut(_Exact):
    days: int
    start: date
    end: date
    timezone: str


class DashboardDayOut(_Exact):
    date: date
    wechat: int  # one count per channel (backend.models.Channel)
    sms: int
    web: int
    total: int


class ContainmentOut(_Exact):
    conversations: int
    handed_off: int
    contained_share: float | None


class FirstResponseOut(_Exact):
    answered: int
    median_seconds: float | None
    p90_seconds: float | None


class CsatOut(_Exact):
    rated: int
    average: float | None
    distribution: dict[str, int]  # "1".."5"


class RemindersOut(BaseModel):
    """backend.services.outreach.summary.reminders (its owner may add counts: kept as they come)."""
    model_config = ConfigDict(extra="allow")

    sent: int
    answered: int
    failed: int
    available: bool


class PromisesOut(_Exact):
    open: int
    kept: int
    broken: int
    cancelled: int
    kept_share: float | None


class DueBucketsOut(_Exact):
    overdue: int
    within_3_days: int
    within_7_days: int
    within_15_days: int
    later: int


class DashboardComplaintsOut(_Exact):
    received: int
    decision_days: int
    open: int
    overdue: int
    due_buckets: DueBucketsOut
    resolved: int
    resolved_within_deadline: int
    resolved_within_deadline_share: float | None


class QualityComponentOut(_Exact):
    value: float | None
    score: float | None
    weight: float
    applied_weight: float | None


class ServiceQualityOut(_Exact):
    score: float | None
    components: dict[str, QualityComponentOut]  # response_time, resolution_rate, satisfaction, complaint_rate


class DashboardOut(_Exact):
    period: DashboardPeriodOut
    conversations_per_day: list[DashboardDayOut]
    containment: ContainmentOut
    handoff_reasons: dict[str, int]  # every HandoffReason value
    first_response: FirstResponseOut
    csat: CsatOut
    reminders: RemindersOut
    promises: PromisesOut
    complaints: DashboardComplaintsOut
    service_quality: ServiceQualityOut


# --------------------------------------------------------------------------- repayment-plan requests

class PlanRowOut(_Exact):
    reference: str
    customer: HandoffCustomerOut | None
    loan_no_last4: str
    plan_type: str
    plan_type_label: str
    months: int | None
    monthly_amount: Decimal | None
    amount: Decimal
    submitted_on: date
    decision_due_on: date
    status: str
    status_label: str
    needs_staff_review: bool
    requires_supervisor: bool


class PlanListOut(_Exact):
    requests: list[PlanRowOut]
    supervisor_approval_above: Decimal


class PlanDetailOut(PlanRequestOut):
    model_config = ConfigDict(extra="forbid")

    customer: HandoffCustomerOut | None
    supervisor_approval_above: Decimal
    can_approve: bool


# --------------------------------------------------------------------------- complaint tickets

class ComplaintRowOut(_Exact):
    """A list row: the fields backend.services.console.LIST_FIELDS names."""
    reference: str
    customer: ComplaintCustomerOut | None
    channel: str
    category: str
    category_label: str
    other_categories: list[str]
    other_category_labels: list[str]
    status: ComplaintStatusName
    status_label: str
    priority: str
    distress: bool
    received_at: datetime
    due_at: datetime
    due_date: date
    extended: bool
    linked_to: str | None
    pauses_reminders: bool
    seconds_remaining: int | None
    overdue: bool
    last_update: str
    last_update_at: datetime


class ComplaintListOut(_Exact):
    tickets: list[ComplaintRowOut]
    decision_days: int


class ConsoleComplaintOut(ComplaintDetailOut):
    model_config = ConfigDict(extra="forbid")

    customer: ComplaintCustomerOut | None
    seconds_remaining: int | None
    overdue: bool
    max_total_days: int
