"""Another lender's product is a policy, not an intent; short answers are read from the question the
bot just asked. The entity rules (bot/nlu/entities.py, lexicon/product.yml), the policy answer
(actions/other_product.py) and the answer context (actions/answer_context.py), with tracker fixtures."""
from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("rasa_sdk")

from rasa_sdk import Tracker  # noqa: E402
from rasa_sdk.executor import CollectingDispatcher  # noqa: E402

from actions.answer_context import ActionAnswerContext, ActionNoHumanNeeded, context_is_stale  # noqa: E402
from actions.other_product import ActionOtherProduct, product_mention  # noqa: E402
from bot.nlu.entities import extract  # noqa: E402


def products(text):
    return [(e.text, e.value, e.role) for e in extract(text) if e.entity == "product"]


@pytest.mark.parametrize("text, expected", [
    ("花呗逾期会怎样", [("花呗", "other_lender", "elsewhere")]),
    ("借唄還款日是哪天", [("借唄", "other_lender", "elsewhere")]),
    ("度小满还欠多少", [("度小满", "other_lender", "elsewhere")]),
    ("信用卡账单还不上了能分期吗", [("信用卡账单", "credit_card", "elsewhere")]),
    ("水费欠了会怎样", [("水费", "non_loan_bill", "elsewhere")]),
    ("我在你们这借的还欠多少", [("在你们这借的", "ours", None)]),
    # Ours named too: the message is about us, no role (the normal answers apply).
    ("花呗逾期会影响在你们这借的吗", [("花呗", "other_lender", None), ("在你们这借的", "ours", None)]),
])
def test_product_mentions_and_the_elsewhere_role(text, expected):
    assert products(text) == expected


@pytest.mark.parametrize("text", [
    "用花呗还款可以吗",  # the way to pay us
    "能拿信用卡还你们的钱吗",
    "逾期会影响我办信用卡吗",  # what a bad record of OUR loan holds up
    "逾期了还能申请房贷吗",
    "我还欠多少",
    "交了房租就没钱还了",
])
def test_no_product_of_someone_else(text):
    assert products(text) == []


def tracker(text="", intent="x", entities=None, events=None, slots=None) -> Tracker:
    return Tracker("sms:+8613800000000", slots or {}, {"text": text, "intent": {"name": intent}, "entities": entities or []},
                   events or [], False, None, None, "action_listen")


def run(action, t: Tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {}))
    return [m["text"] for m in dispatcher.messages], events


def entities_of(text):
    return [{"entity": e.entity, "start": e.start, "end": e.end, "value": e.value,
             **({"role": e.role} if e.role else {})} for e in extract(text)]


def test_other_lender_question_names_it_says_what_we_cannot_do_and_gives_no_figures():
    text = "花呗逾期会怎样"
    texts, events = run(ActionOtherProduct(), tracker(text, "ask_overdue_consequences", entities_of(text)))
    assert events == []
    (answer,) = texts
    assert answer.startswith("您问的是「花呗」吧。我是示例消费金融的客服助手，只能查询和办理您在我们这里的借款")
    assert "一般来说，贷款或信用卡逾期都可能产生罚息并影响征信，具体以该机构的合同为准。" in answer
    assert answer.endswith("如果您想问在我们这里的借款，直接告诉我就好。")
    assert "¥" not in answer


def test_credit_card_and_bill_answers_point_to_the_bank_or_the_biller():
    text = "信用卡账单还不上了能分期吗"
    (answer,), _ = run(ActionOtherProduct(), tracker(text, "request_repayment_plan", entities_of(text)))
    assert answer.startswith("信用卡的账单、还款和分期由发卡银行办理")
    assert "您在我们这里的借款可以申请协商还款（分期、延期或减免罚息）" in answer
    text = "水费欠费了交不上怎么办"
    (answer,), _ = run(ActionOtherProduct(), tracker(text, "ask_repayment_method", entities_of(text)))
    assert answer.startswith("「水费」这类生活缴费不归我们管理")


def test_complaint_about_another_lender_gives_the_regulator_hotline():
    text = "我要投诉借呗乱收费"
    (answer,), _ = run(ActionOtherProduct(), tracker(text, "complaint", entities_of(text)))
    assert "金融消费者投诉热线12378" in answer


def test_product_mention_ignores_our_own_product():
    text = "我在你们这借的还欠多少"
    assert product_mention(tracker(text, "query_balance", entities_of(text))) is None


def user(text="x"):
    return {"event": "user", "text": text}


def context(value):
    return {"event": "slot", "name": "answer_context", "value": value}


def test_a_context_set_in_the_bot_s_last_turn_stays_for_this_answer():
    events = [user("可以"), {"event": "action", "name": "action_after_verification"},
              context("identity_check"), {"event": "action", "name": "action_listen"}, user("是")]
    assert not context_is_stale(events)
    texts, out = run(ActionAnswerContext(), tracker("是", "affirm", events=events, slots={"answer_context": "identity_check"}))
    assert (texts, out) == ([], [])


def test_a_context_older_than_the_bot_s_last_turn_is_cleared():
    events = [user(), context("offer_human"), user("我还欠多少"), {"event": "action", "name": "action_answer_balance"},
              user("好的")]
    assert context_is_stale(events)
    _, out = run(ActionAnswerContext(), tracker("好的", "affirm", events=events, slots={"answer_context": "offer_human"}))
    assert out == [{"event": "slot", "timestamp": None, "name": "answer_context", "value": None}]


def test_declining_a_person_keeps_serving():
    (text,), out = run(ActionNoHumanNeeded(), tracker("不用了", "deny"))
    assert text == "好的，那我继续为您服务。之后需要人工客服时，随时回复「转人工」。"
    assert out[0]["name"] == "answer_context" and out[0]["value"] is None
