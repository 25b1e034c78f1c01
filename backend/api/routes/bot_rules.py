"""The business rules the bot side needs (GET /api/v1/bot/rules), from the backend's validated
config/business.yml: the backend is the only reader of that file.

The action server, the channel connectors and the event broker in the Rasa process read this once per
process (bot/rules.py) and word their limits, windows and numbers from it. Read-only, exactly the
values the bot uses, in the file's section names; times of day as "HH:MM", the penalty multiplier
as a decimal string (exact). tests/data/bot_rules.json is what it serves for the shipped file
(tests/backend/test_bot_rules.py keeps the two equal).
"""
from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from backend.api.deps import ApiRoute, Rules, Scoped
from backend.core.config import BusinessRules

router = APIRouter(prefix="/api/v1", tags=["bot"], route_class=ApiRoute)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PenaltyOut(_Out):
    rate_multiplier: Decimal  # serialised as a string: "1.5"
    day_count_basis: int


class VerificationOut(_Out):
    code_ttl_seconds: int
    max_wrong_attempts: int
    lock_minutes: int
    max_mismatches: int
    verified_minutes: int


class PaymentCheckOut(_Out):
    default_days_back: int
    max_days_back: int


class ConversationFormsOut(_Out):
    idle_minutes: int
    max_reasks: int


class ComplaintsOut(_Out):
    decision_days: int
    link_window_days: int


class RepaymentPlansOut(_Out):
    decision_days: int
    instalment_min_months: int
    instalment_max_months: int
    defer_max_instalments: int


class StaffedHoursOut(_Out):
    start: str  # "09:00"
    end: str
    days: list[int]


class HandoffOut(_Out):
    staffed_hours: StaffedHoursOut
    plan_segments: dict[str, list[str]]


class IdentityCheckOut(_Out):
    channels: list[str]
    kinds: list[str]


class OutreachOut(_Out):
    reminder_days_before: list[int]
    wechat_window_hours: int
    identity_check: IdentityCheckOut


class NluReviewOut(_Out):
    review_below: float
    max_text_chars: int


class AbuseOut(_Out):
    messages_per_minute: int
    max_message_chars: int


class BotRulesOut(_Out):
    penalty: PenaltyOut
    verification: VerificationOut
    payment_check: PaymentCheckOut
    conversation_forms: ConversationFormsOut
    complaints: ComplaintsOut
    repayment_plans: RepaymentPlansOut
    handoff: HandoffOut
    outreach: OutreachOut
    nlu_review: NluReviewOut
    abuse: AbuseOut


def bot_rules(rules: BusinessRules) -> BotRulesOut:
    """What the bot side reads of the business rules."""
    hours = rules.handoff.staffed_hours
    plans, outreach = rules.repayment_plans, rules.outreach
    return BotRulesOut(
        penalty=PenaltyOut(**rules.penalty.model_dump()),
        verification=VerificationOut(**rules.verification.model_dump()),
        payment_check=PaymentCheckOut(**rules.payment_check.model_dump()),
        conversation_forms=ConversationFormsOut(**rules.conversation_forms.model_dump()),
        complaints=ComplaintsOut(decision_days=rules.complaints.decision_days,
                                 link_window_days=rules.complaints.link_window_days),
        repayment_plans=RepaymentPlansOut(
            decision_days=plans.decision_days, instalment_min_months=plans.instalment_min_months,
            instalment_max_months=plans.instalment_max_months, defer_max_instalments=plans.defer_max_instalments),
        handoff=HandoffOut(
            staffed_hours=StaffedHoursOut(start=f"{hours.start:%H:%M}", end=f"{hours.end:%H:%M}", days=hours.days),
            plan_segments=rules.handoff.plan_segments),
        outreach=OutreachOut(reminder_days_before=outreach.reminder_days_before,
                             wechat_window_hours=outreach.wechat_window_hours,
                             identity_check=IdentityCheckOut(**outreach.identity_check.model_dump())),
        nlu_review=NluReviewOut(**rules.nlu_review.model_dump()),
        abuse=AbuseOut(**rules.abuse.model_dump()),
    )


@router.get("/bot/rules", response_model=BotRulesOut)
def get_bot_rules(rules: Rules, _: Scoped("rules:read")) -> BotRulesOut:
    """The business rules the bot side works by (the action server and the channel connectors)."""
    return bot_rules(rules)
