"""The understanding inbox (理解收件箱): borrower messages the assistant did not understand well.

One ``NluReviewItem`` per distinct masked text: the same words again (in any conversation) count one
more occurrence instead of a new row. Each occurrence is one message event, kept as a keyed hash of
(conversation, event timestamp) so the same message is never counted twice, whoever reports it (the
Rasa event broker, a staff member flagging it in a transcript). Nothing here holds a clear personal
number: texts are masked with masking.mask_digits before they are stored and conversation ids are
stored masked, plus a keyed hash.

A supervisor confirms the predicted intent or corrects it (status confirmed / corrected, the final
intent) or dismisses the message as noise; ``python -m backend.cli export-nlu-review`` writes every
confirmed and corrected text to data/nlu/reviewed.yml (backend.services.nlu_review).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import AwareDateTime, Base, StrEnum
from .enums import ReviewSource, ReviewStatus, labels

SOURCE_LABELS = labels("review_source")
STATUS_LABELS = labels("review_status")
# An item's source is the strongest of its occurrences': a staff member's flag over a fallback over a
# low score, so a flagged message shows as flagged whatever else reported it.
SOURCE_RANK = {ReviewSource.low_confidence: 0, ReviewSource.fallback: 1, ReviewSource.staff_flag: 2}

# The intent contract (domain.yml) as the console names it. Every contract intent has a label
# (tests/backend/test_nlu_inbox.py checks it against domain.yml).
INTENT_LABELS = {
    "greet": "问候", "goodbye": "告别", "thank": "感谢", "affirm": "肯定/同意", "deny": "否定/拒绝",
    "bot_challenge": "问是不是机器人", "request_human": "转人工", "query_balance": "查询欠款",
    "query_repayment_schedule": "查询还款计划", "query_loan_status": "查询贷款状态",
    "query_payment_history": "查询还款记录", "ask_repayment_method": "询问还款方式",
    "ask_interest_fees": "询问利息费用", "request_early_repayment": "提前还款/结清",
    "report_payment_made": "告知已还款", "promise_to_pay": "承诺还款", "request_repayment_plan": "申请还款方案",
    "ask_overdue_consequences": "询问逾期后果", "complaint": "投诉", "query_complaint_status": "查询投诉进度",
    "unsubscribe": "退订提醒", "resubscribe": "恢复提醒", "wrong_person": "打错人了", "busy_later": "现在不方便",
    "provide_identity": "提供身份信息", "out_of_scope": "与贷款无关",
}


class NluReviewItem(Base):
    __tablename__ = "nlu_review_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The borrower's words, masked (masking.mask_digits) and with whitespace collapsed; never the clear text.
    text_masked: Mapped[str] = mapped_column(String(1000))
    # SHA-256 of text_masked: one row per distinct text (a unique index works on every database).
    text_key: Mapped[str] = mapped_column(String(64), unique=True)
    # The latest occurrence's conversation: masked as the console shows ids, and its keyed hash.
    conversation_masked: Mapped[str] = mapped_column(String(200))
    conversation_hash: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(10))  # web | wechat | sms | other
    source: Mapped[ReviewSource] = mapped_column(StrEnum(ReviewSource, "nlu_review_source"), index=True)
    # What the NLU thought (for a fallback: the best intent under nlu_fallback); None when a flagged
    # message carries no usable prediction.
    predicted_intent: Mapped[str | None] = mapped_column(String(60))
    confidence: Mapped[float | None] = mapped_column(Float)
    ranking: Mapped[list] = mapped_column(JSON)  # [{"intent", "confidence"}], best first, at most 3
    occurrences: Mapped[int] = mapped_column(Integer)
    status: Mapped[ReviewStatus] = mapped_column(StrEnum(ReviewStatus, "nlu_review_status"), index=True)
    final_intent: Mapped[str | None] = mapped_column(String(60))
    reviewed_by: Mapped[str | None] = mapped_column(String(50))
    reviewed_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    # Set by the export that first wrote the current decision; a new decision clears it.
    exported_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(AwareDateTime(), index=True)


class NluReviewOccurrence(Base):
    """One message event counted towards an item (never two for the same event)."""

    __tablename__ = "nlu_review_occurrences"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("nlu_review_items.id"), index=True)
    # HMAC-SHA256 (NLU_REVIEW_HASH_SECRET) of the conversation id and the event's timestamp.
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[ReviewSource] = mapped_column(StrEnum(ReviewSource, "nlu_review_source"))
    event_at: Mapped[datetime] = mapped_column(AwareDateTime())  # when the borrower sent it
    recorded_by: Mapped[str] = mapped_column(String(50))  # the service caller or the staff member
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
