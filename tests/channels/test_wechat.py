"""The WeChat Official Account channel end to end: the real backend, action server and Rasa
server (with channels.wechat.WeChatInput) talking to a fake WeChat API on 127.0.0.1.

Requests are built the way WeChat builds them: sha1 signatures with hashlib, safe-mode AES with
the `cryptography` package (wechatpy lives only in the bot environment).
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.channels.fake_wechat import FakeWeChat
from tests.e2e.conftest import ROOT, running_stack

pytestmark = pytest.mark.e2e

TOKEN = "test-wechat-token"
APP_ID = "wxtest00000000001"
AES_KEY = base64.b64encode(b"wechat-channel-test-aes-key-32b!").decode().rstrip("=")
TEMPLATE_ID = "TPL-service-notice-test"
BALANCE_QUESTION = "我还欠多少钱"
SEEN: dict[str, tuple[str, str]] = {}  # what one test leaves for the next (one stack per module)


def yuan(value) -> str:
    return f"¥{Decimal(str(value)):,.2f}"


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signed_params(**extra: str) -> dict[str, str]:
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    return {"timestamp": ts, "nonce": nonce, "signature": sign(TOKEN, ts, nonce), **extra}


def new_openid() -> str:
    return "oTEST" + uuid.uuid4().hex[:23]


def new_msg_id() -> str:
    return str(uuid.uuid4().int % 10**19)


def text_xml(openid: str, content: str, msg_id: str) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def image_xml(openid: str, msg_id: str) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
            f"<PicUrl><![CDATA[http://example.invalid/p.jpg]]></PicUrl><MediaId><![CDATA[media1]]></MediaId>"
            f"<MsgId>{msg_id}</MsgId></xml>")


def event_xml(openid: str, event: str, create_time: int | None = None) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[]]></EventKey></xml>")


def encrypt(xml: str, key: str = AES_KEY, app_id: str = APP_ID) -> str:
    """WeChat safe mode: AES-256-CBC, IV = first 16 key bytes, PKCS#7 to 32-byte blocks over
    16 random bytes + 4-byte length + message + appid."""
    aes = base64.b64decode(key + "=")
    body = xml.encode("utf-8")
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + app_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(aes), modes.CBC(aes[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


class WeChatSide:
    """What the WeChat server does towards the bot, plus helpers to look at the results."""

    def __init__(self, stack, fake: FakeWeChat, run_dir: Path) -> None:
        self.stack, self.fake, self.run_dir = stack, fake, run_dir
        self.url = f"{stack.rasa_url}/webhooks/wechat/webhook"

    def post(self, body: str | bytes, params: dict[str, str] | None = None) -> httpx.Response:
        data = body.encode("utf-8") if isinstance(body, str) else body
        return httpx.post(self.url, params=signed_params() if params is None else params, content=data,
                          headers={"Content-Type": "text/xml"}, timeout=30)

    def post_safe(self, xml: str, msg_signature: str | None = None) -> httpx.Response:
        enc = encrypt(xml)
        params = signed_params(encrypt_type="aes")
        params["msg_signature"] = msg_signature or sign(TOKEN, params["timestamp"], params["nonce"], enc)
        outer = f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
        return self.post(outer, params)

    def say(self, openid: str, text: str, msg_id: str | None = None) -> httpx.Response:
        r = self.post(text_xml(openid, text, msg_id or new_msg_id()))
        assert (r.status_code, r.text) == (200, "success")
        return r

    def reply_after(self, openid: str, seen: int, timeout: float = 60) -> str:
        """The next customer-service text to openid after the first `seen` ones."""
        texts = self.fake.wait_for(lambda: (t := self.fake.texts_to(openid)) and len(t) > seen and t, timeout)
        return texts[seen]

    def ask(self, openid: str, text: str) -> str:
        seen = len(self.fake.texts_to(openid))
        self.say(openid, text)
        return self.reply_after(openid, seen)

    def bound_openids(self) -> list[tuple[str, int, dict]]:
        """Demo WeChat identities (bound, verified, active) whose customer has one open loan."""
        with self.stack.db() as conn:
            rows = conn.execute(
                "SELECT ci.external_id, ci.customer_id FROM channel_identities ci "
                "JOIN loans l ON l.customer_id = ci.customer_id "
                "WHERE ci.channel = 'wechat' AND ci.verified = 1 AND ci.status = 'active' "
                "GROUP BY ci.id HAVING COUNT(*) = 1 AND MAX(l.status) IN ('active', 'overdue') "
                "ORDER BY ci.customer_id").fetchall()
        out = []
        for openid, cid in rows[:6]:
            (loan,) = self.stack.backend(f"/customers/{cid}/loans").json()
            out.append((openid, cid, loan))
        return out

    def identity(self, openid: str) -> httpx.Response:
        return self.stack.backend(f"/identities/wechat/{openid}")

    def inbound_rows(self, key: str) -> int:
        with self.stack.db() as conn:
            return conn.execute("SELECT COUNT(*) FROM inbound_events WHERE key = ?", (f"wechat:{key}",)).fetchone()[0]

    def push(self, openid: str, events: list[dict]) -> httpx.Response:
        """What the scheduler does: append bot events with side effects on the wechat channel."""
        r = httpx.post(f"{self.stack.rasa_url}/conversations/wechat:{openid}/tracker/events",
                       params={"output_channel": "wechat", "execute_side_effects": "true",
                               "token": self.stack.env["RASA_API_TOKEN"]},
                       json=events, timeout=60)
        r.raise_for_status()
        return r


def wechat_settings(fake: FakeWeChat) -> dict[str, str]:
    """The stack's WeChat settings, pointed at the fake API."""
    return {"WECHAT_TOKEN": TOKEN, "WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": "test-secret",
            "WECHAT_AES_KEY": AES_KEY, "WECHAT_API_BASE": fake.base_url, "WECHAT_TEMPLATE_ID": TEMPLATE_ID,
            "WECHAT_REDIS_URL": ""}


@pytest.fixture(scope="module")
def wx(tmp_path_factory):
    fake = FakeWeChat().start()
    run_dir = tmp_path_factory.mktemp("wechat")
    stack_gen = running_stack(run_dir, {
        "DATABASE_URL": f"sqlite:///{run_dir / 'loan.db'}",
        "RASA_TRACKER_URL": f"sqlite:///{run_dir / 'tracker.db'}",
        **wechat_settings(fake),
    })
    try:
        stack = next(stack_gen)
        yield WeChatSide(stack, fake, run_dir)
    finally:
        stack_gen.close()
        fake.stop()


@pytest.fixture(scope="module")
def bound(wx):
    rows = wx.bound_openids()
    assert len(rows) >= 4, "the demo data should bind several WeChat openids to one-loan customers"
    return rows


def test_url_verification_echoes_only_a_good_signature(wx):
    ok = httpx.get(wx.url, params=signed_params(echostr="echo-12345"))
    assert (ok.status_code, ok.text) == (200, "echo-12345")
    bad = signed_params(echostr="echo-12345")
    bad["signature"] = "0" * 40
    assert httpx.get(wx.url, params=bad).status_code == 403
    assert httpx.get(wx.url, params={"echostr": "echo-12345"}).status_code == 403
    assert httpx.get(wx.url, params=signed_params()).status_code == 403  # nothing to echo


def test_text_from_bound_openid_is_acknowledged_at_once_and_answered_with_exact_balance(wx, bound):
    openid, cid, loan = bound[0]
    assert loan["total_outstanding"] == wx.stack.backend(f"/customers/{cid}/loans").json()[0]["total_outstanding"]
    msg_id = new_msg_id()
    started = time.monotonic()
    r = wx.post(text_xml(openid, BALANCE_QUESTION, msg_id))
    assert (r.status_code, r.text) == (200, "success")
    assert time.monotonic() - started < 4.5, "WeChat waits 5 s: the answer must not wait for the dialogue"
    reply = wx.reply_after(openid, 0)
    assert yuan(loan["total_outstanding"]) in reply
    assert wx.inbound_rows(msg_id) == 1
    SEEN["first_msg"] = (openid, msg_id)


def test_a_retried_msgid_is_acknowledged_but_not_processed_again(wx, bound):
    openid, msg_id = SEEN["first_msg"]
    before = wx.fake.texts_to(openid)
    r = wx.post(text_xml(openid, BALANCE_QUESTION, msg_id))
    assert (r.status_code, r.text) == (200, "success")
    # A later message is answered; the retry before it produced nothing.
    wx.ask(openid, "谢谢")
    time.sleep(0.5)
    after = wx.fake.texts_to(openid)
    assert len(after) == len(before) + 1
    assert not any("¥" in t for t in after[len(before):])
    assert wx.inbound_rows(msg_id) == 1  # kept in the backend database, so restarts keep it too


def test_safe_mode_round_trip(wx, bound):
    openid, _, loan = bound[1]
    r = wx.post_safe(text_xml(openid, BALANCE_QUESTION, new_msg_id()))
    assert (r.status_code, r.text) == (200, "success")
    assert yuan(loan["total_outstanding"]) in wx.reply_after(openid, 0)
    # A good URL signature but a wrong msg_signature over the ciphertext is refused.
    msg_id = new_msg_id()
    assert wx.post_safe(text_xml(openid, BALANCE_QUESTION, msg_id), msg_signature="0" * 40).status_code == 403
    assert wx.inbound_rows(msg_id) == 0


def test_refused_callbacks_process_nothing(wx):
    openid, msg_id = new_openid(), new_msg_id()
    xml = text_xml(openid, BALANCE_QUESTION, msg_id)
    wrong = signed_params()
    wrong["signature"] = sign("another-token", wrong["timestamp"], wrong["nonce"])
    assert wx.post(xml, wrong).status_code == 403
    assert wx.post(xml, {}).status_code == 403
    assert wx.post("<xml><FromUserName>oX</FromUserName><MsgType>text").status_code == 400
    assert wx.post("not xml at all").status_code == 400
    assert wx.post(f'<!DOCTYPE x [<!ENTITY a "b">]>{xml}').status_code == 400
    padding = "x" * (70 * 1024)
    assert wx.post(text_xml(openid, padding, msg_id)).status_code == 413
    assert wx.inbound_rows(msg_id) == 0
    assert wx.identity(openid).status_code == 404  # never claimed, so never seen
    time.sleep(0.5)
    assert wx.fake.requests(touser=openid) == []


def test_an_image_gets_text_only_notice(wx):
    openid = new_openid()
    r = wx.post(image_xml(openid, new_msg_id()))
    assert (r.status_code, r.text) == (200, "success")
    assert wx.reply_after(openid, 0) == "目前只支持文字消息"


def test_non_user_events_are_acknowledged_and_ignored(wx):
    openid = new_openid()
    for event in ("TEMPLATESENDJOBFINISH", "LOCATION", "some_future_event"):
        r = wx.post(event_xml(openid, event))
        assert (r.status_code, r.text) == (200, "success")
    assert wx.identity(openid).status_code == 404  # not claimed: no 48-hour window opened
    time.sleep(0.5)
    assert wx.fake.requests(touser=openid) == []


def test_subscribe_welcomes_and_verification_binds_the_openid(wx):
    openid = new_openid()
    r = wx.post(event_xml(openid, "subscribe"))
    assert (r.status_code, r.text) == (200, "success")
    welcome = wx.reply_after(openid, 0)
    prompt = wx.reply_after(openid, 1)
    assert "感谢关注" in welcome
    assert "手机号" in prompt and "¥" not in prompt
    # The identity form the welcome started: phone, ID last four, SMS code; then the openid is bound.
    with wx.stack.db() as conn:
        cid, phone, idn = conn.execute(
            "SELECT c.id, c.phone, c.id_number FROM customers c JOIN loans l ON l.customer_id = c.id "
            "GROUP BY c.id HAVING COUNT(*) = 1 AND MAX(l.status) IN ('active', 'overdue') "
            "ORDER BY c.id DESC").fetchone()
    assert "身份证" in wx.ask(openid, phone)
    assert "验证码已发送至" in wx.ask(openid, f"身份证后四位{idn[-4:]}")
    code = re.search(r"\d{6}", wx.stack.last_sms()["body"]).group(0)
    done = wx.ask(openid, f"验证码{code}")
    assert "身份验证成功" in done and "绑定" in done
    ident = wx.identity(openid).json()
    assert (ident["customer_id"], ident["verified"], ident["status"]) == (cid, True, "active")
    (loan,) = wx.stack.backend(f"/customers/{cid}/loans").json()
    assert yuan(loan["total_outstanding"]) in wx.ask(openid, BALANCE_QUESTION)


def test_unsubscribe_marks_the_identity_inactive_once(wx, bound):
    openid = bound[2][0]
    created = int(time.time())
    for _ in range(2):  # the second is WeChat's retry of the same event
        r = wx.post(event_xml(openid, "unsubscribe", created))
        assert (r.status_code, r.text) == (200, "success")
    wx.fake.wait_for(lambda: wx.identity(openid).json()["status"] == "inactive")
    assert wx.inbound_rows(f"{openid}:{created}") == 1
    # Nothing more goes to someone who unfollowed.
    wx.push(openid, [{"event": "bot", "text": "还款提醒"}])
    time.sleep(0.5)
    assert wx.fake.requests(touser=openid) == []


def test_proactive_message_inside_the_window_uses_customer_service(wx, bound):
    openid = bound[0][0]  # wrote to us in the tests above
    text = f"您好，这是一条服务通知（{uuid.uuid4().hex[:6]}）。"
    wx.push(openid, [{"event": "bot", "text": text}])
    wx.fake.wait_for(lambda: text in wx.fake.texts_to(openid))
    assert wx.fake.requests("message/template/send", openid) == []


def test_more_than_five_messages_per_user_message_fall_back_to_template(wx):
    openid = new_openid()
    wx.ask(openid, "你好")  # 1 customer-service message used
    wx.push(openid, [{"event": "bot", "text": f"通知{i}"} for i in range(5)])
    wx.fake.wait_for(lambda: wx.fake.requests("message/template/send", openid))
    assert len(wx.fake.texts_to(openid)) == 5
    (tpl,) = wx.fake.requests("message/template/send", openid)
    assert "通知4" in tpl.body["data"]["keyword1"]["value"]
    # A new message from the user opens a fresh quota.
    wx.ask(openid, "你好")
    assert len(wx.fake.texts_to(openid)) == 6


def test_outside_the_48_hour_window_a_template_with_short_fields_is_sent(wx, bound):
    openid = bound[3][0]
    from backend.core.crypto import PiiCipher

    lookup = PiiCipher(wx.stack.env["PII_ENCRYPTION_KEY"], wx.stack.env["PII_HASH_KEY"]).lookup_hash(openid)
    with wx.stack.db() as conn:  # openids are stored encrypted: found by their keyed hash
        conn.execute("UPDATE channel_identities SET last_inbound_at = '2020-01-01 08:00:00.000000' "
                     "WHERE channel = 'wechat' AND external_id_hash = ?", (lookup,))
    text = "您的借款本期应还款日为12月15日（周二），\n应还金额 ¥1,234.56，请在还款日前存入足额款项，感谢配合。"
    wx.push(openid, [{"event": "bot", "text": text}])
    (tpl,) = wx.fake.wait_for(lambda: wx.fake.requests("message/template/send", openid))
    assert tpl.body["template_id"] == TEMPLATE_ID
    values = [f["value"] for f in tpl.body["data"].values()]
    assert values and all(len(v) <= 20 and "\n" not in v and "\r" not in v for v in values)
    assert tpl.body["data"]["keyword1"]["value"].startswith("您的借款本期应还款日")
    assert wx.fake.requests("message/custom/send", openid) == []


def test_one_access_token_is_shared_by_every_send(wx):
    assert len(wx.fake.requests("/cgi-bin/token")) == 1
    assert all(c.query.get("access_token") == "FAKE_TOKEN_1"
               for c in wx.fake.requests() if c.path != "/cgi-bin/token")


def test_logs_carry_no_full_openid_and_no_message_text(wx, bound):
    logs = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in wx.run_dir.glob("*.log")}
    assert "wechat customer-service message sent to" in logs["rasa.log"]
    seen = {c.body.get("touser") for c in wx.fake.requests() if isinstance(c.body, dict)} - {None}
    assert len(seen) >= 6
    for name, text in logs.items():
        for openid in seen:
            assert openid not in text, f"{name} carries a full openid"
        for said in (BALANCE_QUESTION, "目前只支持文字消息", "感谢关注"):
            assert said not in text, f"{name} carries message text"


# --- token refresh across workers (bot environment, no Rasa server needed) ------------------

TOKEN_SCRIPT = r"""
import sys, threading
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage
from channels.wechat import RefreshLock, SharedTokenClient

def workers(base, redis_url):
    if not redis_url:  # one process: one client, one store, one thread lock
        shared = SharedTokenClient("wxTOKEN", "s", base, MemoryStorage(), RefreshLock())
        return [shared] * 8
    import redis
    r = redis.Redis.from_url(redis_url)
    # Eight "workers": each its own client and process-local lock, one Redis store and lock.
    return [SharedTokenClient("wxTOKEN", "s", base, RedisStorage(r, prefix="t"), RefreshLock(r, "t:lock"))
            for _ in range(8)]

def run(clients):
    tokens, barrier = [], threading.Barrier(32)
    def work(c):
        barrier.wait()
        tokens.append(c.access_token)
    threads = [threading.Thread(target=work, args=(clients[i % 8],)) for i in range(32)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    # A token the API rejected is replaced once, however many threads saw the rejection.
    threads = [threading.Thread(target=clients[i % 8].replace_rejected_token, args=(tokens[0],)) for i in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return len(set(tokens)), clients[-1].access_token

for base, redis_url in zip(sys.argv[1::2], sys.argv[2::2]):
    print(*run(workers(base, redis_url)))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_many_workers_fetch_the_access_token_once(tmp_path):
    """Memory store within one process; Redis store and lock across several workers."""
    stores = {"memory": ""}
    redis_proc = None
    server = shutil.which("redis-server")
    if server is not None:
        port = free_port()
        redis_proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
        stores["redis"] = f"redis://127.0.0.1:{port}/0"
    fakes = {name: FakeWeChat().start() for name in stores}
    try:
        if redis_proc is not None:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.1)
        args = [a for name in stores for a in (fakes[name].base_url, stores[name])]
        out = subprocess.run([str(ROOT / ".venv-bot" / "bin" / "python"), "-c", TOKEN_SCRIPT, *args],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        results = dict(zip(stores, (line.split() for line in out.stdout.splitlines())))
        for name, (distinct, final) in results.items():
            assert distinct == "1", name  # every thread of every worker got the same token
            assert final == "FAKE_TOKEN_2", name  # ... and the rejected one was replaced exactly once
            assert len(fakes[name].requests("/cgi-bin/token")) == 2, name
        if redis_proc is None:
            pytest.skip("redis-server not installed: only the in-process store was checked")
    finally:
        for fake in fakes.values():
            fake.stop()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)


def test_staff_answer_a_wechat_conversation_from_the_console(wx, bound):
    """Handoff over WeChat: the staff reply and the rating prompt reach the openid through the
    (fake) customer-service message API, the same way bot messages do."""
    from tests.e2e.console_client import ConsoleUser

    openid = bound[4][0]
    assert "工单号" in wx.ask(openid, "转人工")
    case = wx.stack.backend(f"/handoffs/by-conversation/wechat:{openid}").json()
    assert (case["channel"], case["reason"]) == ("wechat", "request_human")
    agent = ConsoleUser(wx.stack.backend_url, "agent1", wx.stack.env["CONSOLE_DEMO_PASSWORD"])
    agent.post(f"/cases/{case['id']}/claim")
    seen = len(wx.fake.texts_to(openid))
    wx.say(openid, "我想改一下还款日")
    agent.wait_for_borrower_text(case["id"], "我想改一下还款日")
    time.sleep(0.5)
    assert len(wx.fake.texts_to(openid)) == seen  # paused: the bot said nothing
    agent.post(f"/cases/{case['id']}/reply", {"text": "您好，我是人工客服小王，还款日调整我来帮您登记。"})
    assert wx.reply_after(openid, seen) == "您好，我是人工客服小王，还款日调整我来帮您登记。"
    agent.post(f"/cases/{case['id']}/hand-back")
    assert wx.reply_after(openid, seen + 1).startswith("本次人工服务已结束")
    assert "请为本次人工服务打分" in wx.reply_after(openid, seen + 2)
    assert "还有什么想对我们说的吗" in wx.ask(openid, "4")
    assert wx.ask(openid, "没有") == "感谢您的评价！如还有其他问题，随时告诉我。"
    assert wx.stack.backend(f"/handoffs/by-conversation/wechat:{openid}").status_code == 404
    with wx.stack.db() as conn:
        assert conn.execute("SELECT csat, csat_comment FROM handoff_cases WHERE id = ?",
                            (case["id"],)).fetchone() == (4, None)
