"""Account answers from the backend's real figures, for verified borrowers only."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import date, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.nlu.normalize import normalize

from .backend_client import BackendClient, BackendRefused, BackendUnavailable
from .formatting import day, loan_name, yuan
from .identity import require_customer, verified_customer_id
from .knowledge import business_rules, kb

OPEN_STATUSES = {"active", "overdue", "restructured"}
NOT_VERIFIED = "为保护您的账户安全，查询账户信息前需要先核实您的身份。"
BUSY = "系统暂时繁忙，查询不到您的账户信息，请稍后再试。"


def latest_entity(tracker: Tracker, name: str) -> str | None:
    for ent in tracker.latest_message.get("entities", []) or []:
        if ent.get("entity") == name:
            return ent.get("value")
    return None


async def verified_or_told(dispatcher: CollectingDispatcher, client: BackendClient, tracker: Tracker) -> int | None:
    """The verified customer, or None after telling the borrower that verification comes first."""
    customer_id = await verified_customer_id(client, tracker)
    if customer_id is None:
        dispatcher.utter_message(text=NOT_VERIFIED)
    return customer_id


class AccountAnswer(Action, ABC):
    """Shared path of every account answer: verification, loan choice, backend errors.

    Subclasses set ``intent`` (for the loan-choice buttons) and implement ``answer``.
    """

    intent = ""
    include_settled = False

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list:
        client = BackendClient()
        try:
            customer_id = await verified_or_told(dispatcher, client, tracker)
            if customer_id is None:
                return []
            loans = all_loans = await client.loans(customer_id)
            if not self.include_settled:
                loans = [loan for loan in loans if loan["status"] in OPEN_STATUSES]
            if not loans:
                settled = [loan for loan in all_loans if loan["status"] == "settled"]
                dispatcher.utter_message(text="".join(settled_text(loan) for loan in settled) + "您目前没有未结清的借款。"
                                         if settled else "您目前没有未结清的借款。")
                return []
            return await self.respond(dispatcher, tracker, client, loans)
        except BackendRefused as exc:
            dispatcher.utter_message(text=exc.message_zh)
        except BackendUnavailable:
            dispatcher.utter_message(text=BUSY)
        return []

    async def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker, client: BackendClient,
                      loans: list[dict]) -> list:
        """Answer about one loan: the only one, the one chosen, or ask which."""
        chosen = self.choose(loans, tracker)
        if chosen is None:
            self.ask_which(dispatcher, loans)
            return []
        return await self.answer(dispatcher, tracker, client, chosen) + [SlotSet("loan_ref", chosen["loan_no_last4"])]

    @staticmethod
    def choose(loans: list[dict], tracker: Tracker) -> dict | None:
        if len(loans) == 1:
            return loans[0]
        ref = latest_entity(tracker, "loan_ref") or tracker.get_slot("loan_ref")
        return next((loan for loan in loans if loan["loan_no_last4"] == ref), None)

    def ask_which(self, dispatcher: CollectingDispatcher, loans: list[dict]) -> None:
        buttons = [{"title": loan_name(loan),
                    "payload": f"/{self.intent}{json.dumps({'loan_ref': loan['loan_no_last4']})}"} for loan in loans]
        dispatcher.utter_message(text="您名下有多笔借款，请问要查询哪一笔？", buttons=buttons)

    @abstractmethod
    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, client: BackendClient,
                     loan: dict) -> list:
        """Write the answer for one loan; return extra events."""


def settled_text(loan: dict) -> str:
    """「您的个人消费贷（尾号1234）已于2026年11月3日（周二）结清，无需再还款。」"""
    when = f"已于{day(loan['settled_on'], with_year=True)}结清" if loan.get("settled_on") else "已结清"
    return f"您的{loan_name(loan)}{when}，无需再还款。"


def balance_text(loan: dict) -> str:
    parts = [f"本金 {yuan(loan['outstanding_principal'])}", f"利息 {yuan(loan['outstanding_interest'])}"]
    if loan["outstanding_fees"] != "0.00":
        parts.append(f"费用 {yuan(loan['outstanding_fees'])}")
    if loan["penalty_interest"] != "0.00":
        parts.append(f"罚息 {yuan(loan['penalty_interest'])}")
    lines = [f"您的{loan_name(loan)}剩余应还 {yuan(loan['total_outstanding'])}（{'、'.join(parts)}）。"]
    if loan["days_past_due"] > 0:
        lines.append(f"目前已逾期 {loan['days_past_due']} 天，逾期应还 {yuan(loan['overdue_amount'])}"
                     f"（含罚息 {yuan(loan['penalty_interest'])}），请尽快还款。")
    if loan["next_due_date"]:
        lines.append(f"下一期 {day(loan['next_due_date'])} 到期，应还 {yuan(loan['next_instalment_amount'])}。")
    return "".join(lines)


class ActionAnswerBalance(AccountAnswer):
    intent = "query_balance"

    def name(self) -> str:
        return "action_answer_balance"

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        dispatcher.utter_message(text=balance_text(loan))
        return []


class ActionAnswerSchedule(AccountAnswer):
    intent = "query_repayment_schedule"

    def name(self) -> str:
        return "action_answer_schedule"

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        rows = [r for r in await client.schedule(loan["id"]) if r["amount_outstanding"] != "0.00"]
        if not rows:
            dispatcher.utter_message(text=f"您的{loan_name(loan)}已没有待还的期数。")
            return []
        upcoming = "；".join(f"{day(r['due_date'])} {yuan(r['amount_outstanding'])}" for r in rows[:3])
        last = rows[-1]
        text = (f"您的{loan_name(loan)}还剩 {len(rows)} 期未还，最近几期：{upcoming}。"
                f"最后一期在{day(last['due_date'], with_year=True)}。")
        if loan["days_past_due"] > 0:
            text += f"其中已逾期 {loan['days_past_due']} 天的部分请尽快还款。"
        dispatcher.utter_message(text=text)
        return []


class ActionAnswerLoanStatus(AccountAnswer):
    intent = "query_loan_status"
    include_settled = True

    def name(self) -> str:
        return "action_answer_loan_status"

    async def respond(self, dispatcher, tracker, client, loans) -> list:
        # 「我的申请怎么样了」 is about the repayment-plan request, when there is one.
        from .plan_request import answer_plan_status, find_request, plan_reference
        from .workflows import has_any, message_text

        reference = plan_reference(tracker)
        if reference or has_any(message_text(tracker), "application"):
            customer_id = await require_customer(client, tracker)
            if reference or await find_request(client, customer_id, None):
                await answer_plan_status(dispatcher, client, customer_id, reference)
                return []
        # Status covers every loan at once, settled ones included: no need to pick one.
        lines = []
        for loan in loans:
            if loan["status"] == "settled":
                lines.append(settled_text(loan))
            elif loan["days_past_due"] > 0:
                lines.append(f"{loan_name(loan)}：已逾期 {loan['days_past_due']} 天，逾期应还 {yuan(loan['overdue_amount'])}。")
            elif loan["status"] == "restructured":
                lines.append(f"{loan_name(loan)}：已办理协商还款，按新计划正常还款中。")
            else:
                lines.append(f"{loan_name(loan)}：正常还款中，没有逾期。")
        dispatcher.utter_message(text="\n".join(lines))
        return []

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        return await self.respond(dispatcher, tracker, client, [loan])


class ActionAnswerPaymentHistory(AccountAnswer):
    intent = "query_payment_history"
    include_settled = True

    def name(self) -> str:
        return "action_answer_payment_history"

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        payments = await client.payments(loan["id"])
        if not payments:
            dispatcher.utter_message(text=f"您的{loan_name(loan)}暂时没有还款记录。")
            return []
        recent = "；".join(f"{day(p['paid_on'], with_year=True)} {yuan(p['amount'])}" for p in payments[:3])
        dispatcher.utter_message(text=f"您的{loan_name(loan)}最近的还款记录：{recent}。共 {len(payments)} 笔还款。")
        return []


class ActionCheckPaymentMade(AccountAnswer):
    intent = "report_payment_made"
    include_settled = True

    def name(self) -> str:
        return "action_check_payment_made"

    @staticmethod
    def window_start(as_of: date, named: date | None) -> date:
        """Where to start looking: the last few days, or back to the day the borrower named."""
        rules = business_rules()["payment_check"]
        start = as_of - timedelta(days=rules["default_days_back"])
        if named and named < start:
            start = max(named, as_of - timedelta(days=rules["max_days_back"]))
        return start

    @staticmethod
    def period_start(text: str, today: date) -> str | None:
        """「上个月」「上周」 name no day, only a period: the check looks back to its first day.
        (The entity extractor's dates are days; these periods only mean something here.)"""
        if any(w in text for w in ("上个月", "上月")):
            return (today.replace(day=1) - timedelta(days=1)).replace(day=1).isoformat()
        if any(w in text for w in ("上周", "上星期", "上礼拜", "上个星期", "上个礼拜")):
            return (today - timedelta(days=today.weekday() + 7)).isoformat()
        if any(w in text for w in ("这个月", "本月", "月初")):
            return today.replace(day=1).isoformat()
        return None

    async def answer(self, dispatcher, tracker, client, loan) -> list:
        if loan["status"] == "settled":
            dispatcher.utter_message(text=settled_text(loan) + kb("settled_still_contacted"))
            return []
        payments = await client.payments(loan["id"])
        as_of = date.fromisoformat(loan["as_of"])
        named = latest_entity(tracker, "date")
        if named is None or named > as_of.isoformat():
            named = self.period_start(normalize(tracker.latest_message.get("text") or ""), as_of) or (named if named and named <= as_of.isoformat() else None)
        start = self.window_start(as_of, date.fromisoformat(named) if named else None)
        recent = [p for p in payments if p["paid_on"] >= start.isoformat()]
        if named and named <= as_of.isoformat():
            # The payment nearest the day they named, not a later one (payments come newest first).
            recent = sorted((p for p in recent if p["paid_on"] >= named), key=lambda p: p["paid_on"]) or recent
        if recent:
            p = recent[0]
            text = f"已收到您{day(p['paid_on'])}的还款 {yuan(p['amount'])}，已入账到{loan_name(loan)}。"
            if loan["status"] != "settled" and loan["days_past_due"] > 0:
                text += f"目前仍有逾期应还 {yuan(loan['overdue_amount'])}。"
            dispatcher.utter_message(text=text)
        else:
            dispatcher.utter_message(text=(
                f"暂未查到{loan_name(loan)}{day(start)}以来的还款入账。银行转账一般1-2个工作日到账，"
                "如已超过时间仍未入账，请保留转账凭证并回复「转人工」。"))
        return []
