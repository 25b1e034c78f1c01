"""One borrower on WeChat, then SMS, then the web chat: one conversation context per channel,
one customer record across all three (the issue's "done when"). Both third parties are fakes on
127.0.0.1 driven through the real wechatpy and twilio clients."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest
import socketio

from tests.e2e.conftest import running_stack

from .fake_twilio import FakeTwilio
from .fake_wechat import FakeWeChat
from .test_sms import ACCOUNT_SID, AUTH_TOKEN, bodies, text_sms, twilio_settings, wait_reply
from .test_wechat import WeChatSide, wechat_settings

pytestmark = pytest.mark.e2e


def yuan(v) -> str:
    return f"¥{Decimal(str(v)):,.2f}"


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    wechat, twilio = FakeWeChat().start(), FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    twilio.__enter__()
    run_dir = tmp_path_factory.mktemp("cross")
    gen = running_stack(run_dir, {
        "DATABASE_URL": f"sqlite:///{run_dir / 'loan.db'}",
        "RASA_TRACKER_URL": f"sqlite:///{run_dir / 'tracker.db'}",
        **wechat_settings(wechat),
        **twilio_settings(twilio),
    })
    try:
        stack = next(gen)
        yield stack, WeChatSide(stack, wechat, run_dir), twilio
    finally:
        gen.close()
        wechat.stop()
        twilio.__exit__(None, None, None)


async def _web_ask(url: str, token: str, text: str) -> str:
    client = socketio.AsyncClient(reconnection=False)
    got: asyncio.Queue = asyncio.Queue()
    client.on("bot_uttered", lambda data: got.put_nowait(data.get("text", "")))
    confirmed = asyncio.Event()
    client.on("session_confirm", lambda _sid: confirmed.set())
    await client.connect(url, auth={"token": token}, transports=["websocket"])
    await client.emit("session_request", {"session_id": None})
    await asyncio.wait_for(confirmed.wait(), 10)
    await client.emit("user_uttered", {"message": text})
    first = await asyncio.wait_for(got.get(), 30)
    await client.disconnect()
    return first


def test_one_borrower_three_channels_one_customer_three_contexts(both):
    stack, wx, twilio = both
    openid, cid, loan = wx.bound_openids()[0]
    total = yuan(loan["total_outstanding"])
    with stack.db() as conn:
        (phone,) = conn.execute("SELECT phone FROM customers WHERE id = ?", (cid,)).fetchone()
    number = "+86" + phone

    # WeChat: the bound openid is verified; the balance and a promise to pay.
    assert total in wx.ask(openid, "我还欠多少钱")
    promise_reply = wx.ask(openid, "后天一定还")
    promised = (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=2)).isoformat()
    assert "已为您登记" in promise_reply

    # SMS from the registered phone: the same customer, the same figure.
    seen = len(bodies(twilio, number))
    text_sms(stack, number, "我还欠多少钱")
    assert total in "".join(wait_reply(twilio, number, seen, "¥"))

    # Web chat, signed in as the same customer.
    web_sender = stack.web_sender(cid)
    token = jwt.encode({"sub": web_sender, "customer_id": cid,
                        "exp": int(datetime.now().timestamp()) + 600}, stack.env["WEBCHAT_JWT_SECRET"], algorithm="HS256")
    assert total in asyncio.run(_web_ask(stack.rasa_url, token, "我还欠多少钱"))

    # One customer record: every channel identity points at it, and the promise made on WeChat is its.
    for channel, external in (("wechat", openid), ("sms", number), ("web", web_sender.removeprefix("web:"))):
        ident = stack.backend(f"/identities/{channel}/{external}").json()
        assert (ident["customer_id"], ident["verified"], ident["status"]) == (cid, True, "active"), channel
    (promise,) = stack.backend(f"/customers/{cid}/promises").json()
    assert promise["promised_date"] == promised and date.fromisoformat(promise["promised_date"])

    # Three conversation contexts: each tracker holds only its own channel's messages.
    def user_texts(sender: str) -> list[str]:
        events = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                           params={"token": stack.env["RASA_API_TOKEN"]}, timeout=30).json()["events"]
        return [e["text"] for e in events if e.get("event") == "user"]

    assert user_texts(f"wechat:{openid}") == ["我还欠多少钱", "后天一定还"]
    assert user_texts(f"sms:{number}") == ["我还欠多少钱"]
    assert user_texts(web_sender) == ["我还欠多少钱"]
