"""The SMS channel end to end: real backend, action server and Rasa (channels.sms.SmsInput), the
backend's real twilio client sending to a fake Twilio API on 127.0.0.1.

Inbound requests are signed the way Twilio signs them (RequestValidator.compute_signature over the
public URL and every form field, blank ones included)."""
from __future__ import annotations

import random
import re
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from twilio.request_validator import RequestValidator

from backend.services.sms import segments
from tests.channels.fake_twilio import FakeTwilio
from tests.e2e import conftest as e2e

ACCOUNT_SID = "AC" + "5e" * 16
AUTH_TOKEN = "0f3c9a7d1b2e4f6a8c0d2e4f6a8b0c1d"
FROM_NUMBER = "+15005550006"
PUBLIC_URL = "https://bot.example.com/webhooks/sms/webhook"
SENTENCE_END = re.compile(r"[。！？!?；;]$")


def yuan(value) -> str:
    return f"¥{Decimal(str(value)):,.2f}"


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# The backend's splitting (no stack needed) -----------------------------------------------------

def test_segments_keep_line_breaks_of_numbered_choices():
    text = "您名下有多笔借款，请问要查询哪一笔？\n1. 消费贷（尾号1234）\n2. 装修贷（尾号5678）\n请回复序号选择。"
    assert segments(text) == [text]


def test_a_sentence_longer_than_a_segment_is_cut_between_figures_not_inside_one():
    text = ("您的个人消费贷款产品（尾号1234）剩余应还 ¥12,345.67（本金 ¥10,000.00、利息 ¥1,234.56、"
            "罚息 ¥111.11、费用 ¥20.00）。下一期 12月15日（周二） 到期。")
    parts = segments(text)
    assert all(units(p) <= 70 for p in parts) and len(parts) > 1
    for amount in re.findall(r"¥[\d,]+\.\d\d", text):
        assert any(amount in p for p in parts), amount
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")


def test_segments_count_astral_characters_twice():
    assert all(units(p) <= 70 for p in segments("😀" * 50))


# The stack -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake():
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as f:
        yield f


def twilio_settings(fake: FakeTwilio) -> dict[str, str]:
    """The stack's SMS settings: Twilio as the provider, pointed at the fake API."""
    return {"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_API_BASE": fake.url, "SMS_PUBLIC_URL": PUBLIC_URL}


@pytest.fixture(scope="module")
def sms_stack(tmp_path_factory, fake):
    run_dir = tmp_path_factory.mktemp("sms_stack")
    twilio = twilio_settings(fake)
    gen = e2e.running_stack(run_dir, {
        "DATABASE_URL": f"sqlite:///{run_dir / 'loan.db'}",
        "RASA_TRACKER_URL": f"sqlite:///{run_dir / 'tracker.db'}",
        **twilio,
    })
    stack = next(gen)
    assert stack.env["SMS_PROVIDER"] == "twilio"
    try:
        yield stack
    finally:
        gen.close()


# Helpers ---------------------------------------------------------------------------------------

def twilio_form(number: str, body: str | None, sid: str | None = None) -> dict[str, str]:
    """The fields Twilio posts for an inbound SMS (several of them blank, as they usually are)."""
    sid = sid or new_sid()
    form = {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
        "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
        "FromCountry": "CN", "To": FROM_NUMBER, "ToZip": "", "NumSegments": "1", "MessageSid": sid,
        "AccountSid": ACCOUNT_SID, "From": number, "ApiVersion": "2010-04-01",
    }
    if body is not None:
        form["Body"] = body
    return form


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def sign(form: dict[str, str], url: str = PUBLIC_URL, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


def post(stack, form: dict[str, str], signature: str | None = "sign", content: bytes | None = None) -> httpx.Response:
    headers = {}
    if signature == "sign":
        signature = sign(form)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    url = f"{stack.rasa_url}/webhooks/sms/webhook"
    if content is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return httpx.post(url, content=content, headers=headers, timeout=30)
    return httpx.post(url, data=form, headers=headers, timeout=30)


def text_sms(stack, number: str, body: str, sid: str | None = None) -> httpx.Response:
    r = post(stack, twilio_form(number, body, sid))
    assert r.status_code == 200, r.text
    return r


def bodies(fake, number: str) -> list[str]:
    return [m.body for m in fake.messages(number)]


def wait_reply(fake, number: str, since: int, contains: str, timeout: float = 60) -> list[str]:
    """The bodies to ``number`` after the first ``since``, once their text contains ``contains``."""
    fake.wait_for(lambda msgs: contains in "".join([m.body for m in msgs if m.to == number][since:]), timeout)
    settle(fake)
    return bodies(fake, number)[since:]


def settle(fake, quiet: float = 1.5, timeout: float = 20) -> None:
    """Wait until the fake has had no request for ``quiet`` seconds (trailing segments arrived)."""
    deadline = time.monotonic() + timeout
    count = fake.count()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if fake.count() != count:
            count, quiet_since = fake.count(), time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            return


def rasa(stack, method: str, path: str, **kw) -> httpx.Response:
    params = {"token": stack.env["RASA_API_TOKEN"], **kw.pop("params", {})}
    return httpx.request(method, f"{stack.rasa_url}{path}", params=params, timeout=30, **kw)


def user_texts(stack, sender: str) -> list[str]:
    events = rasa(stack, "GET", f"/conversations/{sender}/tracker").json().get("events") or []
    return [e.get("text") for e in events if e.get("event") == "user"]


def identity(stack, number: str) -> httpx.Response:
    return stack.backend(f"/identities/sms/{number}")


def customers(stack, having: str) -> list[tuple[int, str, str]]:
    with stack.db() as conn:
        return conn.execute(
            "SELECT c.id, c.phone, c.id_number FROM customers c JOIN loans l ON l.customer_id = c.id "
            f"GROUP BY c.id HAVING {having} ORDER BY c.id").fetchall()


def one_open_loan(stack, index: int) -> tuple[str, str, dict]:
    """The index-th borrower with exactly one loan, still open (not overdue: one sentence per figure)."""
    rows = customers(stack, "COUNT(*) = 1 AND MAX(l.status) = 'active'")
    assert len(rows) > index, "demo data has enough borrowers with one open loan"
    cid, phone, idn = rows[index]
    (loan,) = stack.backend(f"/customers/{cid}/loans").json()
    return phone, idn, loan


def unknown_number(stack) -> str:
    with stack.db() as conn:
        phones = {r[0] for r in conn.execute("SELECT phone FROM customers")}
    while True:
        phone = "170" + "".join(random.choices("0123456789", k=8))
        if phone not in phones:
            return "+86" + phone


# Inbound from a registered number ---------------------------------------------------------------

@pytest.fixture(scope="module")
def balance_by_sms(sms_stack, fake):
    phone, _, loan = one_open_loan(sms_stack, 0)
    number, sid = "+86" + phone, new_sid()
    started = time.monotonic()
    r = text_sms(sms_stack, number, "我还欠多少钱", sid)
    elapsed = time.monotonic() - started
    replies = wait_reply(fake, number, 0, yuan(loan["total_outstanding"]))
    return {"phone": phone, "number": number, "sid": sid, "loan": loan, "response": r, "elapsed": elapsed,
            "replies": replies}


@pytest.mark.e2e
def test_registered_number_gets_its_balance_by_sms(balance_by_sms, fake):
    r, loan, phone = balance_by_sms["response"], balance_by_sms["loan"], balance_by_sms["phone"]
    # Twilio gets an empty TwiML answer at once; the reply goes out through the API afterwards.
    assert r.status_code == 200 and "<Response/>" in r.text
    assert r.headers["content-type"].startswith("text/xml")
    assert balance_by_sms["elapsed"] < 5
    replies = balance_by_sms["replies"]
    assert yuan(loan["total_outstanding"]) in "".join(replies)
    assert len(replies) > 1, "the answer is longer than one segment"
    for body in replies:
        assert units(body) <= 70, body
        assert SENTENCE_END.search(body), f"not cut at a sentence end: {body!r}"
        assert phone not in body
    sent = fake.messages(balance_by_sms["number"])
    assert all(m.form["From"] == FROM_NUMBER and m.authorized and m.account_sid == ACCOUNT_SID for m in sent)


@pytest.mark.e2e
def test_a_twilio_retry_of_the_same_message_sid_is_not_processed_again(balance_by_sms, sms_stack, fake):
    number, sid = balance_by_sms["number"], balance_by_sms["sid"]
    before = len(bodies(fake, number))
    r = text_sms(sms_stack, number, "我还欠多少钱", sid)
    assert "<Response/>" in r.text
    time.sleep(2)
    assert len(bodies(fake, number)) == before
    assert user_texts(sms_stack, f"sms:{number}") == ["我还欠多少钱"]


@pytest.mark.e2e
def test_numbered_choices_and_a_reply_by_number(sms_stack, fake):
    cid, phone, _ = customers(sms_stack, "SUM(l.status IN ('active', 'overdue')) >= 2")[0]
    loans = [l for l in sms_stack.backend(f"/customers/{cid}/loans").json()]
    number = "+86" + phone
    text_sms(sms_stack, number, "我还欠多少钱")
    menu = "\n".join(wait_reply(fake, number, 0, "请回复序号"))
    assert re.search(r"^1\. .+（尾号\d{4}）$", menu, re.M) and re.search(r"^2\. ", menu, re.M)
    second = re.search(r"^2\. .+（尾号(\d{4})）$", menu, re.M).group(1)
    loan = next(l for l in loans if l["loan_no_last4"] == second)
    since = len(bodies(fake, number))
    text_sms(sms_stack, number, "2")
    answer = "".join(wait_reply(fake, number, since, yuan(loan["total_outstanding"])))
    assert f"尾号{second}" in answer


# Refused requests -------------------------------------------------------------------------------

@pytest.mark.e2e
def test_forged_or_unsigned_requests_are_refused_and_change_nothing(sms_stack, fake):
    number = unknown_number(sms_stack)
    sid = new_sid()
    form = twilio_form(number, "你好", sid)
    before = fake.count()
    forged = {
        "no signature": post(sms_stack, form, signature=None),
        "empty signature": post(sms_stack, form, signature=""),
        "garbage": post(sms_stack, form, signature="bm90IGEgc2lnbmF0dXJl"),
        "other token": post(sms_stack, form, signature=sign(form, token="not-the-auth-token")),
        "local url": post(sms_stack, form, signature=sign(form, url=f"{sms_stack.rasa_url}/webhooks/sms/webhook")),
        "body changed": post(sms_stack, twilio_form(number, "我还欠多少钱", sid), signature=sign(form)),
    }
    assert {k: r.status_code for k, r in forged.items()} == {k: 403 for k in forged}
    time.sleep(2)
    assert fake.count() == before
    assert identity(sms_stack, number).status_code == 404  # not even the identity was created
    assert user_texts(sms_stack, f"sms:{number}") == []
    # The MessageSid was not claimed by the forgeries: Twilio's real request is still processed.
    text_sms(sms_stack, number, "你好", sid)
    fake.wait_for(lambda msgs: any(m.to == number for m in msgs), 60)


@pytest.mark.e2e
def test_oversized_and_incomplete_requests(sms_stack, fake):
    number = unknown_number(sms_stack)
    before = fake.count()
    big = twilio_form(number, "我还欠多少钱" * 1500)
    assert post(sms_stack, big).status_code == 413
    no_body = twilio_form(number, None)
    assert post(sms_stack, no_body).status_code == 400
    no_from = twilio_form(number, "我还欠多少钱")
    del no_from["From"]
    assert post(sms_stack, no_from).status_code == 400
    # An unsigned incomplete request is a forgery first.
    assert post(sms_stack, no_body, signature=None).status_code == 403
    time.sleep(2)
    assert fake.count() == before
    assert identity(sms_stack, number).status_code == 404


# Opt-out ----------------------------------------------------------------------------------------

@pytest.mark.e2e
def test_stop_confirms_once_opts_out_and_refuses_proactive_messages_until_start(sms_stack, fake):
    phone, _, _ = one_open_loan(sms_stack, 1)
    number, sender = "+86" + phone, f"sms:+86{phone}"
    proactive = {"event": "bot", "text": "【贷款客服】温馨提示：您的账单将于近日到期，请按时还款。"}
    side_effects = {"output_channel": "sms", "execute_side_effects": "true"}

    text_sms(sms_stack, number, "STOP")
    confirmation = wait_reply(fake, number, 0, "START")
    assert len(confirmation) == 1 and "退订" in confirmation[0]
    assert identity(sms_stack, number).json()["opted_out"] is True
    assert user_texts(sms_stack, sender) == []  # the keyword never reached Rasa

    before = fake.count()
    r = rasa(sms_stack, "POST", f"/conversations/{sender}/tracker/events", params=side_effects, json=proactive)
    assert r.status_code == 200, r.text
    time.sleep(2)
    assert fake.count() == before, "refused on our side: Twilio was not even asked"

    # A message from the opted-out number gets no answer (nothing may be sent to it).
    text_sms(sms_stack, number, "我还欠多少钱")
    time.sleep(2)
    assert fake.count() == before

    text_sms(sms_stack, number, "start")
    restored = wait_reply(fake, number, 1, "恢复")
    assert len(restored) == 1
    assert identity(sms_stack, number).json()["opted_out"] is False
    r = rasa(sms_stack, "POST", f"/conversations/{sender}/tracker/events", params=side_effects, json=proactive)
    assert r.status_code == 200, r.text
    assert wait_reply(fake, number, 2, "温馨提示") == [proactive["text"]]


@pytest.mark.e2e
@pytest.mark.parametrize("word", ["退订", " td ", "t", "Stop", "ＳＴＯＰ"])
def test_every_opt_out_keyword(sms_stack, fake, word):
    number = unknown_number(sms_stack)
    text_sms(sms_stack, number, word)
    assert len(wait_reply(fake, number, 0, "回复START可恢复")) == 1
    assert identity(sms_stack, number).json()["opted_out"] is True


@pytest.mark.e2e
def test_a_keyword_inside_a_sentence_is_not_an_opt_out(sms_stack, fake):
    number = unknown_number(sms_stack)
    text_sms(sms_stack, number, "你好，我想问一下怎么还款")
    fake.wait_for(lambda msgs: any(m.to == number for m in msgs), 60)
    assert identity(sms_stack, number).json()["opted_out"] is False


# An unknown number --------------------------------------------------------------------------------

@pytest.mark.e2e
def test_unknown_number_must_verify_and_the_code_goes_out_through_twilio(sms_stack, fake):
    number = unknown_number(sms_stack)
    phone, idn, loan = one_open_loan(sms_stack, 2)
    registered = "+86" + phone

    text_sms(sms_stack, number, "我还欠多少钱")
    prompt = "".join(wait_reply(fake, number, 0, "手机号"))
    assert "核实身份" in prompt
    assert "¥" not in prompt and not re.search(r"\d{3,}", prompt)

    seen = len(bodies(fake, number))
    text_sms(sms_stack, number, phone)
    wait_reply(fake, number, seen, "身份证")
    seen = len(bodies(fake, number))
    codes_before = len(bodies(fake, registered))
    text_sms(sms_stack, number, f"身份证后四位{idn[-4:]}")
    sent = "".join(wait_reply(fake, number, seen, "验证码已发送至"))
    assert f"{phone[:3]}****{phone[-4:]}" in sent
    otp = fake.wait_for(lambda msgs: len([m for m in msgs if m.to == registered]) > codes_before, 30)
    code_sms = [m for m in otp if m.to == registered][-1]
    assert code_sms.form["From"] == FROM_NUMBER
    code = re.search(r"\d{6}", code_sms.body).group(0)

    seen = len(bodies(fake, number))
    text_sms(sms_stack, number, f"验证码{code}")
    answer = "".join(wait_reply(fake, number, seen, yuan(loan["total_outstanding"])))
    assert "身份验证成功" in answer
    assert all(phone not in b and idn not in b for b in bodies(fake, number))


@pytest.mark.e2e
def test_staff_answer_an_sms_conversation_from_the_console(sms_stack, fake):
    """Handoff over SMS: the staff reply goes out through (fake) Twilio to the borrower's number."""
    from tests.e2e.console_client import ConsoleUser

    phone, _, _ = one_open_loan(sms_stack, 3)
    number = "+86" + phone
    seen = len(bodies(fake, number))
    text_sms(sms_stack, number, "转人工")
    assert "工单号" in "".join(wait_reply(fake, number, seen, "工单号"))
    case = sms_stack.backend(f"/handoffs/by-conversation/sms:{number}").json()
    agent = ConsoleUser(sms_stack.backend_url, "agent2", sms_stack.env["CONSOLE_DEMO_PASSWORD"])
    agent.post(f"/cases/{case['id']}/claim")
    seen = len(bodies(fake, number))
    text_sms(sms_stack, number, "我这个月工资晚发几天")
    agent.wait_for_borrower_text(case["id"], "我这个月工资晚发几天")
    agent.post(f"/cases/{case['id']}/reply", {"text": "收到，我帮您备注晚几天还款。"})
    assert wait_reply(fake, number, seen, "收到，我帮您备注晚几天还款。") == ["收到，我帮您备注晚几天还款。"]
    agent.post(f"/cases/{case['id']}/hand-back")
    assert "请为本次人工服务打分" in "".join(wait_reply(fake, number, seen + 1, "请为本次人工服务打分"))
    assert phone not in agent.http.get(f"/console/api/cases/{case['id']}").text
