"""Repayment-plan requests, early settlement and complaints end to end: real Rasa, action server,
backend and database; the figures the borrower sees are checked against the backend's own."""
from __future__ import annotations

import re
import sqlite3
import time
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from console_client import ConsoleUser  # noqa: E402

pytestmark = pytest.mark.e2e
WEEKDAYS = "一二三四五六日"
TZ = ZoneInfo("Asia/Shanghai")


def yuan(value) -> str:
    return f"¥{Decimal(str(value)):,.2f}"


def cn_day(iso: str, with_year: bool = False) -> str:
    d = date.fromisoformat(str(iso)[:10])
    return f"{f'{d.year}年' if with_year else ''}{d.month}月{d.day}日（周{WEEKDAYS[d.weekday()]}）"


def today() -> date:
    return datetime.now(TZ).date()


_used: set[int] = set()


def fresh_borrower(stack, extra: str = "") -> tuple[int, dict]:
    """A low-risk, non-VIP customer with exactly one active loan, no plan request, complaint or promise, not used by another
    test here (highest ids first: other modules take the lowest). "web:<id>" is a signed-in web
    session: verified without the SMS code."""
    with stack.db() as conn:
        rows = conn.execute(
            "SELECT c.id FROM customers c JOIN loans l ON l.customer_id = c.id "
            "WHERE c.risk_tier = 'low' AND c.value_tier != 'vip' AND c.id NOT IN (SELECT customer_id FROM plan_requests) "
            # Untouched by other modules (the conversation suite files complaints and promises too).
            "AND c.id NOT IN (SELECT customer_id FROM complaint_tickets WHERE customer_id IS NOT NULL) "
            "AND c.id NOT IN (SELECT customer_id FROM promises_to_pay) "
            f"GROUP BY c.id HAVING COUNT(*) = 1 AND MAX(l.status) = 'active' {extra} ORDER BY c.id DESC").fetchall()
    cid = next(r[0] for r in rows if r[0] not in _used)
    _used.add(cid)
    (loan,) = stack.backend(f"/customers/{cid}/loans").json()
    return cid, loan


def tracker(stack, sender: str) -> list[dict]:
    r = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                  params={"token": stack.env["RASA_API_TOKEN"], "include_events": "ALL"}, timeout=30)
    r.raise_for_status()
    return r.json()["events"]


def active_loop(stack, sender: str) -> str | None:
    loops = [e.get("name") for e in tracker(stack, sender) if e["event"] == "active_loop"]
    return loops[-1] if loops else None


def last_bot_texts(stack, sender: str, n: int = 3) -> str:
    return "\n".join(e.get("text") or "" for e in [e for e in tracker(stack, sender) if e["event"] == "bot"][-n:])


def told_after(stack, sender: str, before: int, timeout: float = 15.0) -> str:
    """The bot's newest message once there is one after the ``before`` first: a decision is delivered by
    the backend's outbox worker within a second or so of the staff request (not during it)."""
    deadline = time.monotonic() + timeout
    while True:
        said = [e.get("text") or "" for e in tracker(stack, sender) if e["event"] == "bot"]
        if len(said) > before or time.monotonic() > deadline:
            return said[-1] if said else ""
        time.sleep(0.3)


def bot_count(stack, sender: str) -> int:
    return len([e for e in tracker(stack, sender) if e["event"] == "bot"])


def plan_rows(stack, cid: int) -> list[tuple]:
    with stack.db() as conn:
        return conn.execute("SELECT reference, status, plan_type, months, reason_category, reason_text "
                            "FROM plan_requests WHERE customer_id = ? ORDER BY id", (cid,)).fetchall()


def age(stack, sender: str, seconds: int) -> None:
    """As if the borrower last wrote ``seconds`` ago (see test_handoff._age_conversation)."""
    with sqlite3.connect(stack.env["RASA_TRACKER_URL"].removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE events SET timestamp = timestamp - ?, "
                     "data = json_set(data, '$.timestamp', json_extract(data, '$.timestamp') - ?) WHERE sender_id = ?",
                     (seconds, seconds, sender))


def console(stack, user: str = "agent1") -> ConsoleUser:
    return ConsoleUser(stack.backend_url, user, stack.env["CONSOLE_DEMO_PASSWORD"])


# --------------------------------------------------------------------------- repayment plans

def test_twelve_month_plan_quoted_confirmed_approved_and_the_new_schedule_answers(stack):
    cid, loan = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    stack.texts(sender, "你好")
    quote = stack.backend(f"/loans/{loan['id']}/plan-quote", params={"plan_type": "instalment", "months": 12}).json()
    q = quote["quote"]
    assert quote["eligible"] and q["instalments"] == 12

    # The first message says why and what: reason, type and months are filled, the quote follows.
    shown = stack.texts(sender, "我失业了，能不能分12期还")
    assert "协商还款申请" in shown
    assert (f"预估方案（分期12期，仅供参考）：每月应还约 {yuan(q['monthly_amount'])}，共 12 期，"
            f"首期 {cn_day(q['first_due_date'])}，最后一期 {cn_day(q['last_due_date'], True)}；"
            f"总利息 {yuan(q['total_interest'])}，合计应还 {yuan(q['total_repayable'])}。") in shown
    assert "确认提交这份申请吗？" in shown
    assert plan_rows(stack, cid) == []  # nothing is stored before the borrower confirms

    done = stack.texts(sender, "确认")
    (row,) = plan_rows(stack, cid)
    reference, status, plan_type, months, reason, reason_text = row
    assert re.fullmatch(rf"RP{today():%Y%m%d}-\d{{4}}", reference)
    assert (status, plan_type, months, reason) == ("submitted", "instalment", 12, "unemployment")
    assert "失业" in reason_text
    assert f"已提交您的还款计划申请，编号 {reference}（分期12期）。" in done
    req = stack.backend(f"/plan-requests/{reference}").json()
    for must in ("最终方案以公司审核结果为准", f"预计{cn_day(req['decision_due_on'])}前答复您", "收入证明",
                 "申请完全免费", "代理协商", "征信按实际还款情况如实报送"):
        assert must in done, must
    assert active_loop(stack, sender) is None

    status = stack.texts(sender, "我的申请怎么样了")
    assert f"编号 {reference}" in status and "已提交" in status and cn_day(req["decision_due_on"]) in status

    # Staff approve in the console (a supervisor: some plans are above the agent's limit); the
    # decision is told on the borrower's channel (here the tracker: the REST channel has no push).
    agent = console(stack, "supervisor1")
    agent.post(f"/plans/{reference}/review")
    before = bot_count(stack, sender)
    agent.post(f"/plans/{reference}/approve", json={"note": "收入证明已核实"})
    approved = stack.backend(f"/plan-requests/{reference}").json()
    aq = approved["approved_quote"]
    told = told_after(stack, sender, before)
    assert told == (f"您的还款计划申请（编号 {reference}）已审核通过。新的还款计划已生效：共 12 期，首期 "
                    f"{cn_day(aq['first_due_date'])} 应还 {yuan(aq['monthly_amount'])}。请按新计划按时还款，"
                    "如有疑问回复「转人工」。")

    answer = stack.texts(sender, "这个月还多少")
    assert f"下一期 {cn_day(aq['first_due_date'])} 到期，应还 {yuan(aq['monthly_amount'])}" in answer


def test_interrupted_plan_form_answers_and_returns_then_invalid_months_end_with_a_person_offered(stack):
    cid, loan = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    asked = stack.texts(sender, "能不能申请延期")
    assert "什么原因导致还款困难" in asked
    # A question instead of the reason is answered, and the reason asked again.
    aside = stack.texts(sender, "逾期了会上征信吗？")
    assert "征信" in aside and aside.rstrip().endswith("可以直接说说您的情况。")
    assert active_loop(stack, sender) == "plan_form"
    assert "想把接下来的几期往后延" in stack.texts(sender, "最近收入下降了很多")

    # A question in the middle is answered, then the form asks again.
    mid = stack.texts(sender, "你们的利息是怎么算的")
    assert "利" in mid and mid.rstrip().endswith("可以延期1到6期。")
    assert active_loop(stack, sender) == "plan_form"

    first = stack.texts(sender, "20期")
    assert "延期期数需在1到6期之间，请换一个期数。" in first
    second = stack.texts(sender, "九")
    assert "延期期数需在1到6期之间" in second
    third = stack.say(sender, "十二")
    text = "\n".join(m.get("text", "") for m in third)
    assert "需要为您转接人工客服吗" in text and "延期期数" not in text
    assert "/request_human" in [b["payload"] for m in third for b in m.get("buttons") or []]
    assert active_loop(stack, sender) is None
    assert plan_rows(stack, cid) == []


def test_cancel_and_abandoned_plan_forms_store_nothing(stack):
    cid, _ = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    stack.texts(sender, "想申请分期还款")
    cancelled = stack.texts(sender, "算了")
    assert "已取消，没有提交任何内容" in cancelled
    assert active_loop(stack, sender) is None

    stack.texts(sender, "想申请分期还款")
    age(stack, sender, 31 * 60)
    expired = stack.texts(sender, "失业")
    assert "您之前未完成的还款计划申请已超过30分钟没有继续，已自动取消" in expired
    assert active_loop(stack, sender) is None
    assert plan_rows(stack, cid) == []


def test_withdrawing_a_request_and_asking_by_reference(stack):
    cid, _ = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    stack.texts(sender, "我生病住院了，想延期3期")
    stack.texts(sender, "确认")
    ((reference, *_),) = plan_rows(stack, cid)
    by_ref = stack.texts(sender, f"帮我查一下{reference}")
    assert f"编号 {reference}，延期3期" in by_ref and "已提交" in by_ref
    out = stack.texts(sender, "我想撤回分期申请")
    assert f"已撤回您的还款计划申请（编号 {reference}）" in out
    assert plan_rows(stack, cid)[0][1] == "withdrawn"

    # Someone else's reference reveals nothing.
    other, _ = fresh_borrower(stack)
    assert "没有查到您的还款计划申请" in stack.texts(stack.web_sender(other), f"帮我查一下{reference}")


# --------------------------------------------------------------------------- early settlement

def test_early_settlement_quote_equals_the_payoff_endpoint_and_the_intent_is_recorded(stack):
    cid, loan = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    settle_on = today() + timedelta(days=10)
    words = f"{settle_on.month}月{settle_on.day}日"
    payoff = stack.backend(f"/loans/{loan['id']}/payoff", params={"date": settle_on.isoformat()}).json()
    quote = stack.texts(sender, f"我想{words}提前结清")
    assert f"如在{cn_day(settle_on.isoformat())}提前结清" in quote and f"需还款 {yuan(payoff['total'])}" in quote
    assert "需要为您登记这次提前结清的意向吗" in quote

    recorded = stack.texts(sender, "登记")
    assert f"已为您登记提前结清意向：{cn_day(settle_on.isoformat())}结清" in recorded
    assert f"应还 {yuan(payoff['total'])}" in recorded
    (intent,) = stack.backend(f"/customers/{cid}/settlement-intents").json()
    assert (intent["settle_on"], Decimal(intent["total"])) == (settle_on.isoformat(), Decimal(payoff["total"]))


def test_early_settlement_past_date_is_re_asked_and_no_means_no_record(stack):
    cid, loan = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    first = stack.texts(sender, "我想今天提前结清")
    payoff = stack.backend(f"/loans/{loan['id']}/payoff").json()
    assert f"需还款 {yuan(payoff['total'])}" in first  # today, when no date is named
    past = today() - timedelta(days=3)
    again = stack.texts(sender, f"那{past.year}年{past.month}月{past.day}日呢")
    assert "这个日期已经过去了" in again
    assert f"需还款 {yuan(payoff['total'])}" in stack.texts(sender, "今天")
    assert "好的，不登记了" in stack.texts(sender, "不用了")
    assert stack.backend(f"/customers/{cid}/settlement-intents").json() == []


# --------------------------------------------------------------------------- complaints

def test_collection_complaint_gets_a_reference_deadline_priority_pause_and_status(stack):
    cid, _ = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    words = "你们催收天天打电话骚扰我，还打给我同事13912345678"
    start = stack.texts(sender, words)
    assert "我来为您登记投诉" in start and "您希望我们怎样处理" in start  # category and story were in the message
    assert "处理结果怎么联系您" in stack.texts(sender, "别再打电话骚扰了，要求道歉")
    filed = stack.texts(sender, "在这里回复我")
    ref = re.search(r"CP\d{8}-\d{4}", filed).group(0)
    ticket = stack.backend(f"/complaints/{ref}").json()
    assert (ticket["category"], ticket["priority"], ticket["customer_id"]) == ("collection", "high", cid)
    assert ticket["due_date"] == (today() + timedelta(days=15)).isoformat()
    assert f"您的投诉已受理，编号 {ref}（催收方式）" in filed and f"最晚{cn_day(ticket['due_date'])}前" in filed
    assert "已暂停对您的自动还款提醒" in filed and "需要现在为您转接人工客服吗" in filed
    assert "13912345678" not in filed
    with stack.db() as conn:
        (stored,) = conn.execute("SELECT description FROM complaint_tickets WHERE reference = ?", (ref,)).fetchone()
    assert stored == words  # verbatim
    assert stack.backend(f"/customers/{cid}/reminder-pause").json()["paused"] is True

    status = stack.texts(sender, f"投诉编号{ref}处理到哪了")
    assert f"您的投诉（编号 {ref}，催收方式）目前状态：已受理" in status

    # Staff start working it: the borrower is told.
    before = bot_count(stack, sender)
    console(stack).post(f"/complaints/{ref}/start")
    assert f"您的投诉（编号 {ref}）有新进展" in told_after(stack, sender, before)

    # The same topic again within 7 days is added to the open ticket, not duplicated.
    stack.texts(sender, "我要投诉催收，今天又来骚扰我了")
    stack.texts(sender, "没有")
    again = stack.texts(sender, "在这里回复我")
    assert f"已有工单（编号 {ref}）" in again
    with stack.db() as conn:
        assert conn.execute("SELECT COUNT(*) FROM complaint_tickets WHERE customer_id = ?", (cid,)).fetchone()[0] == 1


def test_anonymous_complaint_contact_is_re_asked_and_cancel_works(stack):
    sender = f"web:anon-{uuid.uuid4().hex[:10]}"
    assert "哪方面的问题" in stack.texts(sender, "我要投诉")
    assert "请详细说说发生了什么" in stack.texts(sender, "服务态度")
    assert "您希望我们怎样处理" in stack.texts(sender, "客服挂我电话，说话很难听")
    stack.texts(sender, "道歉")
    assert "请输入11位手机号" in stack.texts(sender, "1391234")
    assert "还没有核实您的身份" in stack.texts(sender, "打我登记的手机号")
    filed = stack.texts(sender, "13912345678")
    ref = re.search(r"CP\d{8}-\d{4}", filed).group(0)
    ticket = stack.backend(f"/complaints/{ref}").json()
    assert (ticket["category"], ticket["priority"], ticket["customer_id"]) == ("service", "normal", None)
    assert "13912345678" not in filed and "转接人工" not in filed

    other = f"web:anon-{uuid.uuid4().hex[:10]}"
    stack.texts(other, "我要投诉")
    assert "已取消" in stack.texts(other, "算了不投诉了")
    with stack.db() as conn:
        assert conn.execute("SELECT COUNT(*) FROM complaint_tickets WHERE conversation = ?", (other,)).fetchone()[0] == 0


def test_another_request_inside_a_form_is_noted_and_offered_after_it(stack):
    """A payoff quote waits for 「登记」; 「后天一定还」 is another request: noted, the quote asked
    again, offered once the settlement is answered; nothing recorded unasked."""
    cid, loan = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    assert "需要为您登记这次提前结清的意向吗" in stack.texts(sender, "我想今天提前结清")
    reply = stack.texts(sender, "后天一定还")
    assert "登记还款承诺我记下了" in reply and "需要为您登记这次提前结清的意向吗" in reply
    assert stack.backend(f"/customers/{cid}/promises").json() == []
    assert active_loop(stack, sender) == "settlement_form"
    after = stack.texts(sender, "不用了")
    assert "您刚才提到要登记还款承诺" in after and active_loop(stack, sender) is None
    assert stack.backend(f"/customers/{cid}/settlement-intents").json() == []
    reply = stack.texts(sender, "后天一定还")
    promised = (today() + timedelta(days=2)).isoformat()
    (promise,) = stack.backend(f"/customers/{cid}/promises").json()
    assert promise["promised_date"] == promised and f"已为您登记：{cn_day(promised)}还款" in reply


def test_a_date_after_a_settlement_quote_re_quotes(stack):
    """「那下个月15号还清呢」 (read as a promise by the classifier) is a new date for the quote."""
    cid, loan = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    stack.texts(sender, "我想今天提前结清")
    reply = stack.texts(sender, "那下个月15号还清呢")
    t = today()
    day15 = date(t.year + (t.month == 12), t.month % 12 + 1, 15).isoformat()
    payoff = stack.backend(f"/loans/{loan['id']}/payoff", params={"date": day15}).json()
    assert f"如在{cn_day(day15)}提前结清" in reply and yuan(payoff["total"]) in reply
    assert "承诺还款日期" not in reply and active_loop(stack, sender) == "settlement_form"


def test_a_promise_over_the_balance_is_re_asked(stack):
    cid, loan = fresh_borrower(stack)
    sender = stack.web_sender(cid)
    reply = stack.texts(sender, "明天还100万")
    assert (f"¥1,000,000.00超过了您{loan['product_name']}（尾号{loan['loan_no_last4']}）剩余应还的 "
            f"{yuan(loan['total_outstanding'])}，请重新告诉我打算还多少。") in reply
    assert stack.backend(f"/customers/{cid}/promises").json() == []
    done = stack.texts(sender, "那就还2000元")
    (promise,) = stack.backend(f"/customers/{cid}/promises").json()
    assert Decimal(promise["amount"]) == Decimal("2000.00") and "¥2,000.00" in done


# --------------------------------------------------------------------------- payment arrival

def test_a_payment_on_a_named_day_last_month_is_found_beyond_the_default_window(stack):
    """「我上个月N号就还了」 looks back to that day (the default window is the last 7 days) and names
    the payment made that day, not a later one."""
    cid, loan = fresh_borrower(stack)
    last_month = (today().replace(day=1) - timedelta(days=1)).replace(day=1)
    taken = {p["paid_on"] for p in stack.backend(f"/loans/{loan['id']}/payments").json()}
    paid_on = next(last_month.replace(day=d) for d in range(10, 28)
                   if last_month.replace(day=d).isoformat() not in taken)
    assert httpx.post(f"{stack.backend_url}/api/v1/loans/{loan['id']}/payments", json={  # the payment gateway's key
        "amount": "123.45", "paid_on": paid_on.isoformat(), "method": "bank_transfer",
        "reference": f"E2E{uuid.uuid4().hex[:12]}"}, headers={"X-API-Key": "e2e-payments-key"}, timeout=30).status_code == 201
    reply = stack.texts(stack.web_sender(cid), f"我上个月{paid_on.day}号就还了")
    assert f"已收到您{cn_day(paid_on.isoformat())}的还款 {yuan('123.45')}" in reply
