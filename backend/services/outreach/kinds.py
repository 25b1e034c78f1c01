"""What each notice kind is: its name in the audit log, whether it is a service notice, its priority."""
from __future__ import annotations

from backend.models import OutreachKind as K

# The name a decision's notice has in its audit rows (notice_sent / notice_deferred / notice_failed,
# detail "intent"): the Rasa intents that once carried the notices, kept so the audit log reads the same.
INTENTS = {
    K.due_in_3_days: "EXTERNAL_due_reminder", K.due_in_1_day: "EXTERNAL_due_reminder",
    K.due_today: "EXTERNAL_due_reminder",
    K.overdue_1: "EXTERNAL_overdue_notice", K.overdue_3: "EXTERNAL_overdue_notice",
    K.overdue_7: "EXTERNAL_overdue_notice", K.overdue_15: "EXTERNAL_overdue_notice",
    K.overdue_30: "EXTERNAL_overdue_notice",
    K.hardship_offer: "EXTERNAL_hardship_offer",
    K.promise_reminder: "EXTERNAL_promise_reminder",
    K.csat_followup: "EXTERNAL_csat_followup",
    K.plan_decision: "EXTERNAL_plan_decision",
    K.complaint_update: "EXTERNAL_complaint_update",
}

# Answers to something the borrower started: their own cap, not a reminder's slot.
SERVICE = frozenset({K.plan_decision, K.complaint_update, K.csat_followup})
# Decisions the borrower must hear: never waived by an unsubscribe, held (not dropped) while staff
# have the conversation, and they carry the record's reference.
DECISIONS = frozenset({K.plan_decision, K.complaint_update})

REMINDER = {3: K.due_in_3_days, 1: K.due_in_1_day, 0: K.due_today}
OVERDUE = {1: K.overdue_1, 3: K.overdue_3, 7: K.overdue_7, 15: K.overdue_15, 30: K.overdue_30}
OVERDUE_KINDS = frozenset(OVERDUE.values())

# Lower first: with one notice a day allowed, the most serious one goes.
PRIORITY = {
    K.plan_decision: 0, K.complaint_update: 0, K.csat_followup: 5,
    K.overdue_30: 10, K.overdue_15: 11, K.overdue_7: 12, K.overdue_3: 13, K.overdue_1: 14,
    K.promise_reminder: 15, K.due_today: 20, K.due_in_1_day: 21, K.due_in_3_days: 22,
    K.hardship_offer: 30,
}

