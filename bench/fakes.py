"""The fake WeChat and Twilio APIs of the channel tests (tests/channels), in a process of their own for
the delivery benchmark (bench.delivery), so that they cost the measured processes nothing.

    .venv-app/bin/python -m bench.fakes

prints one JSON line {"wechat": <API base>, "twilio": <URL>}, then answers commands on stdin, one a
line: "dump" prints one JSON line with what both fakes accepted so far; "quit" (or EOF) stops.
"""
from __future__ import annotations

import json
import sys

from tests.channels.fake_twilio import FakeTwilio
from tests.channels.fake_wechat import FakeWeChat

TWILIO_SID = "AC" + "be" * 16
TWILIO_TOKEN = "bench-twilio-auth-token-0123456789"
WECHAT_SENDS = ("/cgi-bin/message/custom/send", "/cgi-bin/message/template/send")


def dump(wechat: FakeWeChat, twilio: FakeTwilio) -> dict:
    """WeChat messages (customer-service or template) by openid; SMS segments accepted, in order, and
    every request Twilio refused."""
    calls = wechat.requests()
    sends = [c for c in calls if c.path in WECHAT_SENDS]
    with twilio._lock:  # noqa: SLF001 - the fake's own list, read under its lock
        requests = list(twilio.requests)
    return {
        "wechat": [{"kind": c.path.rsplit("/", 2)[-2], "touser": (c.body or {}).get("touser")} for c in sends],
        "wechat_token_calls": sum(c.path == "/cgi-bin/token" for c in calls),
        "wechat_other": len(calls) - len(sends) - sum(c.path == "/cgi-bin/token" for c in calls),
        "sms": [{"to": r.to, "body": r.body} for r in requests if r.status == 201],
        "sms_refused": len([r for r in requests if r.status != 201]),
    }


def main() -> None:
    wechat = FakeWeChat().start()
    twilio = FakeTwilio(TWILIO_SID, TWILIO_TOKEN).__enter__()
    print(json.dumps({"wechat": wechat.base_url, "twilio": twilio.url}), flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "dump":
                print(json.dumps(dump(wechat, twilio), ensure_ascii=False), flush=True)
            elif line.strip() == "quit":
                break
    finally:
        wechat.stop()
        twilio.__exit__(None, None, None)


if __name__ == "__main__":
    main()
