"""The outreach templates: every kind has one, the placeholders fill, and the wording stays within
the collection rules (no threats, no third parties, nothing that shames)."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("rasa_sdk")

from actions.outreach import TEMPLATES, render  # noqa: E402

KINDS = ["due_in_3_days", "due_in_1_day", "due_today", "overdue_1", "overdue_3", "overdue_7", "overdue_15",
         "overdue_30", "hardship_offer", "promise_reminder", "csat_followup"]
# Phrases a collection message must never contain (Criminal Law 293-1, the NIFA convention).
FORBIDDEN = ["起诉", "诉讼", "法院", "传票", "律师", "公安", "警察", "报警", "逮捕", "拘留", "坐牢", "刑事", "犯罪",
             "家人", "家属", "亲友", "亲戚", "父母", "配偶", "单位", "公司领导", "同事", "通讯录", "联系人", "上门",
             "曝光", "黑名单", "老赖", "失信", "后果自负", "最后通牒", "走着瞧", "骗子"]
VALUES = {"loan": "信用贷（尾号0012）", "amount": "¥2,500.00", "due_date": "12月15日（周二）", "days": 7,
          "penalty": "¥35.20", "promised_date": "11月25日（周三）", "reference": "HO20261122-0003"}


def test_every_kind_has_a_template():
    assert sorted(p.stem for p in TEMPLATES.glob("*.txt")) == sorted(KINDS + ["how_to_pay"])


@pytest.mark.parametrize("kind", KINDS)
def test_templates_fill_and_keep_the_rules(kind):
    text = render(kind, **VALUES)
    assert "{" not in text and "}" not in text
    hits = [w for w in FORBIDDEN if w in text]
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
    assert [w for w in FORBIDDEN if w in "再不还款就起诉你并通知你的家人和单位"] == ["起诉", "家人", "单位"]
