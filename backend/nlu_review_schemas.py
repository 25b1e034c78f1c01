"""API shapes of the understanding inbox (理解收件箱): what the bot reports, what the console shows."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Rasa's event timestamps are Unix seconds; anything outside 2000-01-01 .. 2100-01-01 is not one.
MIN_TS, MAX_TS = 946_684_800.0, 4_102_444_800.0
Confidence = Field(ge=0, le=1, allow_inf_nan=False)


class RankedIntentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    intent: str = Field(min_length=1, max_length=60)
    confidence: float = Confidence


class NluReviewIn(BaseModel):
    """A message the bot did not understand well (bot/review_broker.py sends it). The text is the
    borrower's as typed: the backend masks it before anything is stored."""

    model_config = ConfigDict(extra="forbid", strict=True)

    conversation: str = Field(min_length=1, max_length=200)  # Rasa's sender id
    channel: Literal["web", "wechat", "sms", "other"]
    text: str = Field(min_length=1, max_length=1000)  # and at most nlu_review.max_text_chars (422)
    timestamp: float = Field(gt=MIN_TS, lt=MAX_TS, allow_inf_nan=False)  # the user event's
    source: Literal["fallback", "low_confidence"]
    predicted_intent: str = Field(min_length=1, max_length=60)
    confidence: float = Confidence
    ranking: list[RankedIntentIn] = Field(min_length=1, max_length=3)  # best first, nlu_fallback left out


class NluReviewRecordedOut(BaseModel):
    id: int
    # created: a new item; counted: one more occurrence of a known text; duplicate: this very
    # message was already recorded (nothing changed)
    outcome: Literal["created", "counted", "duplicate"]
    occurrences: int
    status: str


class RankedIntentOut(BaseModel):
    intent: str
    label: str
    confidence: float


class NluReviewItemOut(BaseModel):
    """An inbox row: masked text and conversation, times in the business timezone."""

    id: int
    text_masked: str
    conversation_masked: str
    channel: str
    source: str
    source_label: str
    predicted_intent: str | None
    predicted_label: str | None
    confidence: float | None
    ranking: list[RankedIntentOut]
    occurrences: int
    status: str
    status_label: str
    final_intent: str | None
    final_label: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    exported_at: datetime | None
    created_at: datetime
    last_seen_at: datetime


class IntentOut(BaseModel):
    name: str
    label: str


class NluInboxOut(BaseModel):
    items: list[NluReviewItemOut]
    intents: list[IntentOut]  # the whole contract, in domain.yml's order
    can_review: bool  # supervisors only
    review_below: float


class NluDecisionIn(BaseModel):
    """Confirm (the predicted intent) or correct (any other contract intent)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    intent: str = Field(min_length=1, max_length=60)


class FlagIn(BaseModel):
    """A borrower message in a case's transcript, by its event timestamp (never by its text)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    timestamp: float = Field(gt=MIN_TS, lt=MAX_TS, allow_inf_nan=False)


class FlaggedOut(BaseModel):
    outcome: Literal["created", "counted", "duplicate"]
    item: NluReviewItemOut
