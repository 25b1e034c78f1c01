"""Which action answers which account intent (used to resume after verification)."""
from __future__ import annotations

from rasa_sdk import Action

from .account import (
    ActionAnswerBalance, ActionAnswerLoanStatus, ActionAnswerPaymentHistory, ActionAnswerSchedule,
    ActionCheckPaymentMade,
)
from .plan_request import ActionPlanStart
from .promises import ActionRecordPromise
from .settlement import ActionSettlementStart

ACCOUNT_ACTION_CLASSES: dict[str, type[Action]] = {
    "query_balance": ActionAnswerBalance,
    "query_repayment_schedule": ActionAnswerSchedule,
    "query_loan_status": ActionAnswerLoanStatus,
    "query_payment_history": ActionAnswerPaymentHistory,
    "request_early_repayment": ActionSettlementStart,
    "request_repayment_plan": ActionPlanStart,
    "report_payment_made": ActionCheckPaymentMade,
    "promise_to_pay": ActionRecordPromise,
}
ACCOUNT_ACTIONS = {intent: cls().name() for intent, cls in ACCOUNT_ACTION_CLASSES.items()}
_BY_NAME = {cls().name(): cls for cls in ACCOUNT_ACTION_CLASSES.values()}


def action_by_name(name: str) -> Action:
    return _BY_NAME[name]()
