"""The understanding inbox (理解收件箱): learn from live traffic.

* **Capture.** The Rasa server's event broker (bot/review_broker.py) reports every borrower message
  that fell back (nlu_fallback) or whose top intent scored under ``nlu_review.review_below``
  (config/business.yml) through ``POST /api/v1/nlu-review/items``; staff flag a message of a
  transcript (``flag``: the backend re-reads that event from Rasa's tracker). ``record`` masks the
  text (masking.mask_digits: no phone, ID, card number or code is ever stored), keeps the
  conversation id masked plus a keyed hash, and counts the same masked text again as one more
  occurrence of the same item; one message event is never counted twice (a keyed hash of the
  conversation and the event's timestamp).
* **Review.** Supervisors confirm the predicted intent, correct it (any intent of the contract) or
  dismiss the message (``decide``); agents only read. Every change is in the audit log.
* **Export.** ``export`` writes every confirmed and corrected text, whole and in a fixed order, to
  data/nlu/reviewed.yml (backend.services.nlu_export renders it), leaving out texts the hand-written
  data already has (same intent: redundant; another intent: a conflict, reported for the team to
  settle in the hand-written file). ``make model`` then retrains: bot/launch.py hashes data/.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import texts
from backend.core.clock import local
from backend.core.config import BusinessRules, contract_intents
from backend.core.errors import AppError, not_found
from backend.models import Channel, NluReviewItem, NluReviewOccurrence, ReviewSource, ReviewStatus, StaffSession
from backend.models.nlu_review import INTENT_LABELS, SOURCE_LABELS, SOURCE_RANK, STATUS_LABELS
from backend.nlu_review_schemas import IntentOut, NluReviewItemOut, RankedIntentOut

from . import accounts, audit, console, nlu_export
from .masking import mask_digits
from .rasa_api import RasaClient

EXPORTED = (ReviewStatus.confirmed, ReviewStatus.corrected)
LIST_LIMIT = 200


# --------------------------------------------------------------------------- keys and masks

def keyed_hash(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def event_key(secret: str, conversation: str, timestamp: float) -> str:
    """The identity of one message event: its conversation and Rasa's timestamp of it (repr keeps
    every bit of the float, which JSON carries exactly between Rasa, the backend and the browser)."""
    return keyed_hash(secret, f"{conversation}\x1f{float(timestamp)!r}")


def mask_conversation(conversation: str) -> str:
    """As the console shows conversation ids (sms:138****5678, wechat:oWx1****abcd); an id on no
    known channel gets every number masked."""
    channel, _, external = conversation.partition(":")
    if channel in {c.value for c in Channel} and external:
        return f"{channel}:{accounts._mask_external(Channel(channel), external)}"
    return mask_digits(conversation)


def intent_label(name: str | None) -> str | None:
    return None if name is None else INTENT_LABELS.get(name, name)


def _check_intent(name: str, what: str = "intent") -> str:
    if name not in contract_intents():
        raise AppError(422, "unknown_intent", texts.text("errors.nlu_review.unknown_intent", name=name[:60]),
                       f"Unknown {what}: not in the intent contract")
    return name


# --------------------------------------------------------------------------- recording

def record(db: Session, rules: BusinessRules, secret: str, *, conversation: str, channel: str, text: str,
           timestamp: float, source: ReviewSource, predicted_intent: str | None, confidence: float | None,
           ranking: list[dict], now: datetime, actor: str) -> tuple[NluReviewItem, str]:
    """Record one message for review: (item, "created" | "counted" | "duplicate"). Everything is
    checked before anything is written; a refused message writes nothing."""
    cleaned = nlu_export.clean_text(text)
    if not cleaned:
        raise AppError(422, "empty", texts.text("errors.empty_text"), "Text must not be blank")
    if len(cleaned) > rules.nlu_review.max_text_chars:
        raise AppError(422, "text_too_long",
                       texts.text("errors.nlu_review.text_too_long", limit=rules.nlu_review.max_text_chars),
                       f"Text longer than {rules.nlu_review.max_text_chars} characters")
    if predicted_intent is not None:
        _check_intent(predicted_intent)
    names = [r["intent"] for r in ranking]
    for name in names:
        _check_intent(name, "intent in the ranking")
    if len(set(names)) != len(names):
        raise AppError(422, "bad_ranking", texts.text("errors.nlu_review.duplicate_ranking"),
                       "An intent appears twice in the ranking")
    if predicted_intent is not None and names and names[0] != predicted_intent:
        raise AppError(422, "bad_ranking", texts.text("errors.nlu_review.ranking_mismatch"),
                       "The ranking must start with the predicted intent")
    if source == ReviewSource.low_confidence and (confidence is None or confidence >= rules.nlu_review.review_below):
        raise AppError(422, "not_low_confidence", texts.text("errors.nlu_review.not_low_confidence"),
                       f"Confidence is not below nlu_review.review_below ({rules.nlu_review.review_below})")

    masked = mask_digits(cleaned)
    key = event_key(secret, conversation, timestamp)
    conv_hash = keyed_hash(secret, conversation)
    known = db.scalar(select(NluReviewOccurrence).where(NluReviewOccurrence.event_key == key))
    if known is not None:  # this very message: not counted again, but a staff flag still shows
        item = db.get(NluReviewItem, known.item_id)
        if SOURCE_RANK[source] > SOURCE_RANK[item.source]:
            item.source = source
        return item, "duplicate"

    text_key = hashlib.sha256(masked.encode()).hexdigest()
    item, created = _item_for(db, text_key, lambda: NluReviewItem(
        text_masked=masked, text_key=text_key, conversation_masked=mask_conversation(conversation),
        conversation_hash=conv_hash, channel=channel, source=source, predicted_intent=predicted_intent,
        confidence=confidence, ranking=ranking, occurrences=0, status=ReviewStatus.open, created_at=now,
        last_seen_at=now))
    occurrence = NluReviewOccurrence(
        item_id=item.id, event_key=key, conversation_hash=conv_hash, source=source,
        event_at=datetime.fromtimestamp(timestamp, ZoneInfo(rules.timezone)), recorded_by=actor[:50], created_at=now)
    try:
        with db.begin_nested():
            db.add(occurrence)
    except IntegrityError:  # the same message reported concurrently
        if created:  # nothing else counts it: keep no empty item
            db.delete(item)
            db.flush()
        return db.scalar(select(NluReviewItem).join(NluReviewOccurrence).where(NluReviewOccurrence.event_key == key)), "duplicate"
    item.occurrences += 1
    item.last_seen_at = now
    item.conversation_masked, item.conversation_hash, item.channel = mask_conversation(conversation), conv_hash, channel
    if SOURCE_RANK[source] > SOURCE_RANK[item.source]:
        item.source = source
    if not created and item.status == ReviewStatus.open and predicted_intent is not None:
        # still open: show what the current model thinks
        item.predicted_intent, item.confidence, item.ranking = predicted_intent, confidence, ranking
    if created:
        audit.record(db, actor, "nlu_review.recorded", "nlu_review_item", item.id, source=source.value,
                     channel=channel, predicted_intent=predicted_intent)
    return item, "created" if created else "counted"


def _item_for(db: Session, text_key: str, make) -> tuple[NluReviewItem, bool]:
    item = db.scalar(select(NluReviewItem).where(NluReviewItem.text_key == text_key))
    if item is not None:
        return item, False
    item = make()
    try:
        with db.begin_nested():
            db.add(item)
    except IntegrityError:  # the same text recorded concurrently: count it there
        return db.scalar(select(NluReviewItem).where(NluReviewItem.text_key == text_key)), False
    return item, True


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return min(max(float(value), 0.0), 1.0)


def prediction(parse_data: dict | None) -> tuple[str | None, float | None, list[dict]]:
    """What the NLU thought of a message, from Rasa's parse data: (intent, confidence, top-3 ranking).
    For a fallback the intent is the best one under nlu_fallback; intents outside the contract (the
    fallback itself, EXTERNAL_ triggers) are left out of all three."""
    parse_data = parse_data if isinstance(parse_data, dict) else {}
    contract = set(contract_intents())
    ranking: list[dict] = []
    for r in parse_data.get("intent_ranking") or []:
        if isinstance(r, dict) and r.get("name") in contract and r["name"] not in {x["intent"] for x in ranking}:
            ranking.append({"intent": r["name"], "confidence": round(_number(r.get("confidence")) or 0.0, 4)})
    top = parse_data.get("intent") if isinstance(parse_data.get("intent"), dict) else {}
    if not ranking and top.get("name") in contract:
        ranking = [{"intent": top["name"], "confidence": round(_number(top.get("confidence")) or 0.0, 4)}]
    if not ranking:
        return None, None, []
    return ranking[0]["intent"], ranking[0]["confidence"], ranking[:3]


def flag(db: Session, rules: BusinessRules, rasa: RasaClient, secret: str, session: StaffSession, case_id: int,
         timestamp: float, now: datetime) -> tuple[NluReviewItem, str]:
    """A staff member marks a borrower message of a case's transcript as misunderstood. The message
    is found by its event timestamp in the conversation as Rasa has it (never taken from the page):
    a timestamp that is no borrower message of that conversation is a 404 and writes nothing."""
    case = console.viewable_case(db, session, case_id)
    events = rasa.events(case.conversation)
    event = next((e for e in events if e.get("event") == "user" and e.get("timestamp") == timestamp
                  and _borrower_text(e)), None)
    if event is None:
        raise not_found(texts.text("errors.things.borrower_message"), "Borrower message")
    intent, confidence, ranking = prediction(event.get("parse_data"))
    actor = session.staff.username
    item, outcome = record(db, rules, secret, conversation=case.conversation, channel=case.channel.value,
                           text=event["text"], timestamp=timestamp, source=ReviewSource.staff_flag,
                           predicted_intent=intent, confidence=confidence, ranking=ranking, now=now, actor=actor)
    audit.record(db, actor, "nlu_review.flagged", "nlu_review_item", item.id, case_id=case.id, outcome=outcome)
    return item, outcome


def _borrower_text(event: dict) -> bool:
    """What the borrower typed: not a button payload or intent injection ('/...'), not a trigger."""
    text = event.get("text")
    name = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or ""
    return (isinstance(text, str) and bool(text.strip()) and not text.startswith("/")
            and not name.startswith("EXTERNAL_"))


# --------------------------------------------------------------------------- the console

def inbox(db: Session, statuses: list[ReviewStatus] | None, sources: list[ReviewSource] | None,
          limit: int = LIST_LIMIT) -> list[NluReviewItem]:
    """Newest first (last seen), the open items unless statuses are given."""
    stmt = select(NluReviewItem).where(NluReviewItem.status.in_(statuses or [ReviewStatus.open]))
    if sources:
        stmt = stmt.where(NluReviewItem.source.in_(sources))
    return list(db.scalars(stmt.order_by(NluReviewItem.last_seen_at.desc(), NluReviewItem.id.desc()).limit(limit)))


def intents_out() -> list[IntentOut]:
    return [IntentOut(name=n, label=INTENT_LABELS.get(n, n)) for n in contract_intents()]


def _local(dt: datetime | None, rules: BusinessRules) -> datetime | None:
    """In the business timezone (stored date-times come back aware: backend.models.base.AwareDateTime)."""
    return local(dt, ZoneInfo(rules.timezone))


def item_out(item: NluReviewItem, rules: BusinessRules) -> NluReviewItemOut:
    return NluReviewItemOut(
        id=item.id, text_masked=item.text_masked, conversation_masked=item.conversation_masked,
        channel=item.channel, source=item.source.value, source_label=SOURCE_LABELS[item.source],
        predicted_intent=item.predicted_intent, predicted_label=intent_label(item.predicted_intent),
        confidence=item.confidence,
        ranking=[RankedIntentOut(intent=r["intent"], label=intent_label(r["intent"]), confidence=r["confidence"])
                 for r in item.ranking or []],
        occurrences=item.occurrences, status=item.status.value, status_label=STATUS_LABELS[item.status],
        final_intent=item.final_intent, final_label=intent_label(item.final_intent), reviewed_by=item.reviewed_by,
        reviewed_at=_local(item.reviewed_at, rules), exported_at=_local(item.exported_at, rules),
        created_at=_local(item.created_at, rules), last_seen_at=_local(item.last_seen_at, rules))


def can_review(session: StaffSession) -> bool:
    return session.staff.role.value == "supervisor"


def decide(db: Session, session: StaffSession, item_id: int, intent: str | None, now: datetime) -> NluReviewItem:
    """A supervisor's decision: ``intent`` confirms (the predicted one) or corrects (another one of
    the contract); None dismisses the message. A decision may be changed later (the next export
    follows); repeating the current one changes nothing."""
    if not can_review(session):
        raise AppError(403, "forbidden", texts.text("errors.nlu_review.supervisor_only"),
                       "Only a supervisor can review the understanding inbox")
    item = db.get(NluReviewItem, item_id)
    if item is None:
        raise not_found(texts.text("errors.things.review_item"), "Review item")
    if intent is None:
        status, final = ReviewStatus.dismissed, None
    else:
        final = _check_intent(intent)
        status = ReviewStatus.confirmed if final == item.predicted_intent else ReviewStatus.corrected
    if (item.status, item.final_intent) == (status, final):
        return item
    previous = item.status.value
    item.status, item.final_intent = status, final
    item.reviewed_by, item.reviewed_at, item.exported_at = session.staff.username, now, None
    audit.record(db, session.staff.username, f"nlu_review.{status.value}", "nlu_review_item", item.id,
                 final_intent=final, predicted_intent=item.predicted_intent, previous_status=previous)
    return item


# --------------------------------------------------------------------------- export

@dataclass
class ExportResult:
    path: Path
    written: int = 0  # examples in the file
    newly_exported: int = 0  # of which not in the previous export
    intents: int = 0
    redundant: list[tuple[str, str]] = field(default_factory=list)  # (text, intent): already in the data
    conflicts: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)  # (text, intent, {other intent: files})
    unsafe: list[tuple[str, str]] = field(default_factory=list)  # (text, intent): not writable as an example

    def summary(self) -> dict:
        return {"written": self.written, "newly_exported": self.newly_exported, "intents": self.intents,
                "redundant": len(self.redundant), "conflicts": len(self.conflicts), "unsafe": len(self.unsafe)}


def export(db: Session, out: Path, nlu_dir: Path, now: datetime, actor: str = "cli") -> ExportResult:
    """Regenerate ``out`` from every confirmed and corrected item (by intent, then text), byte for
    byte the same for the same decisions. Written atomically; the items written are marked exported
    (``exported_at``, the first export of their current decision) and the export is audited."""
    result = ExportResult(path=out)
    existing = nlu_export.existing_examples(nlu_dir, skip=[out])
    rows = db.scalars(select(NluReviewItem).where(NluReviewItem.status.in_(EXPORTED))).all()
    chosen: dict[str, list[str]] = {}
    written: list[NluReviewItem] = []
    for item in sorted(rows, key=lambda i: (i.final_intent or "", i.text_masked)):
        text, intent = item.text_masked, item.final_intent
        if not intent or not nlu_export.safe_example(text):
            result.unsafe.append((text, intent or ""))
            continue
        there = existing.get(text, {})
        others = {i: files for i, files in there.items() if i != intent}
        if others:
            result.conflicts.append((text, intent, others))
        elif intent in there:
            result.redundant.append((text, intent))
        else:
            chosen.setdefault(intent, []).append(text)
            written.append(item)
    content = nlu_export.render(chosen)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(content)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for item in written:
        if item.exported_at is None:
            item.exported_at = now
            result.newly_exported += 1
    result.written, result.intents = len(written), len(chosen)
    audit.record(db, actor, "nlu_review.exported", "nlu_review_export", out.name[:40], path=str(out),
                 **result.summary())
    return result
