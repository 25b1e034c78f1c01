"""The notice held back behind 「请问您是王**本人吗？」 (actions/outreach.py): given when the borrower
confirms, only in its own customer's conversation, as the backend words it now."""
from __future__ import annotations

import pytest

pytest.importorskip("rasa_sdk")

from rasa_sdk.events import SlotSet  # noqa: E402

from actions.outreach import ActionIdentityConfirmed  # noqa: E402
from tests.bot.actions_support import DOWN, FakeBackend, backend_data, run, texts, tracker  # noqa: E402

DB = backend_data()
NOTICE_ID = "n-20261206-31-2"
THANKS = "好的，谢谢确认。请问有什么可以帮您？"
CONFIRMED = [SlotSet("answer_context", None), SlotSet("contact_confirmed", True), SlotSet("pending_notice", None)]
NOTICE = {**DB["notice_due"], "kind": "overdue_3",
          "text": "您的个人消费贷（尾号1234）已逾期3天，逾期应还 ¥1,395.20，请尽快还款。"}


def confirmed(**slots):
    return tracker("tracker_outreach_notice", slots={"pending_notice": NOTICE_ID, "answer_context": "identity_check",
                                                     **slots},
                   latest_message={"text": "是我", "intent": {"name": "affirm"}, "entities": []})


def test_the_held_back_notice_is_given_after_the_confirmation():
    fake = FakeBackend(outreach_notice=NOTICE, identity=DB["identity_web"])
    events, d = run(ActionIdentityConfirmed(), confirmed(), fake)
    assert texts(d) == [NOTICE["text"]]
    assert events == CONFIRMED
    assert fake.calls == [("outreach_notice", NOTICE_ID), ("identity", "web", "s-7f3c9a1e5b2d4c6e8a0b")]


def test_a_notice_about_someone_else_is_not_given():
    fake = FakeBackend(outreach_notice={**NOTICE, "customer_id": 8}, identity=DB["identity_web"])
    events, d = run(ActionIdentityConfirmed(), confirmed(), fake)
    assert texts(d) == [THANKS] and events == CONFIRMED


def test_a_notice_that_no_longer_applies_is_not_given():
    fake = FakeBackend(outreach_notice={**NOTICE, "text": None}, identity=DB["identity_web"])
    events, d = run(ActionIdentityConfirmed(), confirmed(), fake)
    assert texts(d) == [THANKS] and events == CONFIRMED


def test_no_figures_when_the_backend_is_down():
    fake = FakeBackend(outreach_notice=DOWN)
    events, d = run(ActionIdentityConfirmed(), confirmed(), fake)
    assert texts(d) == [THANKS] and events == CONFIRMED


def test_a_rating_request_remembers_its_case():
    notice = {"notice_id": NOTICE_ID, "kind": "csat_followup", "customer_id": None, "loan_id": None,
              "payload": {"case_id": 44}, "text": "请为刚才的人工服务打分（1-5分）。"}
    fake = FakeBackend(outreach_notice=notice)
    events, d = run(ActionIdentityConfirmed(), confirmed(), fake)
    assert texts(d) == [notice["text"]]
    assert events == CONFIRMED + [SlotSet("handoff_case", 44)]
    assert fake.calls == [("outreach_notice", NOTICE_ID)]
