"""Retention and data-subject rights (backend.services.retention, ``python -m backend.cli anonymise |
export-customer | delete-customer``), on SQLite and PostgreSQL.

Rules (config/business.yml ``retention``): conversation texts are kept 365 days, closed records 1095
days. The business time of these tests is 2026-11-23 12:00 Asia/Shanghai, so conversation texts from
before 2025-11-23 12:00 and records closed before 2023-11-24 12:00 are anonymised: texts become
「[已匿名化]」, contact details NULL, conversation ids keep only their channel (``sms:[已匿名化]``);
amounts, dates, statuses and figures stay. Every row the tests write is read back field by field.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select, text

from backend import cli
from backend.core.config import ROOT, BusinessRules, RetentionRules
from backend.models import (
    AuditLog, Channel, ChannelIdentity, ComplaintCategory, ComplaintEvent, ComplaintEventKind, ComplaintPriority,
    ComplaintStatus, ComplaintTicket, ConversationSession, Customer, HandoffCase, HandoffNote, HandoffReason,
    HandoffStatus, Loan, NluReviewItem, NluReviewOccurrence, OtpChallenge, OutreachKind, OutreachNotice,
    OutreachStatus, Payment, PlanReason, PlanRequest, PlanStatus, PlanType, PromiseStatus, PromiseToPay,
    ReviewSource, ReviewStatus, SettlementIntent, SettlementIntentStatus, SmsMessage,
)
from backend.services import retention
from backend.services.nlu_review import keyed_hash
from testkit import local, shanghai, wipe

NOW = shanghai(2026, 11, 23, 12, 0)
ANON = "[已匿名化]"
SECRET = "test-review-secret"
RULES = RetentionRules()
OLD_CLOSED = shanghai(2022, 2, 1, 10, 0)  # before the closed-record cutoff (2023-11-24 12:00)
RECENT_CLOSED = shanghai(2025, 1, 10, 10, 0)  # after it
OLD_CONV = shanghai(2024, 6, 1, 9, 30)  # before the conversation cutoff (2025-11-23 12:00)
RECENT_CONV = shanghai(2026, 1, 5, 9, 30)  # after it
ALL_SCOPES = ("complaint_tickets", "complaint_events", "plan_requests", "settlement_intents", "handoff_cases",
              "handoff_notes", "nlu_review_items", "nlu_review_items.conversation", "nlu_review_occurrences",
              "sms_messages", "otp_challenges", "conversation_sessions", "outreach_notices", "outbox_messages", "audit_log")


# --------------------------------------------------------------------------- helpers

def clean(app) -> None:
    """Every borrower table and the tables this feature reads, emptied (the audit log too)."""
    wipe(app.state.sessionmaker)
    with app.state.sessionmaker() as db:
        for table in ("nlu_review_occurrences", "nlu_review_items", "sms_messages", "audit_log"):
            db.execute(text(f"DELETE FROM {table}"))
        db.commit()


def ref(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().int % 10**12:012d}"[:20]


def add(app, *rows):
    with app.state.sessionmaker() as db:
        db.add_all(rows)
        db.commit()
        return [r.id for r in rows]


def ticket(customer_id, conversation, *, status, received, closed=None, **kw) -> ComplaintTicket:
    return ComplaintTicket(
        reference=ref("CP"), customer_id=customer_id, conversation=conversation, channel=Channel.sms,
        category=ComplaintCategory.collection, other_categories=["privacy"],
        description=kw.get("description", "催收员打电话骂人，还打给我同事，我的号码13812345678"),
        desired_outcome=kw.get("desired_outcome", "道歉并停止骚扰"), contact=kw.get("contact", "138****5678"),
        status=status, priority=ComplaintPriority.high, distress=False, received_at=received,
        due_at=received + timedelta(days=15), extended=True, extension_reason="需要调取录音",
        resolution="已核实并道歉" if status == ComplaintStatus.resolved else None,
        resolved_at=closed if status == ComplaintStatus.resolved else None,
        closed_at=closed if status == ComplaintStatus.closed else None, pauses_reminders=True,
        events=[ComplaintEvent(at=received, actor="customer", kind=ComplaintEventKind.opened,
                               to_status=ComplaintStatus.received, channel=Channel.sms, note="补充：他们说要上门"),
                ComplaintEvent(at=received + timedelta(days=1), actor="agent1", kind=ComplaintEventKind.started,
                               from_status=ComplaintStatus.received, to_status=ComplaintStatus.in_progress,
                               note=None)])


def plan(customer_id, loan_id, conversation, *, status, at) -> PlanRequest:
    return PlanRequest(
        reference=ref("RP"), loan_id=loan_id, customer_id=customer_id, conversation=conversation,
        channel=Channel.wechat, reason_category=PlanReason.illness, reason_text="住院三个月，医院在北京协和",
        plan_type=PlanType.instalment, months=12, amount=Decimal("12345.67"),
        quote={"monthly": "1100.50", "total_interest": "860.33"}, approved_quote=None, status=status,
        needs_staff_review=False, staff_review_reasons=[], submitted_on=at.date() - timedelta(days=2),
        decision_due_on=at.date() + timedelta(days=1), decided_by="agent1", decided_role="agent",
        decided_at=at, decided_on=at.date(),
        decision_reason="逾期超过90天" if status == PlanStatus.rejected else None, created_at=at - timedelta(days=2))


def case(customer_id, conversation, *, status, created, closed=None) -> HandoffCase:
    return HandoffCase(
        reference=ref("HO"), conversation=conversation,
        active_conversation=None if status == HandoffStatus.closed else conversation, channel=Channel.web,
        customer_id=customer_id, reason=HandoffReason.distress, priority=1, summary="客户说丈夫生病，没钱还",
        status=status, assigned_to="agent1", created_at=created, closed_at=closed, csat=4,
        csat_comment="客服态度很好" if closed else None,
        notes=[HandoffNote(author="agent1", text="已建议申请延期", created_at=created + timedelta(minutes=5))])


def review_item(text_value, conversation, *, status, seen, occurrences=1, other_conversation=None) -> NluReviewItem:
    convs = [conversation] * occurrences + ([other_conversation] if other_conversation else [])
    return NluReviewItem(
        text_masked=text_value, text_key=hashlib.sha256(text_value.encode()).hexdigest(),
        conversation_masked="sms:138****5678", conversation_hash=keyed_hash(SECRET, conversation),
        channel="sms", source=ReviewSource.fallback, predicted_intent="query_balance", confidence=0.41,
        ranking=[{"intent": "query_balance", "confidence": 0.41}], occurrences=len(convs), status=status,
        final_intent="query_balance" if status == ReviewStatus.confirmed else None, created_at=seen, last_seen_at=seen,
        reviewed_by="supervisor1" if status == ReviewStatus.confirmed else None,
        exported_at=seen if status == ReviewStatus.confirmed else None)


def occurrences(app, item_id, conversations, at):
    with app.state.sessionmaker() as db:
        for n, conv in enumerate(conversations):
            db.add(NluReviewOccurrence(item_id=item_id, event_key=uuid.uuid4().hex, source=ReviewSource.fallback,
                                       conversation_hash=keyed_hash(SECRET, conv), event_at=at + timedelta(seconds=n),
                                       recorded_by="actions", created_at=at))
        db.commit()


def notice(customer_id, conversation, *, status, created, identity_id=None) -> OutreachNotice:
    return OutreachNotice(
        notice_id=str(uuid.uuid4()), customer_id=customer_id, loan_id=None, kind=OutreachKind.due_in_3_days,
        dedupe_key=f"test:{uuid.uuid4()}", service=False, priority=22, planned_on=created.date(),
        planned_for=created, next_attempt_at=created, expires_at=created + timedelta(days=2), status=status,
        channel=Channel.sms, conversation=conversation, identity_id=identity_id, attempts=0,
        sent_at=created if status == OutreachStatus.sent else None,
        payload={"due_date": "2024-06-04", "amount": "1234.56"}, created_at=created)


def sms(phone_e164, body, at) -> SmsMessage:
    return SmsMessage(to_masked="138****5678", to_hash=hashlib.sha256(phone_e164.encode()).hexdigest(), body=body,
                      purpose="otp", provider="outbox", status="sent", created_at=at)


def get(app, model, row_id):
    with app.state.sessionmaker() as db:
        row = db.get(model, row_id)
        db.expunge(row) if row is not None else None
        return row


def row_of(snap: dict, table: str, row_id: int) -> dict:
    return next(r for r in snap[table] if r["id"] == row_id)


def audit(app, action):
    with app.state.sessionmaker() as db:
        return list(db.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def audit_count(app) -> int:
    with app.state.sessionmaker() as db:
        return db.scalar(select(func.count()).select_from(AuditLog))


def run(app, *, dry_run=False, **kw):
    with app.state.sessionmaker() as db:
        result = retention.anonymise(db, RULES, NOW, actor="retention-job", dry_run=dry_run, **kw)
        db.commit()
        return result


def snapshot(app) -> dict:
    """Every column of every row the feature may touch, for "nothing changed" assertions."""
    out = {}
    with app.state.sessionmaker() as db:
        for model in (ComplaintTicket, ComplaintEvent, PlanRequest, SettlementIntent, HandoffCase, HandoffNote,
                      NluReviewItem, NluReviewOccurrence, SmsMessage, OtpChallenge, ConversationSession,
                      OutreachNotice, AuditLog, Customer, ChannelIdentity, Loan, Payment, PromiseToPay):
            out[model.__tablename__] = [retention.row_dict(r) for r in db.scalars(select(model).order_by(model.id))]
    return out


# --------------------------------------------------------------------------- configuration

def test_retention_periods_come_from_business_yml():
    rules = BusinessRules.load(ROOT / "config" / "business.yml").retention
    assert rules == RetentionRules(conversation_days=365, closed_record_days=1095)


def test_closed_records_are_kept_at_least_as_long_as_conversation_texts():
    with pytest.raises(ValueError, match="closed_record_days"):
        RetentionRules(conversation_days=400, closed_record_days=365)
    with pytest.raises(ValueError):
        RetentionRules(conversation_days=7)  # at least 30 days


def test_anonymised_conversation_ids_keep_the_channel():
    assert retention.anon_conversation("sms:+8613812345678") == "sms:[已匿名化]"
    assert retention.anon_conversation("wechat:oWx1abcdef") == "wechat:[已匿名化]"
    assert retention.anon_conversation("no-channel-id") == ANON
    assert retention.anon_conversation(None) is None


# --------------------------------------------------------------------------- anonymise by age

@pytest.fixture
def aged(app, book):
    """One record of each kind on each side of the cutoffs, for one borrower."""
    clean(app)
    c = book.customer("赵留存")
    loan = book.loan(c.id, "20000", "0.12", 12, date(2021, 1, 15), paid=12)
    sms_conv, web_conv = f"sms:{c.sms_id}", f"web:{c.web_id}"
    ids = {}
    ids["t_old"], ids["t_recent"], ids["t_open"], ids["t_old_resolved"] = add(
        app,
        ticket(c.id, sms_conv, status=ComplaintStatus.closed, received=OLD_CLOSED - timedelta(days=20), closed=OLD_CLOSED),
        ticket(c.id, sms_conv, status=ComplaintStatus.closed, received=RECENT_CLOSED - timedelta(days=20),
               closed=RECENT_CLOSED),
        ticket(c.id, sms_conv, status=ComplaintStatus.in_progress, received=OLD_CLOSED),
        ticket(None, "web:visitor-1", status=ComplaintStatus.resolved, received=OLD_CLOSED - timedelta(days=3),
               closed=OLD_CLOSED, desired_outcome=None, contact=None))
    with app.state.sessionmaker() as db:
        ids["t_old_events"] = [e.id for e in db.get(ComplaintTicket, ids["t_old"]).events]
        ids["t_recent_events"] = [e.id for e in db.get(ComplaintTicket, ids["t_recent"]).events]
    ids["p_old"], ids["p_recent"], ids["p_open"] = add(
        app, plan(c.id, loan.id, "wechat:oWxplan", status=PlanStatus.rejected, at=OLD_CLOSED),
        plan(c.id, loan.id, "wechat:oWxplan", status=PlanStatus.approved, at=RECENT_CLOSED),
        plan(c.id, loan.id, "wechat:oWxplan", status=PlanStatus.submitted, at=OLD_CLOSED))
    with app.state.sessionmaker() as db:  # an undecided request has no decision
        p = db.get(PlanRequest, ids["p_open"])
        p.decided_by = p.decided_role = p.decided_at = p.decided_on = None
        db.commit()
    ids["s_old"], ids["s_recent"] = add(app, *[SettlementIntent(
        loan_id=loan.id, customer_id=c.id, conversation=web_conv, channel=Channel.web, settle_on=at.date(),
        quoted_total=Decimal("5000.12"), quote={"total": "5000.12"}, quoted_on=at.date(),
        status=SettlementIntentStatus.recorded, created_at=at) for at in (OLD_CLOSED, RECENT_CLOSED)])
    ids["h_old"], ids["h_recent"], ids["h_open"] = add(
        app, case(c.id, web_conv, status=HandoffStatus.closed, created=OLD_CONV, closed=OLD_CONV + timedelta(hours=1)),
        case(c.id, web_conv, status=HandoffStatus.closed, created=RECENT_CONV, closed=RECENT_CONV + timedelta(hours=1)),
        case(c.id, "wechat:oWxopen", status=HandoffStatus.open, created=OLD_CONV))
    with app.state.sessionmaker() as db:
        ids["h_notes"] = {k: db.get(HandoffCase, ids[k]).notes[0].id for k in ("h_old", "h_recent", "h_open")}
    ids["r_old"], ids["r_old_confirmed"], ids["r_recent"] = add(
        app, review_item("我电话换了138****5678能改吗", sms_conv, status=ReviewStatus.open, seen=OLD_CONV),
        review_item("欠款咋查", sms_conv, status=ReviewStatus.confirmed, seen=OLD_CONV),
        review_item("最近的话", sms_conv, status=ReviewStatus.open, seen=RECENT_CONV))
    for key, at in (("r_old", OLD_CONV), ("r_old_confirmed", OLD_CONV), ("r_recent", RECENT_CONV)):
        occurrences(app, ids[key], [sms_conv], at)
    ids["sms_old"], ids["sms_recent"] = add(app, sms(c.sms_id, "【小安】验证码123456，5分钟内有效", OLD_CONV),
                                            sms(c.sms_id, "【小安】验证码654321，5分钟内有效", RECENT_CONV))
    ids["otp_old"], ids["otp_recent"] = add(app, *[OtpChallenge(conversation=sms_conv, customer_id=c.id, code_hash="x" * 64,
                                                                created_at=at) for at in (OLD_CONV, RECENT_CONV)])
    ids["sess_old"], ids["sess_recent"] = add(app, *[ConversationSession(conversation=sms_conv, channel=Channel.sms,
                                                                         customer_id=c.id, started_at=at)
                                                     for at in (OLD_CONV, RECENT_CONV)])
    ids["n_old"], ids["n_recent"], ids["n_old_planned"] = add(
        app, notice(c.id, sms_conv, status=OutreachStatus.sent, created=OLD_CONV),
        notice(c.id, sms_conv, status=OutreachStatus.sent, created=RECENT_CONV),
        notice(c.id, None, status=OutreachStatus.planned, created=OLD_CONV))
    ids["a_conv_old"], ids["a_detail_old"], ids["a_recent"], ids["a_other_old"] = add(
        app, AuditLog(at=OLD_CONV, actor="actions", action="verification.mismatch", entity_type="conversation",
                      entity_id=sms_conv, detail={"mismatches": 1}),
        AuditLog(at=OLD_CONV, actor="actions", action="verification.code_sent", entity_type="customer",
                 entity_id=str(c.id), detail={"conversation": sms_conv}),
        AuditLog(at=RECENT_CONV, actor="actions", action="verification.mismatch", entity_type="conversation",
                 entity_id=sms_conv, detail={"mismatches": 2}),
        AuditLog(at=OLD_CONV, actor="actions", action="payment.recorded", entity_type="loan", entity_id=str(loan.id),
                 detail={"amount": "100.00"}))
    return c, loan, ids


EXPECTED_COUNTS = {
    "complaint_tickets": 2, "complaint_events": 2, "plan_requests": 1, "settlement_intents": 1, "handoff_cases": 1,
    "handoff_notes": 1, "nlu_review_items": 1, "nlu_review_items.conversation": 2, "nlu_review_occurrences": 2,
    "sms_messages": 1, "otp_challenges": 1, "conversation_sessions": 1, "outreach_notices": 1, "outbox_messages": 0,
    "audit_log": 2,
}


def test_dry_run_counts_and_changes_nothing(app, aged):
    before, audits = snapshot(app), audit_count(app)
    result = run(app, dry_run=True)
    assert result.counts == EXPECTED_COUNTS and result.total == 19 and result.dry_run
    assert local(result.conversation_cutoff) == shanghai(2025, 11, 23, 12, 0)
    assert local(result.closed_cutoff) == shanghai(2023, 11, 24, 12, 0)
    assert snapshot(app) == before and audit_count(app) == audits


def test_anonymise_replaces_old_texts_and_keeps_figures(app, aged):
    c, loan, ids = aged
    before = snapshot(app)
    result = run(app)
    assert result.counts == EXPECTED_COUNTS

    t = get(app, ComplaintTicket, ids["t_old"])
    assert (t.description, t.desired_outcome, t.contact, t.extension_reason, t.resolution, t.conversation) == (
        ANON, ANON, None, ANON, None, "sms:[已匿名化]")
    # What the regulatory statistics need is untouched.
    assert (t.customer_id, t.category, t.other_categories, t.status, t.priority, t.extended, t.pauses_reminders) == (
        c.id, ComplaintCategory.collection, ["privacy"], ComplaintStatus.closed, ComplaintPriority.high, True, True)
    assert (local(t.received_at), local(t.closed_at)) == (OLD_CLOSED - timedelta(days=20), OLD_CLOSED)
    assert [get(app, ComplaintEvent, i).note for i in ids["t_old_events"]] == [ANON, None]
    resolved = get(app, ComplaintTicket, ids["t_old_resolved"])
    assert (resolved.description, resolved.desired_outcome, resolved.contact, resolved.resolution,
            resolved.conversation) == (ANON, None, None, ANON, "web:[已匿名化]")
    for key in ("t_recent", "t_open"):  # closed recently / still open: word for word as written
        t = get(app, ComplaintTicket, ids[key])
        assert (t.description, t.contact, t.conversation) == (
            "催收员打电话骂人，还打给我同事，我的号码13812345678", "138****5678", f"sms:{c.sms_id}")
    assert [get(app, ComplaintEvent, i).note for i in ids["t_recent_events"]] == ["补充：他们说要上门", None]

    p = get(app, PlanRequest, ids["p_old"])
    assert (p.reason_text, p.decision_reason, p.conversation) == (ANON, ANON, "wechat:[已匿名化]")
    assert (p.amount, p.quote, p.status, p.months, p.reason_category, p.decided_on) == (
        Decimal("12345.67"), {"monthly": "1100.50", "total_interest": "860.33"}, PlanStatus.rejected, 12,
        PlanReason.illness, OLD_CLOSED.date())
    for key in ("p_recent", "p_open"):
        assert get(app, PlanRequest, ids[key]).reason_text == "住院三个月，医院在北京协和"

    s = get(app, SettlementIntent, ids["s_old"])
    assert (s.conversation, s.quoted_total, s.settle_on) == ("web:[已匿名化]", Decimal("5000.12"), OLD_CLOSED.date())
    assert get(app, SettlementIntent, ids["s_recent"]).conversation == f"web:{c.web_id}"

    h = get(app, HandoffCase, ids["h_old"])
    assert (h.summary, h.csat_comment, h.conversation, h.csat, h.reason, h.status) == (
        ANON, None, "web:[已匿名化]", 4, HandoffReason.distress, HandoffStatus.closed)
    assert get(app, HandoffNote, ids["h_notes"]["h_old"]).text == ANON
    for key in ("h_recent", "h_open"):
        assert get(app, HandoffCase, ids[key]).summary == "客户说丈夫生病，没钱还"
        assert get(app, HandoffNote, ids["h_notes"][key]).text == "已建议申请延期"

    r = get(app, NluReviewItem, ids["r_old"])
    assert (r.text_masked, r.conversation_masked, r.status, r.occurrences, r.predicted_intent) == (
        ANON, "sms:[已匿名化]", ReviewStatus.open, 1, "query_balance")
    assert r.text_key == hashlib.sha256(f"{ANON}:{r.id}".encode()).hexdigest()
    confirmed = get(app, NluReviewItem, ids["r_old_confirmed"])  # training data: words stay, link goes
    assert (confirmed.text_masked, confirmed.conversation_masked, confirmed.status) == (
        "欠款咋查", "sms:[已匿名化]", ReviewStatus.confirmed)
    assert confirmed.conversation_hash != keyed_hash(SECRET, f"sms:{c.sms_id}")
    recent = get(app, NluReviewItem, ids["r_recent"])
    assert (recent.text_masked, recent.conversation_hash) == ("最近的话", keyed_hash(SECRET, f"sms:{c.sms_id}"))
    with app.state.sessionmaker() as db:
        hashes = dict(db.execute(select(NluReviewOccurrence.item_id, NluReviewOccurrence.conversation_hash)).all())
    assert hashes[ids["r_recent"]] == keyed_hash(SECRET, f"sms:{c.sms_id}")
    assert keyed_hash(SECRET, f"sms:{c.sms_id}") not in (hashes[ids["r_old"]], hashes[ids["r_old_confirmed"]])

    m = get(app, SmsMessage, ids["sms_old"])
    assert (m.body, m.to_hash, m.to_masked, m.purpose, m.status) == (ANON, ANON, "138****5678", "otp", "sent")
    assert get(app, SmsMessage, ids["sms_recent"]).body == "【小安】验证码654321，5分钟内有效"
    assert get(app, OtpChallenge, ids["otp_old"]).conversation == "sms:[已匿名化]"
    sess = get(app, ConversationSession, ids["sess_old"])
    assert (sess.conversation, sess.channel, sess.customer_id, local(sess.started_at)) == (
        "sms:[已匿名化]", Channel.sms, c.id, OLD_CONV)
    n = get(app, OutreachNotice, ids["n_old"])
    assert (n.conversation, n.status, n.payload) == (
        "sms:[已匿名化]", OutreachStatus.sent, {"due_date": "2024-06-04", "amount": "1234.56"})

    a = get(app, AuditLog, ids["a_conv_old"])
    assert (a.entity_type, a.entity_id, a.detail) == ("conversation", "sms:[已匿名化]", {"mismatches": 1})
    assert get(app, AuditLog, ids["a_detail_old"]).detail == {"conversation": "sms:[已匿名化]"}
    assert get(app, AuditLog, ids["a_other_old"]).detail == {"amount": "100.00"}

    # Rows inside their period (or still open) are exactly as they were, whatever the column types
    # store (an SMS conversation id may be kept hashed or tokenised); borrower, loan and money rows
    # are not touched by age.
    after = snapshot(app)
    for table, key in (("complaint_tickets", "t_recent"), ("complaint_tickets", "t_open"),
                       ("plan_requests", "p_recent"), ("plan_requests", "p_open"),
                       ("settlement_intents", "s_recent"), ("handoff_cases", "h_recent"), ("handoff_cases", "h_open"),
                       ("nlu_review_items", "r_recent"), ("sms_messages", "sms_recent"),
                       ("otp_challenges", "otp_recent"), ("conversation_sessions", "sess_recent"),
                       ("outreach_notices", "n_recent"), ("outreach_notices", "n_old_planned"),
                       ("audit_log", "a_recent"), ("audit_log", "a_other_old")):
        assert row_of(after, table, ids[key]) == row_of(before, table, ids[key]), (table, key)
    for table in ("customers", "channel_identities", "loans", "payments", "promises_to_pay"):
        assert after[table] == before[table]

    [entry] = audit(app, "retention.anonymised")
    assert (entry.actor, entry.entity_type, entry.entity_id) == ("retention-job", "retention", "2026-11-23")
    assert entry.detail == {
        "conversation_days": 365, "closed_record_days": 1095,
        "conversation_cutoff": shanghai(2025, 11, 23, 12, 0).isoformat(),
        "closed_cutoff": shanghai(2023, 11, 24, 12, 0).isoformat(),
        "counts": {k: v for k, v in EXPECTED_COUNTS.items() if v}}


def test_anonymise_is_idempotent(app, aged):
    run(app)
    before, audits = snapshot(app), audit_count(app)
    again = run(app)
    assert again.counts == dict.fromkeys(ALL_SCOPES, 0) and again.total == 0
    assert snapshot(app) == before and audit_count(app) == audits  # nothing written, nothing audited


def test_older_than_days_overrides_the_conversation_period(app, aged):
    c, _, ids = aged
    # 30 days: the conversation texts of 2026-01-05 are old too; closed records keep 1095 days.
    result = run(app, conversation_days=30)
    assert result.counts["handoff_cases"] == 2 and result.counts["complaint_tickets"] == 2
    assert get(app, HandoffCase, ids["h_recent"]).summary == ANON
    assert get(app, ComplaintTicket, ids["t_recent"]).description != ANON
    with pytest.raises(ValueError):
        run(app, conversation_days=-1)


def test_confirmed_inbox_example_keeps_its_words_by_age(app, aged):
    """By age, a confirmed inbox example keeps its words (training data, linked to nobody once its
    conversation is gone); only the customer's erasure takes them (test_erase_...: then dismissed)."""
    c, _, ids = aged
    run(app)
    assert get(app, NluReviewItem, ids["r_old_confirmed"]).text_masked == "欠款咋查"


# --------------------------------------------------------------------------- one customer: export and erase

@pytest.fixture
def borrower(app, book):
    """A borrower whose loans are all settled, with something in every table."""
    clean(app)
    c = book.customer("钱清算")
    loan = book.loan(c.id, "12000", "0.0876", 6, date(2025, 1, 10), paid=6)
    sms_conv, web_conv, wx_conv = f"sms:{c.sms_id}", f"web:{c.web_id}", f"wechat:{c.wechat_id}"
    ids = {"loan": loan.id}
    with app.state.sessionmaker() as db:
        db.add(Payment(loan_id=loan.id, amount=Decimal("2052.57"), paid_on=date(2025, 2, 10),
                       paid_at=shanghai(2025, 2, 10, 9, 0), method="bank_transfer", reference=ref("PAY")))
        db.commit()
        ids["identities"] = sorted(db.scalars(select(ChannelIdentity.id).where(ChannelIdentity.customer_id == c.id)))
        sms_identity = db.scalar(select(ChannelIdentity.id).where(ChannelIdentity.customer_id == c.id,
                                                                  ChannelIdentity.channel == Channel.sms))
    [ids["ticket"], ids["anon_ticket"]] = add(
        app, ticket(c.id, sms_conv, status=ComplaintStatus.resolved, received=RECENT_CONV, closed=RECENT_CONV),
        # Filed before they were verified: no customer id, found by their conversation.
        ticket(None, wx_conv, status=ComplaintStatus.closed, received=RECENT_CONV, closed=RECENT_CONV))
    [ids["plan"]] = add(app, plan(c.id, loan.id, wx_conv, status=PlanStatus.approved, at=RECENT_CLOSED))
    [ids["intent"]] = add(app, SettlementIntent(
        loan_id=loan.id, customer_id=c.id, conversation=web_conv, channel=Channel.web, settle_on=date(2025, 6, 1),
        quoted_total=Decimal("6100.00"), quote={"total": "6100.00"}, quoted_on=date(2025, 5, 20),
        status=SettlementIntentStatus.recorded, created_at=RECENT_CLOSED))
    [ids["promise"]] = add(app, PromiseToPay(customer_id=c.id, loan_id=loan.id, promised_date=date(2025, 3, 12),
                                             amount=Decimal("2052.57"), channel="wechat", status=PromiseStatus.kept))
    [ids["case"]] = add(app, case(c.id, web_conv, status=HandoffStatus.closed, created=RECENT_CONV,
                                  closed=RECENT_CONV + timedelta(hours=1)))
    [ids["otp"]] = add(app, OtpChallenge(conversation=sms_conv, customer_id=c.id, code_hash="y" * 64,
                                         created_at=RECENT_CONV, verified_at=RECENT_CONV))
    [ids["session"]] = add(app, ConversationSession(conversation=wx_conv, channel=Channel.wechat, customer_id=c.id,
                                                    started_at=RECENT_CONV))
    [ids["notice"]] = add(app, notice(c.id, sms_conv, status=OutreachStatus.sent, created=RECENT_CONV,
                                      identity_id=sms_identity))
    [ids["sms"], ids["sms_other"]] = add(app, sms(c.sms_id, "【小安】验证码111111", RECENT_CONV),
                                         sms("+8613900000000", "【小安】验证码222222", RECENT_CONV))
    [ids["review_theirs"], ids["review_shared"]] = add(
        app, review_item("我是钱清算，卡号尾号****1234", sms_conv, status=ReviewStatus.confirmed, seen=RECENT_CONV),
        review_item("嗯嗯", sms_conv, status=ReviewStatus.open, seen=RECENT_CONV, other_conversation="sms:+8613900000000"))
    occurrences(app, ids["review_theirs"], [sms_conv], RECENT_CONV)
    occurrences(app, ids["review_shared"], [sms_conv, "sms:+8613900000000"], RECENT_CONV)
    [ids["audit_conv"], ids["audit_code"]] = add(
        app, AuditLog(at=RECENT_CONV, actor="actions", action="verification.mismatch", entity_type="conversation",
                      entity_id=sms_conv, detail={"mismatches": 1}),
        AuditLog(at=RECENT_CONV, actor="actions", action="verification.code_sent", entity_type="customer",
                 entity_id=str(c.id), detail={"conversation": sms_conv}))
    return c, ids


def export(app, customer_id):
    with app.state.sessionmaker() as db:
        data = retention.export_customer(db, customer_id, NOW, actor="dpo1", review_secret=SECRET)
        db.commit()
    return json.loads(json.dumps(data, ensure_ascii=False))  # what the file holds


def erase(app, customer_id, dry_run=False):
    with app.state.sessionmaker() as db:
        counts = retention.erase_customer(db, customer_id, NOW, actor="dpo1", review_secret=SECRET, dry_run=dry_run)
        db.commit()
    return counts


def test_export_holds_everything_about_the_customer(app, borrower):
    c, ids = borrower
    data = export(app, c.id)
    assert data["customer"]["id"] == c.id
    assert (data["customer"]["name"], data["customer"]["phone"], data["customer"]["id_number"]) == (
        "钱清算", c.phone, c.id_number)
    assert not any(k.endswith("_hash") for k in data["customer"])  # lookup hashes are internal
    assert sorted(i["external_id"] for i in data["channel_identities"]) == sorted([c.sms_id, c.web_id, c.wechat_id])
    assert data["conversations"] == sorted([f"sms:{c.sms_id}", f"web:{c.web_id}", f"wechat:{c.wechat_id}"])
    [loan] = data["loans"]
    assert (loan["id"], loan["principal"], loan["status"], len(loan["instalments"])) == (ids["loan"], "12000.00",
                                                                                       "settled", 6)
    assert [(p["amount"], p["paid_on"]) for p in loan["payments"]] == [("2052.57", "2025-02-10")]
    assert [p["id"] for p in data["promises_to_pay"]] == [ids["promise"]]
    assert [s["id"] for s in data["settlement_intents"]] == [ids["intent"]]
    assert [(p["id"], p["reason_text"]) for p in data["plan_requests"]] == [(ids["plan"], "住院三个月，医院在北京协和")]
    assert [t["id"] for t in data["complaints"]] == [ids["ticket"], ids["anon_ticket"]]
    assert [e["note"] for e in data["complaints"][0]["events"]] == ["补充：他们说要上门", None]
    assert [(h["id"], [n["text"] for n in h["notes"]]) for h in data["handoff_cases"]] == [(ids["case"], ["已建议申请延期"])]
    assert [s["id"] for s in data["conversation_sessions"]] == [ids["session"]]
    assert [(o["id"], "code_hash" in o) for o in data["verification_challenges"]] == [(ids["otp"], False)]
    assert [n["id"] for n in data["outreach_notices"]] == [ids["notice"]]
    assert [(m["id"], m["body"]) for m in data["sms_messages"]] == [(ids["sms"], "【小安】验证码111111")]
    assert sorted(i["id"] for i in data["understanding_inbox"]) == [ids["review_theirs"], ids["review_shared"]]
    assert [a["id"] for a in data["audit_log"]] == [ids["audit_conv"], ids["audit_code"]]
    [entry] = audit(app, "customer.exported")
    assert (entry.actor, entry.entity_type, entry.entity_id) == ("dpo1", "customer", str(c.id))
    assert entry.detail["sections"]["loans"] == 1 and entry.detail["sections"]["complaints"] == 2


def test_erase_deidentifies_and_keeps_the_money(app, book, borrower):
    c, ids = borrower
    loan_before = book.loan_state(ids["loan"])
    with app.state.sessionmaker() as db:
        payments_before = [retention.row_dict(p) for p in db.scalars(select(Payment).where(Payment.loan_id == ids["loan"]))]
        promise_before = retention.row_dict(db.get(PromiseToPay, ids["promise"]))
    dry = erase(app, c.id, dry_run=True)
    assert get(app, Customer, c.id).name == "钱清算" and audit(app, "customer.erased") == []
    counts = erase(app, c.id)
    assert counts == dry == {
        "customers": 1, "otp_challenges": 1, "channel_identities": 3, "complaint_tickets": 2, "complaint_events": 2,
        "plan_requests": 1, "settlement_intents": 1, "handoff_cases": 1, "handoff_notes": 1, "nlu_review_items": 1,
        "nlu_review_items.conversation": 2, "nlu_review_occurrences": 2, "sms_messages": 1,
        "conversation_sessions": 1, "outreach_notices": 1, "outbox_messages": 0, "audit_log": 2}

    cust = get(app, Customer, c.id)
    assert (cust.name, cust.phone, cust.id_number, cust.card_bank, cust.card_last4, cust.consent_reminders,
            cust.consent_marketing) == (ANON, f"ERASED-{c.id}", ANON, None, None, False, False)
    with app.state.sessionmaker() as db:
        assert db.scalar(select(func.count()).select_from(ChannelIdentity).where(
            ChannelIdentity.id.in_(ids["identities"]))) == 0
        assert db.get(OtpChallenge, ids["otp"]) is None
        assert [retention.row_dict(p) for p in db.scalars(select(Payment).where(Payment.loan_id == ids["loan"]))] \
            == payments_before
        assert retention.row_dict(db.get(PromiseToPay, ids["promise"])) == promise_before
    assert book.loan_state(ids["loan"]) == loan_before
    assert get(app, Loan, ids["loan"]).customer_id == c.id

    for key, conv in (("ticket", "sms:[已匿名化]"), ("anon_ticket", "wechat:[已匿名化]")):
        t = get(app, ComplaintTicket, ids[key])
        assert (t.description, t.desired_outcome, t.contact, t.conversation, t.category) == (
            ANON, ANON, None, conv, ComplaintCategory.collection)
    p = get(app, PlanRequest, ids["plan"])
    assert (p.reason_text, p.conversation, p.amount, p.status) == (ANON, "wechat:[已匿名化]", Decimal("12345.67"),
                                                                   PlanStatus.approved)
    assert get(app, SettlementIntent, ids["intent"]).conversation == "web:[已匿名化]"
    h = get(app, HandoffCase, ids["case"])
    assert (h.summary, h.csat_comment, h.conversation, h.csat) == (ANON, None, "web:[已匿名化]", 4)
    assert get(app, ConversationSession, ids["session"]).conversation == "wechat:[已匿名化]"
    n = get(app, OutreachNotice, ids["notice"])
    assert (n.conversation, n.identity_id, n.status) == ("sms:[已匿名化]", None, OutreachStatus.sent)
    m = get(app, SmsMessage, ids["sms"])
    assert (m.body, m.to_hash, m.to_masked) == (ANON, ANON, "****")
    assert get(app, SmsMessage, ids["sms_other"]).body == "【小安】验证码222222"  # someone else's
    theirs = get(app, NluReviewItem, ids["review_theirs"])
    assert (theirs.text_masked, theirs.status, theirs.exported_at, theirs.conversation_masked) == (
        ANON, ReviewStatus.dismissed, None, "sms:[已匿名化]")
    shared = get(app, NluReviewItem, ids["review_shared"])  # said by others too: words stay
    assert (shared.text_masked, shared.occurrences) == ("嗯嗯", 2)
    with app.state.sessionmaker() as db:
        shared_hashes = sorted(db.scalars(select(NluReviewOccurrence.conversation_hash).where(
            NluReviewOccurrence.item_id == ids["review_shared"])))
    assert keyed_hash(SECRET, f"sms:{c.sms_id}") not in shared_hashes
    assert keyed_hash(SECRET, "sms:+8613900000000") in shared_hashes
    assert get(app, AuditLog, ids["audit_conv"]).entity_id == "sms:[已匿名化]"
    assert get(app, AuditLog, ids["audit_code"]).detail == {"conversation": "sms:[已匿名化]"}

    [entry] = audit(app, "customer.erased")
    assert (entry.actor, entry.entity_type, entry.entity_id) == ("dpo1", "customer", str(c.id))
    assert entry.detail["at"] == NOW.isoformat() and entry.detail["counts"] == {k: v for k, v in counts.items() if v}
    assert entry.at is not None

    # Again: nothing left to change, nothing audited.
    before, audits = snapshot(app), audit_count(app)
    assert erase(app, c.id) == dict.fromkeys(counts, 0)
    assert snapshot(app) == before and audit_count(app) == audits
    # What an export shows now: no name, number or words.
    data = export(app, c.id)
    assert (data["customer"]["name"], data["customer"]["phone"], data["channel_identities"]) == (
        ANON, f"ERASED-{c.id}", [])
    assert [loan["id"] for loan in data["loans"]] == [ids["loan"]]


def test_erase_is_refused_while_the_data_is_needed(app, book):
    clean(app)
    c = book.customer("孙在还")
    book.loan(c.id, "8000", "0.10", 12, date(2026, 6, 1), paid=2)
    [ticket_id] = add(app, ticket(c.id, f"sms:{c.sms_id}", status=ComplaintStatus.received, received=RECENT_CONV))
    before, audits = snapshot(app), audit_count(app)
    with pytest.raises(retention.RetentionRefused) as refused:
        erase(app, c.id)
    assert len(refused.value.reasons) == 2
    assert refused.value.reasons[0].startswith("1 loan(s) not settled (LNT")
    assert refused.value.reasons[1] == f"1 complaint(s) not resolved or closed ({get(app, ComplaintTicket, ticket_id).reference})"
    assert snapshot(app) == before and audit_count(app) == audits
    with pytest.raises(LookupError):
        erase(app, 999_999)


# --------------------------------------------------------------------------- the commands

def test_cli_commands(app, db_url, borrower, tmp_path, capsys, monkeypatch):
    c, ids = borrower
    monkeypatch.setenv("NLU_REVIEW_HASH_SECRET", SECRET)
    monkeypatch.setattr(cli, "apply_env", lambda: None)  # keep .env.example out of this process's environment
    cli.get_settings.cache_clear()
    try:
        cli.main(["--database-url", db_url, "anonymise", "--dry-run", "--by", "ops1"])
        out = capsys.readouterr().out
        assert "would anonymise (dry run, nothing written)" in out and "complaint_tickets" in out

        path = tmp_path / "export" / f"customer-{c.id}.json"
        cli.main(["--database-url", db_url, "export-customer", "--id", str(c.id), "--out", str(path), "--by", "dpo1"])
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["customer"]["phone"] == c.phone
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert f"customer {c.id}: exported to {path}" in capsys.readouterr().out

        other = app.state.sessionmaker
        with other() as db:  # an unsettled loan refuses the erasure, with the reason
            db.add(Loan(loan_no=ref("LNX"), customer_id=c.id, product="xiaofeidai", principal=Decimal("1000"),
                        annual_rate=Decimal("0.1"), term_months=3, start_date=date(2026, 10, 1)))
            db.commit()
        with pytest.raises(SystemExit) as exited:
            cli.main(["--database-url", db_url, "delete-customer", "--id", str(c.id)])
        assert "refused" in str(exited.value.code) and "not settled" in str(exited.value.code)
        with other() as db:
            db.execute(delete(Loan).where(Loan.customer_id == c.id, Loan.loan_no.like("LNX%")))
            db.commit()

        cli.main(["--database-url", db_url, "delete-customer", "--id", str(c.id), "--by", "dpo2"])
        assert f"customer {c.id}: personal data erased by dpo2" in capsys.readouterr().out
        assert [a.actor for a in audit(app, "customer.erased")] == ["dpo2"]
        cli.main(["--database-url", db_url, "delete-customer", "--id", str(c.id)])
        assert "already erased, nothing changed" in capsys.readouterr().out
    finally:
        cli.get_settings.cache_clear()
