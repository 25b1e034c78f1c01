"""Proactive outreach (issue 7): reminders, overdue notices and service notices sent through Rasa.

* planner: the day's notices from the loan book, inserted idempotently (unique dedupe_key);
* rules: the contact window, the caps and the suppressions, checked again at send time;
* routing: which channel and conversation can take a notice now;
* dispatcher: claims due notices (a conditional UPDATE), applies the rules, sends through a
  Sender, retries with backoff and recovers notices a crashed dispatcher left in "sending";
* sender: the Sender protocol and RasaSender (trigger_intent; the tracker says what was delivered);
* decisions: plan decisions and complaint updates recorded as notices (backend.services.notices);
* lease: only the scheduler process holding the lease runs the jobs;
* summary: counts for the API and the dashboard.
"""
