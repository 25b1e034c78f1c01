"""What the borrower is told when a person takes over, and how a typed rating is read."""
from __future__ import annotations

import pytest

pytest.importorskip("rasa_sdk")

from actions.handoff import _wait_text, parse_score  # noqa: E402


def test_in_staffed_hours_the_wait_and_the_queue_are_quoted():
    case = {"reference": "HO20261123-0007", "staffed": True, "position": 3, "wait_minutes": 7}
    assert _wait_text(case) == (
        "好的，已为您转接人工客服（工单号HO20261123-0007）。接下来将由我们的人工客服为您服务，"
        "您前面还有2位客户在等待，预计约7分钟内回复。您可以先把问题发过来，客服接入后会直接看到。")


def test_first_in_the_queue_is_not_told_about_a_queue():
    case = {"reference": "HO20261123-0001", "staffed": True, "position": 1, "wait_minutes": 3}
    assert "您前面还有" not in _wait_text(case)
    assert "预计约3分钟内回复" in _wait_text(case)


def test_outside_staffed_hours_it_says_when_staff_are_back():
    case = {"reference": "HO20261123-0002", "staffed": False, "position": 1, "wait_minutes": 545,
            "next_staffed_at": "2026-11-24T09:00:00+08:00"}
    assert _wait_text(case) == (
        "人工客服的服务时间是每天09:00-21:00，现在不在服务时间。您的请求已登记（工单号HO20261123-0002），"
        "客服将在11月24日（周二）09:00上班后优先处理，预计约545分钟内回复您。您可以先留言，客服上线后会直接看到。")


@pytest.mark.parametrize("text, score", [
    ("5", 5), ("1", 1), ("五", 5), ("五分", 5), ("4分", 4), ("3 分", 3), ("两分", 2), ("4星", 4),
    ("５", 5), (" 5 ", 5), ("5分！", 5),
])
def test_ratings_as_people_type_them(text, score):
    assert parse_score(text) == score


@pytest.mark.parametrize("text", ["0", "6", "10", "55", "很好", "", "5678", "一百"])
def test_not_a_rating(text):
    assert parse_score(text) is None
