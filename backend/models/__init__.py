"""ORM models: the system of record. Import from here so Alembic sees every table."""
from .audit import AuditLog
from .base import Base
from .complaint import (
    ComplaintCategory,
    ComplaintEvent,
    ComplaintEventKind,
    ComplaintPriority,
    ComplaintStatus,
    ComplaintTicket,
)
from .customer import Channel, ChannelIdentity, Customer, IdentityStatus, InboundEvent
from .engagement import OtpChallenge, PromiseStatus, PromiseToPay, SmsMessage
from .handoff import HandoffCase, HandoffNote, HandoffReason, HandoffStatus
from .loan import Instalment, InstalmentStatus, Loan, LoanStatus, Payment
from .nlu_review import NluReviewItem, NluReviewOccurrence, ReviewSource, ReviewStatus
from .outreach import (
    OutboxMessage,
    OutboxStatus,
    OutreachAttempt,
    OutreachKind,
    OutreachNotice,
    OutreachStatus,
    SchedulerLease,
)
from .plan import PlanReason, PlanRequest, PlanStatus, PlanType
from .settlement import SettlementIntent, SettlementIntentStatus
from .staff import (
    CannedReply,
    ConversationSession,
    LoginAttempt,
    StaffRole,
    StaffSession,
    StaffUser,
)

__all__ = [
    "AuditLog", "Base", "ComplaintCategory", "ComplaintEvent", "ComplaintEventKind", "ComplaintPriority",
    "ComplaintStatus", "ComplaintTicket", "CannedReply", "ConversationSession", "LoginAttempt", "StaffRole", "StaffSession",
    "StaffUser", "Channel", "ChannelIdentity", "Customer", "HandoffCase", "HandoffNote", "HandoffReason",
    "HandoffStatus", "IdentityStatus", "InboundEvent",
    "Instalment", "OtpChallenge", "PromiseStatus", "PromiseToPay", "SmsMessage", "InstalmentStatus", "Loan", "LoanStatus", "Payment",
    "PlanReason", "PlanRequest", "PlanStatus", "PlanType", "SettlementIntent", "SettlementIntentStatus",
    "OutboxMessage", "OutboxStatus", "OutreachAttempt", "OutreachKind", "OutreachNotice", "OutreachStatus", "SchedulerLease",
    "NluReviewItem", "NluReviewOccurrence", "ReviewSource", "ReviewStatus",
]
