"""The channels' side of inbound claims (channels/claims.py, channels/wechat.py, channels/webchat.py) against
an in-memory claim store that keeps the backend's rules (tests/backend/test_inbound_claims.py checks the
real one): the claim is completed only after Rasa processed the message, renewed while it works, released
when the turn failed; a retry of a done message is not processed; the web chat's duplicate answer."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from wechatpy import parse_message

from bot.backend import BackendError, override_backend
from channels import claims as claims_mod
from channels import wechat
from channels.claims import Lease, settle
from channels.webchat import client_message_id, replies_to


class Claims:
    """The backend's claim rules, in memory, with a lease in seconds; records every call."""

    def __init__(self, lease: float = 0.6) -> None:
        self.lease, self.rows, self.calls = lease, {}, []

    def _answer(self, row: dict, state: str) -> dict:
        until = datetime.fromtimestamp(row["until"], timezone.utc).isoformat() if row["until"] else None
        return {"first_time": state == "claimed", "state": state, "owner": row["owner"], "attempts": row["attempts"],
                "lease_seconds": self.lease, "lease_until": until, "identity": {"status": "active"}}

    async def claim(self, channel, external_id, key, owner=None):
        self.calls.append(("claim", key, owner))
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = row = {"state": "in_progress", "owner": owner, "until": time.time() + self.lease,
                                    "attempts": 1}
            return self._answer(row, "claimed")
        if row["state"] == "done":
            return self._answer(row, "done")
        if row["owner"] == owner or row["until"] <= time.time():
            row["attempts"] += row["owner"] != owner
            row.update(owner=owner, until=time.time() + self.lease)
            return self._answer(row, "claimed")
        return self._answer(row, "in_progress")

    async def renew_claim(self, channel, key, owner):
        self.calls.append(("renew", key, owner))
        row = self.rows[key]
        if row["state"] != "in_progress" or row["owner"] != owner:
            raise BackendError(409, "claim_lost", "x")
        row["until"] = time.time() + self.lease
        return {"state": row["state"]}

    async def complete_claim(self, channel, key, owner):
        self.calls.append(("complete", key, owner))
        self.rows[key]["state"] = "done"
        return {"state": "done"}

    async def release_claim(self, channel, key, owner):
        self.calls.append(("release", key, owner))
        row = self.rows[key]
        if row["owner"] == owner and row["state"] == "in_progress":
            row["until"] = time.time()
        return {"state": row["state"]}

    def kinds(self, key: str) -> list[str]:
        return [c[0] for c in self.calls if c[1] == key]


def test_a_lease_is_renewed_while_rasa_works_and_completed_once_after():
    store = Claims(lease=0.3)

    async def main():
        claim = await store.claim("sms", "+8613800000000", "SM1", "owner-a")
        lease = Lease(store, "sms", "SM1", "owner-a", claim["lease_seconds"]).start()
        await asyncio.sleep(0.45)  # a turn longer than the lease
        assert (await store.claim("sms", "+8613800000000", "SM1", "owner-b"))["state"] == "in_progress"
        await lease.complete()
        await lease.complete()
        await lease.release()  # after completion: nothing
        return await store.claim("sms", "+8613800000000", "SM1", "owner-c")

    assert asyncio.run(main())["state"] == "done"
    kinds = store.kinds("SM1")
    assert kinds[0] == "claim" and kinds.count("renew") >= 1 and kinds.count("complete") == 1
    assert "release" not in kinds


def test_a_released_claim_is_taken_over_at_once_and_settle_waits_for_done_or_stale():
    store = Claims(lease=5)

    async def main():
        await store.claim("wechat", "o1", "M1", "owner-a")
        fresh = await store.claim("wechat", "o1", "M1", "owner-b")
        started = time.monotonic()
        still = await settle(store, "wechat", "o1", "M1", "owner-b", fresh, 0.6)  # owner-a alive: stays
        waited = time.monotonic() - started
        await Lease(store, "wechat", "M1", "owner-a", 5).release()
        taken = await store.claim("wechat", "o1", "M1", "owner-b")
        await store.claim("wechat", "o1", "M2", "owner-a")
        pending = await store.claim("wechat", "o1", "M2", "owner-b")

        async def finish_later():
            await asyncio.sleep(0.3)
            await store.complete_claim("wechat", "M2", "owner-a")

        asyncio.ensure_future(finish_later())
        done = await settle(store, "wechat", "o1", "M2", "owner-b", pending, 3)
        return still, waited, taken, done

    still, waited, taken, done = asyncio.run(main())
    assert still["state"] == "in_progress" and 0.5 < waited < 1.5
    assert (taken["state"], taken["owner"], taken["attempts"]) == ("claimed", "owner-b", 2)
    assert done["state"] == "done"


def text_msg(openid: str, content: str, msg_id: str):
    return parse_message(f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
                         f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]>"
                         f"</MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


@pytest.fixture
def wx(monkeypatch):
    store = Claims(lease=1.0)
    with override_backend(store):
        channel = wechat.WeChatInput(token="test-token", app_id="wxtest", app_secret="secret")
    sent: list[tuple[str, str]] = []

    async def send(openid, text, window_open=None):
        sent.append((openid, text, tuple(store.kinds("MSG-1"))))

    monkeypatch.setattr(channel.sender, "send", send)
    monkeypatch.setattr(wechat, "REPLY_WITHIN", 0.8)
    return channel, store, sent


def test_wechat_completes_the_claim_after_rasa_and_drops_a_retry_of_a_done_message(wx):
    channel, store, sent = wx
    turns: list[str] = []

    async def on_new_message(message):
        turns.append(message.text)
        await message.output_channel.send_text_message(message.sender_id, "answer")

    async def main():
        first = await channel._accept(text_msg("oUser0001", "hello", "MSG-1"), on_new_message)
        again = await channel._accept(text_msg("oUser0001", "hello", "MSG-1"), on_new_message)
        return first, again

    first, again = asyncio.run(main())
    assert (first.status, first.body, again.status, again.body) == (200, b"success", 200, b"success")
    assert turns == ["hello"]
    # The answer went out after the claim was completed: a retry cannot process it again.
    assert sent == [("oUser0001", "answer", ("claim", "complete"))]
    assert store.kinds("MSG-1") == ["claim", "complete", "claim"]


def test_wechat_releases_the_claim_of_a_failed_turn_and_its_retry_processes_it(wx):
    channel, store, sent = wx
    turns: list[str] = []

    async def on_new_message(message):
        turns.append(message.text)
        if len(turns) == 1:
            raise RuntimeError("rasa failed")
        await message.output_channel.send_text_message(message.sender_id, "answer")

    async def main():
        first = await channel._accept(text_msg("oUser0002", "hello", "MSG-1"), on_new_message)
        retry = await channel._accept(text_msg("oUser0002", "hello", "MSG-1"), on_new_message)
        return first, retry

    first, retry = asyncio.run(main())
    assert first.status == 500  # WeChat retries a callback it got no good answer to
    assert (retry.status, retry.body) == (200, b"success")
    assert turns == ["hello", "hello"]
    assert [text for _, text, _ in sent] == ["answer"]
    assert store.kinds("MSG-1") == ["claim", "release", "claim", "complete"]
    assert store.rows["MSG-1"]["attempts"] == 2


def test_wechat_retry_while_the_owner_works_is_answered_without_processing(wx):
    channel, store, sent = wx
    release = asyncio.Event

    async def main():
        gate = release()
        turns: list[str] = []

        async def slow(message):
            turns.append(message.text)
            await gate.wait()

        first = asyncio.ensure_future(channel._accept(text_msg("oUser0003", "hello", "MSG-1"), slow))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        retry = await channel._accept(text_msg("oUser0003", "hello", "MSG-1"), slow)
        waited = time.monotonic() - started
        gate.set()
        await first
        await asyncio.sleep(0.1)
        return retry, waited, turns

    retry, waited, turns = asyncio.run(main())
    assert (retry.status, retry.body) == (200, b"success")
    assert 0.6 < waited < 1.5 and turns == ["hello"]
    assert store.rows["MSG-1"]["state"] == "done" and store.rows["MSG-1"]["attempts"] == 1


def test_the_web_chat_message_id_and_the_answers_a_duplicate_gets():
    assert client_message_id({"cid": "8A1C27A5-3C43-4B53-9E43-1F0AF2D4B6E2"}) == "8a1c27a53c434b539e431f0af2d4b6e2"
    assert client_message_id({"cid": "not-a-uuid"}) is None
    assert client_message_id({"message": "hi"}) is None
    assert client_message_id("cid") is None
    events = [
        UserUttered("hi", message_id="a" * 32), BotUttered("hello"), ActionExecuted("action_listen"),
        UserUttered("balance", message_id="b" * 32),
        BotUttered("first part\n\nsecond part", data={"buttons": [{"title": "Loan 1", "payload": "/x"}]}),
        BotUttered("more"), UserUttered("thanks", message_id="c" * 32), BotUttered("you are welcome"),
    ]
    assert replies_to(events, "b" * 32) == [
        {"text": "first part", "buttons": []},
        {"text": "second part", "buttons": [{"title": "Loan 1", "payload": "/x"}]},
        {"text": "more", "buttons": []},
    ]
    assert replies_to(events, "d" * 32) == []
    assert claims_mod.seconds_left({"lease_until": (datetime.now(timezone.utc) + timedelta(seconds=3)).isoformat()}) > 2


class _Store:
    def __init__(self, events):
        self.events = events

    async def retrieve(self, sender_id):
        from rasa.shared.core.trackers import DialogueStateTracker
        return DialogueStateTracker.from_events(sender_id, self.events)


class _App:
    def __init__(self, events):
        agent = type("Agent", (), {"tracker_store": _Store(events)})()
        self.ctx = type("Ctx", (), {"agent": agent})()


def test_a_taken_over_claim_whose_message_is_in_the_tracker_is_not_processed_again(wx):
    """A replica killed after Rasa saved the turn and before it completed the claim: the retry takes the
    stale claim over (attempts 2), finds MsgId in the tracker, completes the claim, processes nothing
    (seen in the replica kill test: the same message twice in a tracker)."""
    channel, store, sent = wx
    turns: list[str] = []

    async def on_new_message(message):
        turns.append(message.text)

    app = _App([ActionExecuted("action_listen"), UserUttered("hello", message_id="MSG-1")])

    async def main():
        await store.claim("wechat", "oUser0009", "MSG-1", "dead-owner")
        store.rows["MSG-1"]["until"] = time.time() - 1  # its lease ran out: the owner died
        return await channel._accept(text_msg("oUser0009", "hello", "MSG-1"), on_new_message, app)

    answer = asyncio.run(main())
    assert (answer.status, answer.body) == (200, b"success")
    assert turns == [] and sent == []
    assert store.rows["MSG-1"]["state"] == "done" and store.rows["MSG-1"]["attempts"] == 2


def test_a_taken_over_claim_whose_message_never_reached_the_tracker_is_processed(wx):
    channel, store, sent = wx
    turns: list[str] = []

    async def on_new_message(message):
        turns.append(message.text)

    app = _App([ActionExecuted("action_listen"), UserUttered("earlier", message_id="MSG-0")])

    async def main():
        await store.claim("wechat", "oUser0010", "MSG-1", "dead-owner")
        store.rows["MSG-1"]["until"] = time.time() - 1
        return await channel._accept(text_msg("oUser0010", "hello", "MSG-1"), on_new_message, app)

    answer = asyncio.run(main())
    assert (answer.status, answer.body) == (200, b"success")
    assert turns == ["hello"] and store.rows["MSG-1"]["state"] == "done"


def test_processed_before_reads_the_message_id_and_never_blocks_an_answer():
    app = _App([UserUttered("hi", message_id="abc")])
    assert asyncio.run(claims_mod.processed_before(app, "web:anon-1", "abc"))
    assert not asyncio.run(claims_mod.processed_before(app, "web:anon-1", "abd"))
    assert not asyncio.run(claims_mod.processed_before(app, "web:anon-1", ""))
    assert not asyncio.run(claims_mod.processed_before(None, "web:anon-1", "abc"))  # no tracker store: process
    assert claims_mod.taken_over({"attempts": 2}) and not claims_mod.taken_over({"attempts": 1})
