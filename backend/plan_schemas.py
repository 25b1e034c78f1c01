"""API shapes of repayment-plan requests (backend.services.plans). Amounts are Decimals serialised
as strings ("470.73"); dates ISO. Kept apart from backend/schemas.py only to keep that file small."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.models.enums import PlanReason, PlanStatus, PlanType, literal
from backend.schemas import ChannelName

PlanTypeName = literal(PlanType)
PlanReasonName = literal(PlanReason)
PlanStatusName = literal(PlanStatus)


class PlanRowOut(BaseModel):
    """One instalment of a plan's new schedule (seq counts within the plan, 1..n)."""

    seq: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal  # 分期: the carried arrears (past-due interest, fees, penalty interest) spread interest-free
    total: Decimal


class DeferredOut(BaseModel):
    seq: int  # the instalment's number in the loan's current schedule
    due_date: date
    new_due_date: date
    amount: Decimal


class PlanFiguresOut(BaseModel):
    """An indicative plan, computed as of ``as_of`` (see backend.services.plans for the formulas)."""

    plan_type: PlanTypeName
    months: int | None
    as_of: date
    annual_rate: Decimal
    outstanding_principal: Decimal
    # 分期: what the new schedule carries besides the principal, interest-free.
    carried_interest: Decimal
    carried_fees: Decimal
    carried_penalty_interest: Decimal
    carried_total: Decimal
    amount: Decimal  # restructured (分期: principal + carried), deferred (延期) or waived (减免)
    monthly_amount: Decimal | None  # the first instalment of the new schedule
    instalments: int  # in the new schedule (0 for a waiver)
    total_interest: Decimal  # contract interest in the new schedule
    total_repayable: Decimal  # sum of the new schedule (减免: what is still owed after the waiver)
    first_due_date: date | None
    last_due_date: date | None
    total_term_months: int | None  # loan start to the last due date
    waived_penalty_interest: Decimal
    waived_fees: Decimal
    waived_amount: Decimal
    deferred: list[DeferredOut]
    schedule: list[PlanRowOut]


class PlanRefusalOut(BaseModel):
    code: str
    message_zh: str
    message_en: str


class PlanQuoteOut(BaseModel):
    """Eligibility and, when eligible, the indicative plan (nothing is stored)."""

    loan_id: int
    plan_type: PlanTypeName
    months: int | None
    as_of: date
    eligible: bool
    refusals: list[PlanRefusalOut]  # every rule the request breaks, most fundamental first
    needs_staff_review: bool  # beyond a staff-review threshold: staff review instead of the automatic pre-check
    staff_review_reasons: list[str]  # outstanding_principal_above / days_past_due_above
    requires_supervisor: bool  # approval needs a supervisor (amount above supervisor_approval_above)
    decision_days: int  # the borrower can expect an answer within this many days
    quote: PlanFiguresOut | None  # None when not eligible


class PlanRequestIn(BaseModel):
    """A plan request the borrower confirmed in chat."""

    model_config = ConfigDict(extra="forbid")

    conversation: str = Field(min_length=3, max_length=100)  # Rasa sender id "<channel>:<external id>"
    channel: ChannelName
    customer_id: int = Field(gt=0)
    loan_id: int = Field(gt=0)
    reason_category: PlanReasonName
    reason_text: str | None = Field(default=None, max_length=1000)  # free text; masked before it is stored
    plan_type: PlanTypeName
    months: int | None = Field(default=None, ge=1, le=600)  # required for instalment and deferral

    @model_validator(mode="after")
    def _check(self) -> "PlanRequestIn":
        prefix = f"{self.channel}:"
        if not self.conversation.startswith(prefix) or len(self.conversation) == len(prefix):
            raise ValueError('conversation must be "<channel>:<external id>" on the given channel')
        return self


class PlanRequestOut(BaseModel):
    id: int
    reference: str
    loan_id: int
    loan_no_last4: str
    customer_id: int
    conversation_masked: str
    channel: str
    reason_category: PlanReasonName
    reason_label: str  # 失业 / 收入下降 / 疾病或意外 / 家庭变故 / 其他
    reason_text: str | None
    plan_type: PlanTypeName
    plan_type_label: str  # 分期 / 延期 / 减免
    months: int | None
    amount: Decimal
    status: PlanStatusName
    status_label: str  # 已提交 / 审核中 / 已批准 / 未批准 / 已撤回
    needs_staff_review: bool
    staff_review_reasons: list[str]
    requires_supervisor: bool
    submitted_on: date
    decision_due_on: date
    created_at: datetime
    reviewer: str | None
    review_started_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    withdrawn_at: datetime | None
    quote: PlanFiguresOut  # as the borrower confirmed it
    approved_quote: PlanFiguresOut | None  # as applied to the loan on approval


class PlanWithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(gt=0)  # the borrower withdrawing; must own the request





