"""Every enumeration of the system of record, in one place: the ORM models, the API schemas
(``literal(...)``), the business-rules validation (backend.core.config) and the bot's contract file
(config/contract.json, written by ``python -m backend.cli contract``) take their values from here.

Their Chinese labels, as staff and borrowers read them, are in texts/zh/labels.yml
(``texts.label("<enum>", value)``; LABELLED names the catalogue key of each enum).
The values are stored as they are (backend.models.base.StrEnum): renaming one needs a migration.
"""
from __future__ import annotations

import enum
from typing import Any, Literal

import texts


class Channel(str, enum.Enum):
    wechat = "wechat"
    sms = "sms"
    web = "web"


class IdentityStatus(str, enum.Enum):
    active = "active"
    inactive = "inactive"  # e.g. unsubscribed from the WeChat account
    wrong_person = "wrong_person"  # the person on this channel said they are not the borrower


class LoanStatus(str, enum.Enum):
    active = "active"
    overdue = "overdue"
    settled = "settled"
    restructured = "restructured"


class InstalmentStatus(str, enum.Enum):
    pending = "pending"
    partial = "partial"
    paid = "paid"
    overdue = "overdue"


class PromiseStatus(str, enum.Enum):
    open = "open"
    kept = "kept"
    broken = "broken"
    cancelled = "cancelled"


class SettlementIntentStatus(str, enum.Enum):
    recorded = "recorded"  # 已登记
    cancelled = "cancelled"  # replaced by a later intent for the same loan


class HandoffReason(str, enum.Enum):
    request_human = "request_human"  # the customer asked for a person
    repeated_fallback = "repeated_fallback"  # the bot did not understand several times in a row
    complaint_high = "complaint_high"  # a serious complaint
    distress = "distress"  # hardship or distress signals
    vip_plan = "vip_plan"  # a VIP customer asking about a repayment plan
    plan_review = "plan_review"  # a repayment plan request that needs a person's decision


class HandoffStatus(str, enum.Enum):
    open = "open"  # waiting in the queue
    claimed = "claimed"  # a staff member has taken it
    closed = "closed"


class StaffRole(str, enum.Enum):
    agent = "agent"
    supervisor = "supervisor"


class ComplaintCategory(str, enum.Enum):
    collection = "collection"  # 催收方式
    fees = "fees"  # 费用争议
    service = "service"  # 服务态度
    wrong_info = "wrong_info"  # 信息错误
    privacy = "privacy"  # 隐私
    other = "other"  # 其他


class ComplaintStatus(str, enum.Enum):
    draft = "draft"  # 草稿: started in chat, not submitted (cancelled, expired, handed to a person); live
    received = "received"  # 已受理
    in_progress = "in_progress"  # 处理中
    resolved = "resolved"  # 已解决 (final, with a resolution)
    closed = "closed"  # 已关闭 (final, ended without a resolution: withdrawn, out of scope ...)


class ComplaintPriority(str, enum.Enum):
    high = "high"
    normal = "normal"


class ComplaintEventKind(str, enum.Enum):
    opened = "opened"
    drafted = "drafted"  # an unfinished complaint kept as a draft (its words in the note)
    completed = "completed"  # the borrower later filed it in full: the draft became a received ticket
    follow_up = "follow_up"  # a linked complaint added to this open ticket instead of a duplicate
    started = "started"
    resolved = "resolved"
    closed = "closed"
    extended = "extended"
    priority_raised = "priority_raised"
    reminders_paused = "reminders_paused"
    reminders_cleared = "reminders_cleared"


class PlanType(str, enum.Enum):
    instalment = "instalment"  # 分期: the outstanding amount over N new monthly instalments
    deferral = "deferral"  # 延期: the next 1-6 instalments moved to the end
    waiver = "waiver"  # 减免: penalty interest and fees waived


class PlanReason(str, enum.Enum):
    unemployment = "unemployment"  # 失业
    income_drop = "income_drop"  # 收入下降
    illness = "illness"  # 疾病或意外
    family = "family"  # 家庭变故
    other = "other"  # 其他


class PlanStatus(str, enum.Enum):
    submitted = "submitted"  # 已提交
    under_review = "under_review"  # 审核中
    approved = "approved"  # 已批准 (final; the loan's schedule was replaced)
    rejected = "rejected"  # 未批准 (final, with a reason)
    withdrawn = "withdrawn"  # 已撤回 (final, by the borrower)


class ReviewSource(str, enum.Enum):
    fallback = "fallback"  # the NLU fell back (nlu_fallback): too unsure, or two intents too close
    low_confidence = "low_confidence"  # answered, but the top intent scored under nlu_review.review_below
    staff_flag = "staff_flag"  # a staff member marked the message in a transcript as misunderstood


class ReviewStatus(str, enum.Enum):
    open = "open"  # 待审核
    confirmed = "confirmed"  # 已确认: the predicted intent was right
    corrected = "corrected"  # 已更正: another intent of the contract
    dismissed = "dismissed"  # 已忽略: not a borrower intent (noise), never exported


class RiskTier(str, enum.Enum):
    """Customer.risk_tier (a plain string column: the tiers config/business.yml ``segments`` names)."""
    low = "low"
    medium = "medium"
    high = "high"


class ValueTier(str, enum.Enum):
    """Customer.value_tier (a plain string column: the tiers config/business.yml ``segments`` names)."""
    basic = "basic"
    standard = "standard"
    vip = "vip"



class OutreachKind(str, enum.Enum):
    due_in_3_days = "due_in_3_days"
    due_in_1_day = "due_in_1_day"
    due_today = "due_today"
    overdue_1 = "overdue_1"
    overdue_3 = "overdue_3"
    overdue_7 = "overdue_7"
    overdue_15 = "overdue_15"
    overdue_30 = "overdue_30"
    hardship_offer = "hardship_offer"
    promise_reminder = "promise_reminder"
    csat_followup = "csat_followup"
    plan_decision = "plan_decision"
    complaint_update = "complaint_update"


class OutreachStatus(str, enum.Enum):
    planned = "planned"  # waiting for next_attempt_at
    sending = "sending"  # claimed by a dispatcher (claimed_by); Rasa may be working on it
    sent = "sent"
    skipped = "skipped"  # a rule said never (last_error holds the rule)
    failed = "failed"  # permanent failure after the retries
    expired = "expired"  # not sendable while it still mattered


class OutboxStatus(str, enum.Enum):
    queued = "queued"  # written (a decision: with the decision); waits for its notice's rules and channel
    sending = "sending"  # handed to Rasa by the worker holding the notice's claim
    sent = "sent"  # in the conversation's tracker, out on the channel
    failed = "failed"  # the notice gave up (permanent failure, expired, skipped): never sent


# Requests still waiting for a decision (the borrower may withdraw a plan request; a live complaint
# counts against its deadline and takes follow-ups).
PLAN_LIVE = (PlanStatus.submitted, PlanStatus.under_review)
COMPLAINT_LIVE = (ComplaintStatus.draft, ComplaintStatus.received, ComplaintStatus.in_progress)

# A mainland mobile number as borrowers type it, optionally with +86 (API inputs and the bot).
PHONE_PATTERN = r"^(\+86)?1[3-9][0-9]{9}$"

# Catalogue name (texts/zh/labels.yml, ``labels.<name>.<value>``) of every enum staff or borrowers see.
LABELLED: dict[str, type[enum.Enum]] = {
    "channel": Channel, "identity_status": IdentityStatus, "loan_status": LoanStatus,
    "instalment_status": InstalmentStatus, "promise_status": PromiseStatus, "handoff_reason": HandoffReason,
    "handoff_status": HandoffStatus, "staff_role": StaffRole, "complaint_category": ComplaintCategory,
    "complaint_status": ComplaintStatus, "complaint_priority": ComplaintPriority,
    "complaint_event": ComplaintEventKind, "plan_type": PlanType, "plan_reason": PlanReason,
    "plan_status": PlanStatus, "review_source": ReviewSource, "review_status": ReviewStatus,
    "risk_tier": RiskTier, "value_tier": ValueTier,
}

# The enums the bot side reads from config/contract.json (by the same names).
CONTRACT: tuple[str, ...] = (
    "channel", "handoff_reason", "handoff_status", "complaint_category", "complaint_status", "complaint_priority",
    "plan_type", "plan_reason", "plan_status", "loan_status", "promise_status",
)


def values(enum_cls: type[enum.Enum]) -> tuple[str, ...]:
    return tuple(m.value for m in enum_cls)


def literal(enum_cls: type[enum.Enum]) -> Any:
    """``Literal["a", "b", ...]`` of the enum's values, for pydantic fields that stay plain strings."""
    return Literal[values(enum_cls)]


def labels(name: str) -> dict[Any, str]:
    """Every member of the enum LABELLED[name] with its Chinese label (texts/zh/labels.yml)."""
    return {m: texts.label(name, m.value) for m in LABELLED[name]}


def label_table() -> dict[str, dict[str, str]]:
    """Every label of texts/zh/labels.yml as {enum: {value: label}} (what the console pages embed)."""
    out: dict[str, dict[str, str]] = {}
    for key, label in texts.section("labels").items():
        name, _, value = key.partition(".")
        out.setdefault(name, {})[value] = label
    return out


def contract() -> dict[str, Any]:
    """What config/contract.json holds: the values of the enums the bot uses and the phone pattern."""
    return {
        "generated_by": "python -m backend.cli contract (from backend/models/enums.py); do not edit",
        "enums": {name: list(values(LABELLED[name])) for name in CONTRACT},
        "live": {"plan_status": [s.value for s in PLAN_LIVE], "complaint_status": [s.value for s in COMPLAINT_LIVE]},
        "phone_pattern": PHONE_PATTERN,
    }
