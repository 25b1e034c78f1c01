"""Account answers from the backend's real figures."""
from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from .backend_client import BackendClient, BackendUnavailable
from .formatting import day, yuan
from .identity import resolve_caller

OPEN_STATUSES = {"active", "overdue", "restructured"}


def balance_text(loan: dict) -> str:
    lines = [
        f"您的{loan['product_name']}（借款编号尾号{loan['loan_no_last4']}）剩余应还 {yuan(loan['total_outstanding'])}，"
        f"其中剩余本金 {yuan(loan['outstanding_principal'])}。"
    ]
    if loan["days_past_due"] > 0:
        lines.append(
            f"目前已逾期 {loan['days_past_due']} 天，逾期应还 {yuan(loan['overdue_amount'])}"
            f"（含罚息 {yuan(loan['penalty_interest'])}），请尽快还款。"
        )
    if loan["next_due_date"]:
        lines.append(f"下一期 {day(loan['next_due_date'])} 到期，应还 {yuan(loan['next_instalment_amount'])}。")
    return "".join(lines)


class ActionAnswerBalance(Action):
    def name(self) -> str:
        return "action_answer_balance"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = BackendClient()
        try:
            caller = await resolve_caller(client, tracker.sender_id)
            if not caller.may_see_account:
                dispatcher.utter_message(text="为保护您的账户安全，查询账户信息前需要先核实您的身份。")
                return []
            loans = [loan for loan in await client.loans(caller.customer_id) if loan["status"] in OPEN_STATUSES]
        except BackendUnavailable:
            dispatcher.utter_message(text="系统暂时繁忙，查询不到您的账户信息，请稍后再试。")
            return []
        if not loans:
            dispatcher.utter_message(text="您目前没有未结清的借款。")
            return []
        for loan in loans:
            dispatcher.utter_message(text=balance_text(loan))
        return []
