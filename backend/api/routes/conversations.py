"""Endpoints the bot calls on behalf of a conversation: verification, wrong person,
unsubscribe / resubscribe, promises to pay."""
from __future__ import annotations

from fastapi import APIRouter, Request

from backend.api.deps import DB, ApiRoute, PathId, Rules, Scoped, Today
from backend.models import PromiseStatus, PromiseToPay
from backend.schemas import (
    IdentityOut, PromiseIn, PromiseOut, SessionIn, VerificationCheckIn, VerificationOut, VerificationStartIn,
)
from backend.services import accounts, engagement, verification

router = APIRouter(prefix="/api/v1", tags=["conversations"], route_class=ApiRoute)
Caller = Scoped("engagement")
Verifier = Scoped("verification")
IdentityWriter = Scoped("identities:write")


@router.post("/verification/start", response_model=VerificationOut, response_model_exclude_none=True)
def verification_start(data: VerificationStartIn, request: Request, db: DB, rules: Rules, clock: Today, caller: Verifier):
    """Check phone + ID last four and send a one-time code to the registered phone."""
    return verification.start(db, rules, request.app.state.sms_sender, data.conversation, data.phone,
                              data.id_last4, clock.now(), caller, request.app.state.settings.otp_hash_secret)


@router.post("/verification/check", response_model=VerificationOut, response_model_exclude_none=True)
def verification_check(data: VerificationCheckIn, request: Request, db: DB, rules: Rules, clock: Today, caller: Verifier):
    return verification.check(db, rules, data.conversation, data.code, clock.now(), caller,
                              request.app.state.settings.otp_hash_secret)


@router.post("/identities/{channel}/{external_id}/wrong-person", response_model=IdentityOut)
def wrong_person(channel: str, external_id: str, db: DB, caller: IdentityWriter):
    engagement.mark_wrong_person(db, channel, external_id, caller)
    return accounts.get_identity(db, channel, external_id)


@router.post("/customers/{customer_id}/unsubscribe", status_code=204)
def unsubscribe(customer_id: PathId, db: DB, caller: Caller) -> None:
    """Stop automated reminders (and marketing) for the customer."""
    engagement.unsubscribe(db, accounts.get_customer(db, customer_id), caller)


@router.post("/customers/{customer_id}/resubscribe", status_code=204)
def resubscribe(customer_id: PathId, db: DB, caller: Caller) -> None:
    """Automated reminders back on (consent_reminders, as GET /customers/{id} shows it); marketing stays off."""
    engagement.resubscribe(db, accounts.get_customer(db, customer_id), caller)


@router.post("/loans/{loan_id}/promises", response_model=PromiseOut, status_code=201)
def promise(loan_id: PathId, data: PromiseIn, db: DB, rules: Rules, clock: Today, caller: Caller):
    loan = accounts.get_loan(db, loan_id)
    p = engagement.record_promise(db, rules, loan, data.promised_date, data.amount, data.channel, clock.today(), caller,
                                  clock.now())
    return PromiseOut(id=p.id, loan_id=p.loan_id, promised_date=p.promised_date, amount=p.amount, status=p.status.value)


@router.get("/customers/{customer_id}/promises", response_model=list[PromiseOut])
def promises(customer_id: PathId, db: DB, _: Caller):
    accounts.get_customer(db, customer_id)
    rows = db.query(PromiseToPay).filter(PromiseToPay.customer_id == customer_id,
                                         PromiseToPay.status == PromiseStatus.open).order_by(PromiseToPay.id)
    return [PromiseOut(id=p.id, loan_id=p.loan_id, promised_date=p.promised_date, amount=p.amount,
                       status=p.status.value) for p in rows]


@router.post("/conversations/sessions", status_code=204)
def session_started(data: SessionIn, db: DB, clock: Today, _: Caller) -> None:
    """The bot started a conversation session."""
    engagement.record_session(db, data.conversation, data.channel, data.customer_id, clock.now())
