"""The first slice end to end: a borrower asks how much they owe and gets their real figures."""
from __future__ import annotations

import re
import sqlite3
from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e


def yuan(value: str) -> str:
    return f"¥{Decimal(value):,.2f}"


def _customer_with_overdue_loan(stack) -> tuple[int, dict]:
    db = stack.env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT c.id FROM customers c JOIN loans l ON l.customer_id = c.id "
            "GROUP BY c.id HAVING COUNT(*) = 1 AND MAX(l.status) = 'overdue' ORDER BY c.id"
        ).fetchall()
    assert rows, "demo data has a borrower with exactly one loan, overdue"
    cid = rows[0][0]
    (loan,) = stack.backend(f"/customers/{cid}/loans").json()
    return cid, loan


def test_borrower_asks_what_they_owe_and_gets_the_true_amount(stack):
    cid, loan = _customer_with_overdue_loan(stack)
    reply = stack.texts(stack.web_sender(cid), "我还欠多少钱")

    assert yuan(loan["total_outstanding"]) in reply
    assert yuan(loan["outstanding_principal"]) in reply
    assert f"已逾期 {loan['days_past_due']} 天" in reply
    assert yuan(loan["penalty_interest"]) in reply
    assert f"尾号{loan['loan_no_last4']}" in reply
    # Dates are written 「12月15日（周二）」.
    if loan["next_due_date"]:
        y, m, d = (int(x) for x in loan["next_due_date"].split("-"))
        assert re.search(rf"{m}月{d}日（周[一二三四五六日]）", reply)


def test_greeting_then_balance_in_one_conversation(stack):
    cid, loan = _customer_with_overdue_loan(stack)
    sender = stack.web_sender(cid)
    assert "您好" in stack.texts(sender, "你好")
    assert yuan(loan["total_outstanding"]) in stack.texts(sender, "我这个月要还多少")


def test_unknown_sender_sees_no_figures(stack):
    reply = stack.texts("web:s-00000000000000000000000000000000", "我还欠多少钱")  # no such web session
    assert "核实身份" in reply and "手机号" in reply
    assert "¥" not in reply and not re.search(r"\d{3,}", reply)


def test_replies_never_carry_the_full_phone_number(stack):
    cid, _ = _customer_with_overdue_loan(stack)
    with stack.db() as conn:  # decrypted view: the numbers as the borrower knows them
        phone, id_number = conn.execute("SELECT phone, id_number FROM customers WHERE id = ?", (cid,)).fetchone()
    reply = stack.texts(stack.web_sender(cid), "查一下我的欠款")
    assert phone not in reply and id_number not in reply
