"""A complaint the borrower started and did not finish is kept as a draft that staff see.

Leaving the complaint form (「算了」, the form expiring, too many unclear answers, a person asked
for, distress) must not lose what the borrower already said: a regulator counts a complaint as
made once it is voiced. The backend files it with status ``draft`` (same deadline as any
complaint) and completes it in place if the borrower files the full complaint later.
"""
from __future__ import annotations

import logging

from rasa_sdk import Tracker

from bot.backend import BackendClient, BackendError, backend
from texts import text

from .identity import split_sender, verified_customer_id

log = logging.getLogger(__name__)
COMPLAINT_FORM = "complaint_form"


def in_complaint(tracker: Tracker) -> bool:
    return (tracker.active_loop or {}).get("name") == COMPLAINT_FORM


async def save_complaint_draft(tracker: Tracker, client: BackendClient | None = None) -> dict | None:
    """File what the complaint form holds as a draft; None when there is nothing to keep or the
    backend refused (logged by type only: the text is personal data)."""
    category = tracker.get_slot("complaint_category")
    description = tracker.get_slot("complaint_description")
    if not category and not description:
        return None
    client = client or backend()
    channel, _ = split_sender(tracker.sender_id)
    outcome = tracker.get_slot("complaint_outcome")
    try:
        return await client.open_complaint({
            "conversation": tracker.sender_id, "channel": channel,
            "customer_id": await verified_customer_id(client, tracker),
            "category": category or "other",
            "other_categories": [c for c in tracker.get_slot("complaint_other_categories") or [] if c != category],
            "description": description or text("complaint.draft_no_description"),
            "desired_outcome": None if outcome in (None, "-") else outcome,
            "contact": tracker.get_slot("complaint_contact"), "draft": True})
    except BackendError as exc:
        log.warning("complaint draft not saved: %s", type(exc).__name__)
        return None
