"""ORM models: the system of record. Import from here so Alembic sees every table."""
from .audit import AuditLog
from .base import Base
from .complaint import (
    ComplaintCategory, ComplaintEvent, ComplaintEventKind, ComplaintPriority, ComplaintStatus, ComplaintTicket,
)
from .engagement import OtpChallenge, PromiseStatus, PromiseToPay, SmsMessage
from .customer import Channel, ChannelIdentity, Customer, IdentityStatus, InboundEvent
from .handoff import HandoffCase, HandoffNote, HandoffReason, HandoffStatus
from .staff import CannedReply, ConversationSession, LoginAttempt, StaffRole, StaffSession, StaffUser
from .loan import Instalment, InstalmentStatus, Loan, LoanStatus, Payment
from .nlu_review import NluReviewItem, NluReviewOccurrence, ReviewSource, ReviewStatus
from .outreach import OutreachAttempt, OutreachKind, OutreachNotice, OutreachStatus, SchedulerLease
from .plan import PlanReason, PlanRequest, PlanStatus, PlanType
from .settlement import SettlementIntent, SettlementIntentStatus

__all__ = [
    "AuditLog", "Base", "ComplaintCategory", "ComplaintEvent", "ComplaintEventKind", "ComplaintPriority",
    "ComplaintStatus", "ComplaintTicket", "CannedReply", "ConversationSession", "LoginAttempt", "StaffRole", "StaffSession",
    "StaffUser", "Channel", "ChannelIdentity", "Customer", "HandoffCase", "HandoffNote", "HandoffReason",
    "HandoffStatus", "IdentityStatus", "InboundEvent",
    "Instalment", "OtpChallenge", "PromiseStatus", "PromiseToPay", "SmsMessage", "InstalmentStatus", "Loan", "LoanStatus", "Payment",
    "PlanReason", "PlanRequest", "PlanStatus", "PlanType", "SettlementIntent", "SettlementIntentStatus",
    "OutreachAttempt", "OutreachKind", "OutreachNotice", "OutreachStatus", "SchedulerLease",
    "NluReviewItem", "NluReviewOccurrence", "ReviewSource", "ReviewStatus",
]
