"""API shapes. Amounts are Decimals serialised as strings ("2500.00") so JSON never rounds them."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from backend.models.enums import (
    PHONE_PATTERN, Channel, ComplaintCategory, ComplaintPriority, ComplaintStatus, HandoffReason, HandoffStatus,
    SettlementIntentStatus, literal,
)

# Enum values as plain-string pydantic types (the values: backend/models/enums.py).
ChannelName = literal(Channel)


class CustomerOut(BaseModel):
    id: int
    name: str
    phone_masked: str
    id_last4: str
    preferred_channel: str
    consent_reminders: bool
    consent_marketing: bool
    card_bank: str | None
    card_last4: str | None
    risk_tier: str
    value_tier: str


class IdentityOut(BaseModel):
    channel: str
    external_id_masked: str
    customer_id: int | None
    verified: bool
    status: str
    opted_out: bool = False
    last_inbound_at: datetime | None = None
    customer: CustomerOut | None


class LoanSummary(BaseModel):
    id: int
    loan_no_last4: str
    product: str
    product_name: str
    principal: Decimal
    annual_rate: Decimal
    term_months: int
    start_date: date
    status: str
    as_of: date
    outstanding_principal: Decimal
    outstanding_interest: Decimal
    outstanding_fees: Decimal
    total_outstanding: Decimal
    amount_due: Decimal
    next_due_date: date | None
    next_instalment_amount: Decimal | None
    overdue_amount: Decimal
    days_past_due: int
    penalty_interest: Decimal
    instalments_remaining: int
    # The day the loan was paid off (the payment that brought the balance to zero); null unless settled.
    settled_on: date | None = None


class InstalmentOut(BaseModel):
    seq: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    total: Decimal
    paid_amount: Decimal
    penalty_interest: Decimal
    amount_outstanding: Decimal
    days_past_due: int
    status: str


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    amount: Decimal
    paid_on: date
    method: str
    reference: str


class OverdueOut(BaseModel):
    loan_id: int
    as_of: date
    is_overdue: bool
    days_past_due: int
    overdue_instalments: int
    overdue_principal: Decimal
    overdue_interest: Decimal
    penalty_interest: Decimal
    overdue_amount: Decimal


class PayoffOut(BaseModel):
    loan_id: int
    settle_on: date
    principal: Decimal
    interest: Decimal
    penalty_interest: Decimal
    fees: Decimal
    early_settlement_fee: Decimal
    total: Decimal


class SettlementIntentIn(BaseModel):
    """The borrower confirmed in chat that they intend to settle the loan early on ``settle_on``.
    No amount: the backend computes the payoff itself."""

    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(gt=0)
    conversation: str = Field(min_length=3, max_length=100)  # Rasa sender id "<channel>:<external id>"
    channel: ChannelName
    settle_on: date

    @model_validator(mode="after")
    def _check(self) -> "SettlementIntentIn":
        prefix = f"{self.channel}:"
        if not self.conversation.startswith(prefix) or len(self.conversation) == len(prefix):
            raise ValueError('conversation must be "<channel>:<external id>" on the given channel')
        return self


class SettlementIntentOut(BaseModel):
    id: int
    loan_id: int
    loan_no_last4: str
    customer_id: int
    channel: str
    status: literal(SettlementIntentStatus)
    settle_on: date
    total: Decimal  # the payoff for settle_on, as computed when the intent was recorded
    quote: PayoffOut
    quoted_on: date
    created_at: datetime


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    paid_on: date | None = None
    method: Literal["bank_transfer", "auto_debit", "wechat_pay", "alipay", "counter"]
    reference: str = Field(min_length=4, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")


class PaymentResult(BaseModel):
    payment: PaymentOut
    allocation: dict[str, Decimal]
    loan: LoanSummary


class VerificationStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation: str = Field(min_length=3, max_length=100)
    phone: str = Field(pattern=PHONE_PATTERN)
    id_last4: str = Field(pattern=r"^[0-9]{3}[0-9Xx]$")


class VerificationCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation: str = Field(min_length=3, max_length=100)
    code: str = Field(pattern=r"^[0-9]{6}$")


class VerificationOut(BaseModel):
    status: Literal["sent", "not_matched", "locked", "no_code", "expired", "wrong_code", "verified"]
    phone_masked: str | None = None
    customer_id: int | None = None
    attempts_left: int | None = None
    locked_until: str | None = None
    expires_in: int | None = None


class PromiseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    promised_date: date
    amount: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)
    channel: ChannelName


class PromiseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    loan_id: int
    promised_date: date
    amount: Decimal
    status: str


OWNER_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"  # a claimer's token (uuid hex)


class InboundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
    external_id: str = Field(min_length=1, max_length=64)
    key: str = Field(min_length=1, max_length=100)
    # With an owner the claim stays in progress until completed (backend.services.channels.claim_inbound).
    owner: str | None = Field(default=None, pattern=OWNER_PATTERN)


class InboundOut(BaseModel):
    first_time: bool
    identity: IdentityOut | None  # None for an anonymous web visitor
    state: Literal["claimed", "in_progress", "done"]
    owner: str | None
    attempts: int
    lease_seconds: float
    lease_until: datetime | None


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
    key: str = Field(min_length=1, max_length=100)
    owner: str = Field(pattern=OWNER_PATTERN)


class ClaimOut(BaseModel):
    state: Literal["in_progress", "done"]
    owner: str | None
    attempts: int
    lease_until: datetime | None
    owner_matched: bool | None = None


class IdentityStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "inactive"]


class BindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int


class SmsSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(pattern=r"^\+\d{8,15}$")
    body: str = Field(min_length=1, max_length=2000)
    purpose: Literal["reply", "notice"]


class LoginStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(pattern=PHONE_PATTERN)


class LoginVerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(pattern=PHONE_PATTERN)
    code: str = Field(pattern=r"^[0-9]{6}$")


class LoginOut(BaseModel):
    token: str
    expires_in: int
    sender_id: str
    name_masked: str


# --------------------------------------------------------------------------- human handoff

HandoffReasonIn = literal(HandoffReason)


class SessionIn(BaseModel):
    """A conversation session the bot started (for the dashboard's volumes and containment)."""

    model_config = ConfigDict(extra="forbid")

    conversation: str = Field(min_length=3, max_length=100)
    channel: ChannelName
    customer_id: int | None = Field(default=None, gt=0)


class HandoffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation: str = Field(min_length=3, max_length=100)
    channel: ChannelName
    customer_id: int | None = Field(default=None, gt=0)
    reason: HandoffReasonIn
    summary: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _conversation_on_channel(self) -> "HandoffIn":
        prefix = f"{self.channel}:"
        if not self.conversation.startswith(prefix) or len(self.conversation) == len(prefix):
            raise ValueError('conversation must be "<channel>:<external id>" on the given channel')
        return self


class HandoffOut(BaseModel):
    """A case as the API shows it: the conversation's external id and the summary are masked."""

    id: int
    reference: str
    conversation_masked: str
    channel: str
    customer_id: int | None
    reason: str
    priority: int
    summary: str
    status: literal(HandoffStatus)
    assigned_to: str | None
    created_at: datetime
    claimed_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None
    csat: int | None
    csat_comment: str | None


class HandoffCreatedOut(HandoffOut):
    position: int  # 1 = next in the queue; 0 once a staff member has the case
    wait_minutes: int  # an estimate, rounded up; includes the time until staff are in when outside hours
    staffed: bool
    next_staffed_at: datetime | None  # only when outside staffed hours


class HandoffCustomerOut(BaseModel):
    id: int
    name_masked: str
    phone_masked: str


class HandoffQueueItem(HandoffOut):
    customer: HandoffCustomerOut | None
    waiting_seconds: int  # until the first human reply, or until now
    overdue: bool  # no human reply within the target, counted in staffed time








class HandoffNoteOut(BaseModel):
    id: int
    case_id: int
    author: str
    text: str
    created_at: datetime




class HandoffCsatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=5, strict=True)
    comment: str | None = Field(default=None, max_length=500)


# --------------------------------------------------------------------------- complaint tickets

ComplaintCategoryIn = literal(ComplaintCategory)
ComplaintStatusName = literal(ComplaintStatus)


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value


class ComplaintIn(BaseModel):
    """A complaint the bot collected: category, the borrower's words, what they want, how to reach them.

    ``draft``: what the bot had when the borrower left the complaint unfinished (cancelled, the form
    expired, asked for a person). A draft needs at least a category or some words; description,
    outcome and contact may be missing. A filed complaint (``draft`` false) needs the category and
    a non-blank description, as before. ``other_categories``: categories besides the main one."""

    model_config = ConfigDict(extra="forbid")

    conversation: str = Field(min_length=3, max_length=100)
    channel: ChannelName
    customer_id: int | None = Field(default=None, gt=0)
    draft: bool = False  # declared before the fields whose rules depend on it (validated in order)
    category: ComplaintCategoryIn | None = Field(default=None, validate_default=True)  # required unless a draft
    other_categories: list[ComplaintCategoryIn] = Field(default_factory=list, max_length=6)
    description: str | None = Field(default=None, max_length=4000, validate_default=True)  # verbatim
    desired_outcome: str | None = Field(default=None, max_length=1000)
    contact: str | None = Field(default=None, max_length=200)
    distress: bool = False  # the bot saw distress signals in the conversation

    @field_validator("category")
    @classmethod
    def _category_unless_draft(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and not info.data.get("draft"):
            raise ValueError("a category is required (unless draft)")
        return value

    @field_validator("description")
    @classmethod
    def _description_unless_draft(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not info.data.get("draft"):
            if value is None:
                raise ValueError("a description is required (unless draft)")
            _not_blank(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> "ComplaintIn":
        prefix = f"{self.channel}:"
        if not self.conversation.startswith(prefix) or len(self.conversation) == len(prefix):
            raise ValueError('conversation must be "<channel>:<external id>" on the given channel')
        if self.draft and self.category is None and not self.other_categories and not (self.description or "").strip():
            raise ValueError("a draft needs at least a category or some words")
        return self


class ComplaintEventOut(BaseModel):
    at: datetime
    kind: str
    label: str  # Chinese, for the borrower
    actor: str  # "customer" or a staff username
    from_status: str | None
    to_status: str | None
    channel: str | None
    note: str | None  # masked


class ComplaintOut(BaseModel):
    """A ticket as the API shows it: the borrower's text masked, Chinese labels ready for the bot."""

    id: int
    reference: str
    customer_id: int | None
    conversation_masked: str
    channel: str
    category: str
    category_label: str  # 催收方式 ...
    other_categories: list[str]  # categories besides the main one
    other_category_labels: list[str]  # their Chinese labels, in the same order
    description: str  # masked
    desired_outcome: str | None  # masked
    contact: str | None  # masked
    status: ComplaintStatusName
    status_label: str  # 草稿（客户未提交完） / 已受理 / 处理中 / 已解决 / 已关闭
    priority: literal(ComplaintPriority)
    distress: bool
    received_at: datetime
    due_at: datetime
    due_date: date  # the decision deadline as a business date, for the borrower
    extended: bool
    extension_reason: str | None
    resolution: str | None
    resolved_at: datetime | None
    closed_at: datetime | None
    linked_to: str | None  # reference of the group's first ticket
    pauses_reminders: bool
    reminders_cleared_at: datetime | None
    reminders_cleared_by: str | None
    last_update_at: datetime
    last_update: str  # Chinese label of the latest event


class ComplaintDetailOut(ComplaintOut):
    events: list[ComplaintEventOut]  # oldest first
    linked: list[str]  # the other tickets of the group, oldest first


class ComplaintOpenedOut(ComplaintDetailOut):
    # new: a new ticket; linked: a new ticket in the group of an earlier, ended one;
    # appended: added to the borrower's open ticket or draft (no new ticket; its reference is returned);
    # draft: a new draft ticket; completed_draft: the borrower's draft completed by this complaint
    # (no new ticket; the draft's reference and deadline are kept, its status becomes received).
    outcome: Literal["new", "linked", "appended", "draft", "completed_draft"]
    offer_human: bool  # high priority: the bot offers a person straight away


class ComplaintCustomerOut(BaseModel):
    id: int
    name_masked: str
    phone_masked: str


class ComplaintListItem(ComplaintOut):
    customer: ComplaintCustomerOut | None
    seconds_remaining: int | None  # to the deadline, negative once overdue; None once the ticket ended
    overdue: bool










class ReminderPauseOut(BaseModel):
    paused: bool
    references: list[str]  # the tickets holding the pause
