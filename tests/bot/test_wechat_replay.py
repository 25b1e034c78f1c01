"""WeChat callback signatures: a timestamp window and a nonce used once (channels/wechat.py)."""
from __future__ import annotations

import hashlib
import time

import pytest

pytest.importorskip("wechatpy")

from channels.wechat import NonceCache, WeChatInput  # noqa: E402

TOKEN = "replay-test-token"


def signed(ts: int, nonce: str) -> dict:
    signature = hashlib.sha1("".join(sorted([TOKEN, str(ts), nonce])).encode()).hexdigest()
    return {"timestamp": str(ts), "nonce": nonce, "signature": signature}


class Req:
    def __init__(self, args: dict) -> None:
        self.args = args


@pytest.fixture
def channel() -> WeChatInput:
    return WeChatInput(token=TOKEN, app_id="wx-test", app_secret="secret")


def test_a_fresh_signature_is_accepted(channel):
    assert channel._signed(Req(signed(int(time.time()), "n1")), b"<xml>1</xml>")


def test_an_old_or_future_timestamp_is_refused(channel):
    assert not channel._signed(Req(signed(978307200, "n2")), b"<xml/>")  # 2001
    assert not channel._signed(Req(signed(int(time.time()) - 301, "n3")), b"<xml/>")
    assert not channel._signed(Req(signed(int(time.time()) + 301, "n4")), b"<xml/>")
    assert channel._signed(Req(signed(int(time.time()) - 290, "n5")), b"<xml/>")


def test_a_nonce_is_good_once_for_another_body(channel):
    args = signed(int(time.time()), "n6")
    assert channel._signed(Req(args), b"<xml>first</xml>")
    assert channel._signed(Req(args), b"<xml>first</xml>")  # WeChat retrying the same callback
    assert not channel._signed(Req(args), b"<xml>forged</xml>")  # a replay with another body


def test_nonce_cache_forgets_after_the_window():
    cache = NonceCache(window=300)
    assert cache.first_use("k", "a", now=1000)
    assert not cache.first_use("k", "b", now=1100)
    assert cache.first_use("k", "b", now=1000 + 601)
