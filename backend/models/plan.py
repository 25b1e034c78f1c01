"""Repayment-plan (hardship) requests (还款计划申请): 分期, 延期 or 减免, decided by staff.

The quote the borrower saw is stored with the request (``quote``, JSON with decimals as strings);
the plan actually applied on approval, recomputed for the approval date, is ``approved_quote``.
The formulas and the eligibility rules: backend.services.plans.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.crypto import TokenizedConversation

from .base import AwareDateTime, Base, Money, StrEnum
from .customer import Channel
from .enums import PlanReason, PlanStatus, PlanType, labels

# Chinese labels: texts/zh/labels.yml
PLAN_TYPE_LABELS = labels("plan_type")
PLAN_REASON_LABELS = labels("plan_reason")
PLAN_STATUS_LABELS = labels("plan_status")


class PlanRequest(Base):
    __tablename__ = "plan_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # RP20261122-0042 (business date, daily number)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    conversation: Mapped[str] = mapped_column(TokenizedConversation(100), index=True)  # Rasa sender id "<channel>:<external id>"
    channel: Mapped[Channel] = mapped_column(StrEnum(Channel, "channel"))
    reason_category: Mapped[PlanReason] = mapped_column(StrEnum(PlanReason, "plan_reason"))
    reason_text: Mapped[str | None] = mapped_column(Text)  # the borrower's words, masked before they are stored
    plan_type: Mapped[PlanType] = mapped_column(StrEnum(PlanType, "plan_type"))
    months: Mapped[int | None] = mapped_column(Integer)  # instalments (分期) or instalments deferred (延期)
    # What the plan concerns: restructured (分期), deferred (延期) or waived (减免); decides supervisor approval.
    amount: Mapped[Decimal] = mapped_column(Money())
    quote: Mapped[dict] = mapped_column(JSON)  # the figures the borrower confirmed (PlanFiguresOut, decimals as strings)
    approved_quote: Mapped[dict | None] = mapped_column(JSON)  # the figures applied on approval
    status: Mapped[PlanStatus] = mapped_column(StrEnum(PlanStatus, "plan_request_status"), index=True)
    needs_staff_review: Mapped[bool] = mapped_column(Boolean, default=False)
    staff_review_reasons: Mapped[list] = mapped_column(JSON, default=list)  # threshold codes
    submitted_on: Mapped[date] = mapped_column(Date, index=True)  # business date
    decision_due_on: Mapped[date] = mapped_column(Date)  # submitted_on + repayment_plans.decision_days
    reviewer: Mapped[str | None] = mapped_column(String(50))  # staff username who started the review
    review_started_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(50))  # staff username (approve / reject)
    decided_role: Mapped[str | None] = mapped_column(String(20))  # agent / supervisor
    decided_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    decided_on: Mapped[date | None] = mapped_column(Date, index=True)  # business date of the decision
    decision_reason: Mapped[str | None] = mapped_column(Text)  # masked; required to reject, told to the borrower
    withdrawn_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
