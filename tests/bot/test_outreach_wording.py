"""The wording rules over the whole text catalogue (texts.everything(): texts/zh/*.yml and the domain's
responses): no threats, no third parties, nothing that shames. And the outreach texts: every kind has
one and the placeholders fill."""
from __future__ import annotations

import re

import pytest

import texts
from texts.wording import outreach as render

KINDS = ["due_in_3_days", "due_in_1_day", "due_today", "overdue_1", "overdue_3", "overdue_7", "overdue_15",
         "overdue_30", "hardship_offer", "promise_reminder", "csat_followup"]
# Phrases a collection message must never contain (Criminal Law 293-1, the NIFA convention).
FORBIDDEN = ["起诉", "诉讼", "法院", "传票", "律师", "公安", "警察", "报警", "逮捕", "拘留", "坐牢", "刑事", "犯罪",
             "家人", "家属", "亲友", "亲戚", "父母", "配偶", "单位", "公司领导", "同事", "通讯录", "联系人", "上门",
             "曝光", "黑名单", "老赖", "失信", "后果自负", "最后通牒", "走着瞧", "骗子"]
# Where a forbidden phrase is only a substring of an innocent word: 「联系人工客服」 is 联系 + 人工客服.
NOT_A_HIT = {"联系人": re.compile(r"联系人(?!工)")}
# Texts reviewed by compliance that name a third party to protect the borrower, never to press them:
# the promise that their debt is told to no one, the record of their demand that others are not
# contacted, and where a utility bill is paid (缴费单位 is the utility, not an employer). Key -> the
# words allowed in that text only.
REVIEWED = {
    "knowledge.overdue_consequences": {"家人", "同事", "通讯录", "联系人"},
    "knowledge.complaint_third_party_stop": {"家人", "同事"},
    "knowledge.other_product_non_loan_bill": {"单位"},
}


def forbidden_in(text: str) -> list[str]:
    return [w for w in FORBIDDEN if (NOT_A_HIT[w].search(text) if w in NOT_A_HIT else w in text)]


def kinds() -> list[str]:
    return [k for k in texts.section("outreach") if k != "how_to_pay"]
VALUES = {"loan": "信用贷（尾号0012）", "amount": "¥2,500.00", "due_date": "12月15日（周二）", "days": 7,
          "penalty": "¥35.20", "promised_date": "11月25日（周三）", "reference": "HO20261122-0003"}


def test_every_kind_has_a_template():
    assert sorted(kinds()) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_templates_fill_and_keep_the_rules(kind):
    text = render(kind, **VALUES)
    assert "{" not in text and "}" not in text
    hits = forbidden_in(text)
    assert hits == [], f"{kind}: {hits}"
    assert not re.search(r"1[3-9]\d{9}", text)


@pytest.mark.parametrize("kind", ["due_in_3_days", "due_in_1_day", "due_today"])
def test_reminders_say_amount_date_how_to_pay_and_how_to_stop(kind):
    text = render(kind, **VALUES)
    assert "¥2,500.00" in text and "12月15日（周二）" in text and "立即还款" in text and "回复「退订」" in text


def test_overdue_notice_is_factual_and_points_to_a_plan():
    assert render("overdue_7", **VALUES) == (
        "您好，您的信用贷（尾号0012）已逾期7天，目前逾期应还 ¥2,500.00（含罚息 ¥35.20）。请尽快还款，以免继续产生罚息。"
        "可在App「我的借款-立即还款」操作，或保证还款卡余额充足以便当天自动扣款。"
        "如暂时有困难，可以回复「申请分期」了解协商还款；如已还款请忽略本消息。")


def test_the_check_catches_a_threat():
    assert forbidden_in("再不还款就起诉你并通知你的家人和单位") == ["起诉", "家人", "单位"]
    assert forbidden_in("我们会联系您的紧急联系人") == ["联系人"]
    assert forbidden_in("请回复「转人工」联系人工客服") == []


def test_the_whole_catalogue_keeps_the_rules():
    """Every text a borrower (or a staff member replying to one) reads: no threat, no third party,
    no shaming, no phone number; the reviewed exceptions only for their own words."""
    everything = texts.everything()
    assert len(everything) > 300 and any(k.startswith("domain.") for k in everything)
    problems = {}
    for key, text in everything.items():
        hits = [w for w in forbidden_in(text) if w not in REVIEWED.get(key, set())]
        if hits or re.search(r"1[3-9]\d{9}", text):
            problems[key] = hits or ["phone number"]
    assert problems == {}


def test_reviewed_exceptions_are_still_needed():
    """An exception whose text changed (or went) is dropped, not kept as a blank cheque."""
    everything = texts.everything()
    for key, allowed in REVIEWED.items():
        assert key in everything, key
        assert allowed <= set(forbidden_in(everything[key])), key


def test_vocabulary_is_not_in_what_borrowers_read():
    assert texts.words("vocabulary.sms_opt_out")
    assert not any(k.startswith("vocabulary.") for k in texts.everything())
