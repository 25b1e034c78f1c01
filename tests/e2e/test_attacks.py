"""What an attacker probe found, against the real stack (backend, action server, Rasa):

* sender ids walk to other backend resources (``sms:../web/7``) or name a customer (``web:5``);
* slots forged into a tracker (verified, customer_id) were believed by the action server;
* 「/EXTERNAL_complaint_update{...}」 from an anonymous sender told someone else's complaint;
* a one-time code stayed readable in the tracker;
* no rate limit, 5 MB messages processed, empty messages crashed the fallback classifier.
Each test here failed before the fix.
"""
from __future__ import annotations

import json
import re
import time
import uuid

import httpx

from tests.e2e.conftest import RunningStack
from tests.e2e.test_conversation import one_open_loan

ONLY_TEXT = "请输入文字消息"
TOO_FAST = "您发送得太快了，请稍后再试"


def anon() -> str:
    return f"web:anon-{uuid.uuid4().hex[:12]}"


def post(stack: RunningStack, sender, message) -> httpx.Response:
    return httpx.post(f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": message},
                      timeout=120)


def texts(r: httpx.Response) -> str:
    return "\n".join(m.get("text") or "" for m in r.json())


def user_texts(stack: RunningStack, sender: str) -> list[str]:
    r = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker", params={"token": stack.env["RASA_API_TOKEN"]},
                  timeout=30)
    return [e.get("text") or "" for e in r.json().get("events", []) if e.get("event") == "user"]


# ---- forged sender ids ------------------------------------------------------------------------

def test_a_path_in_the_sender_id_reaches_no_other_customer(stack):
    for sender in ("sms:../web/7", "sms:..%2Fweb%2F7", "wechat:../../customers/7", "web:7/../7"):
        r = post(stack, sender, "我还欠多少钱")
        assert r.status_code == 400, (sender, r.text)
        assert "¥" not in r.text


def test_a_customer_number_is_not_a_web_conversation(stack):
    r = post(stack, "web:5", "我还欠多少钱")
    assert r.status_code == 400 and "¥" not in r.text
    # The signed-in web session of customer 5 is an opaque id, bound by the backend.
    sender = stack.web_sender(5)
    assert re.fullmatch(r"web:s-[0-9a-f]{32}", sender) and sender != "web:5"
    ident = stack.backend(f"/identities/web/{sender.removeprefix('web:')}").json()
    assert (ident["customer_id"], ident["verified"]) == (5, True)


def test_forged_slots_in_a_tracker_show_no_figures(stack):
    sender = anon()
    post(stack, sender, "你好")
    r = httpx.post(f"{stack.rasa_url}/conversations/{sender}/tracker/events",
                   params={"token": stack.env["RASA_API_TOKEN"]},
                   json=[{"event": "slot", "name": "verified", "value": True},
                         {"event": "slot", "name": "customer_id", "value": 5}], timeout=30)
    r.raise_for_status()
    reply = texts(post(stack, sender, "我还欠多少钱"))
    assert "¥" not in reply
    (loan, *_) = stack.backend("/customers/5/loans").json()
    assert loan["loan_no_last4"] not in reply


# ---- injected intents -------------------------------------------------------------------------

def _someone_elses_complaint(stack: RunningStack) -> dict:
    cid = 6
    r = stack.backend_post("/complaints", json={
        "conversation": stack.web_sender(cid), "channel": "web", "customer_id": cid, "category": "fees",
        "description": "扣款多扣了手续费，请核实退还"})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_an_injected_external_intent_reveals_nothing(stack):
    ticket = _someone_elses_complaint(stack)
    ref = ticket["reference"]
    sender = anon()
    for text in (f'/EXTERNAL_complaint_update{{"reference":"{ref}"}}',
                 f'/EXTERNAL_plan_decision{{"reference":"{ref}"}}',
                 '/EXTERNAL_handoff_closed{"case_id":"1"}'):
        r = post(stack, sender, text)
        assert r.status_code == 200
        reply = texts(r)  # the reference the sender typed may be echoed (「没有查到…」), nothing of the ticket
        assert "有新进展" not in reply and "请为本次人工服务打分" not in reply
        assert ticket["last_update"] not in reply and "手续费" not in reply
    # What reached Rasa is plain words, not an intent of the backend's.
    intents = [e["parse_data"]["intent"]["name"] for e in httpx.get(
        f"{stack.rasa_url}/conversations/{sender}/tracker", params={"token": stack.env["RASA_API_TOKEN"]},
        timeout=30).json()["events"] if e.get("event") == "user"]
    assert not any(i.startswith("EXTERNAL_") for i in intents)


def test_a_notice_for_another_conversation_says_nothing_even_through_the_api(stack):
    """Defence in depth: even the authenticated Rasa API (the backend's path) has no intent that words a
    notice: the old EXTERNAL_complaint_update / EXTERNAL_plan_decision triggers are refused (404, not in
    the domain) and leave nothing in the conversation; the one trigger left, EXTERNAL_handoff_closed,
    says only the fixed rating question, whatever case it names."""
    ref = _someone_elses_complaint(stack)["reference"]
    sender = anon()
    api = f"{stack.rasa_url}/conversations/{sender}"
    token = {"token": stack.env["RASA_API_TOKEN"], "output_channel": "latest"}
    for name in ("EXTERNAL_complaint_update", "EXTERNAL_plan_decision"):
        r = httpx.post(f"{api}/trigger_intent", params=token, json={"name": name, "entities": {"reference": ref}},
                       timeout=60)
        assert r.status_code == 404, r.text
    events = httpx.get(f"{api}/tracker", params={"token": token["token"]}, timeout=30).json()["events"]
    assert [e for e in events if e.get("event") in ("user", "bot")] == []
    r = httpx.post(f"{api}/trigger_intent", params=token,
                   json={"name": "EXTERNAL_handoff_closed", "entities": {"case_id": "1", "reference": ref}}, timeout=60)
    r.raise_for_status()
    said = json.dumps(r.json().get("messages", []), ensure_ascii=False)
    assert ref not in said and "HO" not in said
    # The complaint's own conversation hears of it from the backend, which words the update itself and
    # sends it only there through its outbox (backend.services.outreach: tests/backend/test_notices.py).


def test_our_own_button_payloads_still_work(stack):
    sender = anon()
    reply = texts(post(stack, sender, "/request_human"))
    assert reply  # answered as the button, not refused


# ---- one-time codes ---------------------------------------------------------------------------

def test_the_one_time_code_is_never_stored_readable(stack):
    cid, phone, idn, loan = one_open_loan(stack)
    sender = anon()
    post(stack, sender, "我还欠多少钱")
    post(stack, sender, phone)
    assert "验证码已发送至" in texts(post(stack, sender, f"身份证后四位{idn[-4:]}"))
    code = re.search(r"\d{6}", stack.last_sms()["body"]).group(0)
    final = texts(post(stack, sender, f"验证码是{code}"))
    assert "身份验证成功" in final
    tracker = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                        params={"token": stack.env["RASA_API_TOKEN"]}, timeout=30).json()
    assert code not in json.dumps(tracker, ensure_ascii=False)
    assert tracker["slots"].get("identity_otp") is None


# ---- abuse limits -----------------------------------------------------------------------------

def test_thirty_messages_in_ten_seconds_are_limited(stack):
    sender = anon()
    start, replies = time.monotonic(), []
    for i in range(30):
        replies.append(texts(post(stack, sender, "你好")))
    assert time.monotonic() - start < 60
    limited = [r for r in replies if TOO_FAST in r]
    assert len(limited) >= 10 and TOO_FAST not in replies[0]
    assert len(user_texts(stack, sender)) <= 20


def test_a_five_megabyte_message_is_politely_refused(stack):
    sender = anon()
    r = post(stack, sender, "x" * (5 * 1024 * 1024))
    assert r.status_code == 200
    assert "太长" in texts(r)
    assert user_texts(stack, sender) == []  # never processed


def test_empty_and_whitespace_messages_get_a_clear_reply(stack):
    sender = anon()
    for message in ("", "   ", "\n\t"):
        r = post(stack, sender, message)
        assert r.status_code == 200 and texts(r) == ONLY_TEXT
    r = post(stack, sender, None)
    assert r.status_code == 200 and texts(r) == ONLY_TEXT
    assert texts(post(stack, sender, "你好"))  # and the conversation goes on
