"""Property tests (Hypothesis) for the channel parsers: SMS keywords (channels/sms.py), the WeChat
callback parser (channels/wechat.py WeChatInput._parse), the web chat's session ids, bearer tokens and
message screening (channels/webchat.py, channels/guard.py).

The channel modules import Rasa, sanic and wechatpy, which live in the bot environment only, and
Hypothesis is in the app lock only (its locked 6.170 needs Python 3.11): `make test` runs this folder
with the app environment, where this module is skipped. Run it by hand with the bot environment and
any Hypothesis for Python 3.10 on the path (until one is in requirements/bot.in):

    PYTHONPATH=<dir with hypothesis 6.139> .venv-bot/bin/python -m pytest tests/channels/test_properties.py -q

At most 100 examples per property.
"""
from __future__ import annotations

import asyncio
import re
import unicodedata
import uuid

import pytest

pytest.importorskip("rasa", reason="the channels need the bot environment (Rasa, sanic, wechatpy)")
pytest.importorskip("wechatpy", reason="the channels need the bot environment")
hypothesis = pytest.importorskip("hypothesis", reason="Hypothesis is not installed in this environment")

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from rasa.core.channels.channel import decode_bearer_token  # noqa: E402

from channels import sms, webchat, wechat  # noqa: E402

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- SMS keywords

@FAST
@given(st.text(max_size=300))
@example("")
@example("\x00")
@example("ＳＴＯＰ。")
def test_sms_keyword_never_raises(text):
    assert sms.keyword(text) in (None, "in", "out")


@FAST
@given(st.sampled_from(sorted(sms.OPT_OUT_WORDS)), st.sampled_from(["", " ", "\u3000", "\n"]),
       st.sampled_from(["", "。", ".", "!", "！"]), st.booleans(), st.booleans())
def test_sms_opt_out_word_in_any_dress(word, space, stop, upper, full_width):
    dressed = word.upper() if upper else word
    if full_width:  # ASCII letters as full-width characters (ＳＴＯＰ)
        dressed = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in dressed)
    assert sms.keyword(f"{space}{dressed}{stop}{space}") == "out"


@FAST
@given(st.text(min_size=1, max_size=50))
def test_sms_keyword_is_only_the_whole_message(text):
    """A sentence that merely contains 退订 is not an opt-out."""
    word = unicodedata.normalize("NFKC", text).strip().rstrip("。.!！").strip().casefold()
    expected = "out" if word in sms.OPT_OUT_WORDS else "in" if word in sms.OPT_IN_WORDS else None
    assert sms.keyword(text) == expected
    assert sms.keyword(f"我不想{text}退订了吗") in (None, "in", "out")


@FAST
@given(st.text(max_size=40))
def test_sms_number_of_any_sender_id(sender):
    number = sms.number_of(sender)
    assert number is None or (sender == f"sms:{number}" and sms.E164.match(number))


# --------------------------------------------------------------------------- WeChat callbacks

class _Request:
    def __init__(self) -> None:
        self.args: dict = {}


def _parser() -> wechat.WeChatInput:
    parser = object.__new__(wechat.WeChatInput)  # no credentials, no client: only the parser is used
    parser.crypto = None
    return parser


def _parse(body: bytes):
    """The parsed message, or None when the parser refuses the body (BadRequest 400)."""
    try:
        return _parser()._parse(body, _Request())
    except wechat.BadRequest:
        return None


XML_TEXT = ("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            "<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]>"
            "</Content><MsgId>{msgid}</MsgId></xml>")


@FAST
@given(st.binary(max_size=2000))
@example(b"")
@example(b"<xml>")
@example(b"<xml><FromUserName>oWx1</FromUserName></xml>")
def test_wechat_parser_never_raises_on_bytes(body):
    msg = _parse(body)
    assert msg is None or wechat.OPENID.fullmatch(msg.source)


@FAST
@given(st.text(max_size=500))
def test_wechat_parser_returns_none_on_garbage_text(text):
    """Text that is not a WeChat XML message (no <xml> root with a sender and a time) is refused."""
    if "<xml" in text:
        text = text.replace("<xml", "<x")
    assert _parse(text.encode("utf-8", "surrogatepass")) is None


@FAST
@given(st.sampled_from(["<!DOCTYPE xml [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>", "<!ENTITY x 'y'>"]),
       st.text(max_size=30))
def test_wechat_parser_refuses_entities(declaration, content):
    body = declaration + XML_TEXT.format(openid="oWx123", ts=1, content="&e;" + content.replace("]]>", ""), msgid=1)
    assert _parse(body.encode("utf-8", "surrogatepass")) is None


@FAST
@given(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), st.integers(min_value=1, max_value=2**31),
       st.text(max_size=200).map(lambda t: t.replace("]]>", "")), st.integers(min_value=1, max_value=2**62))
def test_wechat_parser_reads_any_text_message(openid, ts, content, msgid):
    content = "".join(c for c in content if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd")
    msg = _parse(XML_TEXT.format(openid=openid, ts=ts, content=content, msgid=msgid).encode("utf-8"))
    assert msg is not None and msg.source == openid
    assert wechat.WeChatInput._kind(msg)[0] == "text"


# --------------------------------------------------------------------------- web chat

@FAST
@given(st.text(max_size=80))
@example("web:anon-" + "0" * 32)
def test_webchat_session_ids_are_only_the_anonymous_shape(wanted):
    """A browser may bring back its anonymous session id; nothing else is taken as a sender."""
    accepted = bool(webchat.ANON.match(wanted))
    assert accepted == bool(re.fullmatch(r"web:anon-[0-9a-f]{32}", wanted))


@FAST
@given(st.text(max_size=300))
def test_webchat_bearer_token_garbage_is_refused(token):
    assert decode_bearer_token(token, "test-jwt-key", "HS256") is None


@pytest.mark.skipif(not hasattr(webchat, "guard"), reason="channels/guard.py (message screening) not present")
@FAST
@given(st.one_of(st.none(), st.integers(), st.text(max_size=1500), st.lists(st.text(max_size=5), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)))
def test_webchat_message_screening_never_raises(message):
    """Whatever a socket sends as ``message``, the screen answers it or passes text on."""
    sender = f"web:anon-{uuid.uuid4().hex}"  # a fresh sender: the per-sender rate limit is not in play
    verdict = asyncio.run(webchat.guard.screen(sender, message, None))
    assert verdict.reply is not None or isinstance(verdict.text, str)
    if isinstance(message, str) and verdict.reply is None:
        assert len(verdict.text) <= len(message) + 20
