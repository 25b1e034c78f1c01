"""Which action answers which account intent (used to resume after verification)."""
from __future__ import annotations

ACCOUNT_ACTIONS = {
    "query_balance": "action_answer_balance",
    "query_repayment_schedule": "action_answer_schedule",
    "query_loan_status": "action_answer_loan_status",
    "query_payment_history": "action_answer_payment_history",
    "request_early_repayment": "action_answer_early_repayment",
    "report_payment_made": "action_check_payment_made",
    "promise_to_pay": "action_record_promise",
}


def action_by_name(name: str):
    from rasa_sdk import Action

    from . import account, promises  # noqa: F401 - registers the subclasses

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    import inspect

    for cls in walk(Action):
        if not inspect.isabstract(cls) and cls().name() == name:
            return cls()
    raise KeyError(name)
