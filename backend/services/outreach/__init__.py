"""Proactive outreach (issue 7): reminders, overdue notices and service notices sent through Rasa.

* planner: the day's notices from the loan book, inserted idempotently (unique dedupe_key);
* rules: the contact window, the caps and the suppressions, checked again at send time;
* routing: which channel and conversation can take a notice now;
* dispatcher: claims due notices (a conditional UPDATE), applies the rules, sends through a
  Sender, retries with backoff and recovers notices a crashed dispatcher left in "sending";
* render: what each notice says, worded by the backend from its own records (catalogue texts);
* outbox: the messages saved before they are sent (a decision's with the decision), their outcome;
* sender: the Sender protocol and RasaSender (a bot message appended through Rasa's HTTP API, per
  channel; the tracker says what was delivered);
* worker: the backend's thread delivering decision notices as soon as they are due;
* decisions: plan decisions and complaint updates recorded as notices (backend.services.notices);
* lease: only the scheduler process holding the lease runs the jobs;
* summary: counts for the API and the dashboard.
"""
