"""What a notice says, worded by the backend from its own records with the catalogue's texts.

* Decisions (rendered when staff decide, in the decision's transaction): the plan request and the
  complaint ticket as the API shows them (PlanRequestOut / ComplaintOut as JSON), worded by
  texts/wording.py, the same functions the bot uses when the borrower asks for the status.
* Scheduled notices (rendered when the dispatcher delivers them, so the borrower reads the day's
  figures, penalty interest included): the loan as GET /loans/{id} shows it, the instalment's row of
  GET /loans/{id}/schedule, the promise or the handoff case, in ``outreach.<kind>`` (texts/zh/outreach.yml)
  with the shared formatters (texts/formatting.py).

Whether a notice is still worth sending (paid since it was planned, settled, restructured ...) is
decided by the rules (backend.services.outreach.rules) before anything is rendered; ``render``
answers None only when the figures leave nothing to say (no overdue amount any more).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from sqlalchemy.orm import Session

from backend.core.config import BusinessRules, OutreachRules
from backend.models import ComplaintTicket, Customer, OutreachKind as K, OutreachNotice, PlanRequest
from backend.models.enums import COMPLAINT_LIVE
from backend.services import accounts
from backend.services.complaints import ticket_out
from backend.services.plans.shaping import request_out
from texts import ROOT, text
from texts.formatting import day, loan_name, masked_name, yuan
from texts.wording import complaint_update, outreach, plan_decision

from . import kinds

DUE_KINDS = (K.due_in_3_days, K.due_in_1_day, K.due_today)
ANSWER_CONTEXT, IDENTITY_CHECK = "answer_context", "identity_check"  # actions/answer_context.py


@dataclass(frozen=True)
class Rendered:
    text: str
    # Tracker events that go with the text: slots and a form's activation before it, and bot messages
    # ("event": "bot", a form's first question) after it (backend.services.rasa_api.RasaClient.deliver).
    events: list = field(default_factory=list)


def slot(name: str, value) -> dict:
    return {"event": "slot", "name": name, "value": value}


@lru_cache(maxsize=None)
def _response(name: str) -> dict:
    """A response of the Rasa domain (domain.yml: where Rasa reads it), its first variant."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8")) or {}
    return (domain.get("responses") or {})[name][0]


def form_opens(form: str, first_slot: str) -> list[dict]:
    """The events of a form that starts and asks for its first slot, as the form action writes them:
    the loop active, the slot requested, its question (``utter_ask_<slot>``, buttons included)."""
    ask = _response(f"utter_ask_{first_slot}")
    data = {"buttons": ask["buttons"]} if ask.get("buttons") else {}
    return [{"event": "active_loop", "name": form}, slot("requested_slot", first_slot),
            {"event": "bot", "text": ask["text"], "data": data}]


# --------------------------------------------------------------------------- decisions

def plan_decided(db: Session, rules: BusinessRules, req: PlanRequest) -> str | None:
    return plan_decision(request_out(db, rules, req).model_dump(mode="json"))


def complaint_updated(db: Session, rules: BusinessRules, ticket: ComplaintTicket) -> str:
    return complaint_update(ticket_out(db, rules, ticket).model_dump(mode="json"), [s.value for s in COMPLAINT_LIVE])


def _decision(db: Session, rules: BusinessRules, payload: dict) -> Rendered | None:
    model = {"plan_request": PlanRequest, "complaint_ticket": ComplaintTicket}.get(payload.get("entity_type"))
    record = db.get(model, payload.get("entity_id")) if model else None
    if record is None:
        return None
    said = plan_decided(db, rules, record) if model is PlanRequest else complaint_updated(db, rules, record)
    return Rendered(said) if said else None


# --------------------------------------------------------------------------- scheduled notices

def _loan(db: Session, rules: BusinessRules, loan_id: int, today) -> tuple:
    loan = accounts.get_loan(db, loan_id)
    return loan, accounts.loan_summary(loan, rules, today)


def render(db: Session, rules: BusinessRules, notice: OutreachNotice, today) -> Rendered | None:
    """The message of a scheduled notice as things stand ``today``; None when there is nothing to say."""
    kind, payload = notice.kind, notice.payload or {}
    if kind in kinds.DECISIONS:  # worded when decided; a notice queued without its message: the record now
        return _decision(db, rules, payload)
    if kind == K.hardship_offer:
        return Rendered(outreach(kind.value))
    if kind == K.csat_followup:
        # The rating is asked by the rating form, which reads the answer (data/rules.yml "rating given").
        return Rendered(outreach(kind.value, reference=payload.get("reference", "")),
                        [slot("handoff_case", payload.get("case_id")), *form_opens("csat_form", "csat_score")])
    if notice.loan_id is None:
        return None
    loan, summary = _loan(db, rules, notice.loan_id, today)
    name = loan_name({"product_name": summary.product_name, "loan_no_last4": summary.loan_no_last4})
    if kind in DUE_KINDS:
        row = next((r for r in accounts.schedule(loan, rules, today) if r.seq == notice.instalment_seq), None)
        if row is None or row.amount_outstanding <= 0:
            return None
        return Rendered(outreach(kind.value, loan=name, amount=yuan(row.amount_outstanding), due_date=day(row.due_date)))
    if kind in kinds.OVERDUE_KINDS:
        if summary.days_past_due <= 0:
            return None
        return Rendered(outreach(kind.value, loan=name, days=summary.days_past_due, amount=yuan(summary.overdue_amount),
                                 penalty=yuan(summary.penalty_interest)))
    if kind == K.promise_reminder:
        return Rendered(outreach(kind.value, loan=name, promised_date=day(payload["promised_date"]),
                                 amount=yuan(payload["amount"])))
    return None


# --------------------------------------------------------------------------- the identity question

def needs_identity_check(cfg: OutreachRules, notice: OutreachNotice, channel: str, slots: dict) -> bool:
    """outreach.identity_check: this channel and this kind of notice, not yet confirmed this session
    (the bot sets ``contact_confirmed`` when the borrower answers 「是」)."""
    rules = cfg.identity_check
    return channel in rules.channels and notice.kind.value in rules.kinds and not slots.get("contact_confirmed")


def identity_question(db: Session, notice: OutreachNotice) -> Rendered:
    """「请问您是王**本人吗？」 and nothing about the debt; the notice waits for the answer: the bot
    gives it (GET /outreach/notices/{id} ``text``) when the borrower confirms."""
    customer = db.get(Customer, notice.customer_id) if notice.customer_id is not None else None
    return Rendered(text("knowledge.identity_check", name=masked_name(customer.name if customer else "")),
                    [slot(ANSWER_CONTEXT, IDENTITY_CHECK), slot("pending_notice", notice.notice_id)])
