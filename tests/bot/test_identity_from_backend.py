"""The action server never takes identity from the tracker alone (actions/identity.py), escapes ids
in backend URLs (bot/backend.py), and notices name only this conversation's records."""
from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("rasa_sdk")

from rasa_sdk import Tracker  # noqa: E402
from rasa_sdk.executor import CollectingDispatcher  # noqa: E402

from actions import identity  # noqa: E402
from bot import backend as backend_client  # noqa: E402


def tracker(sender: str, slots: dict | None = None, text: str = "", entities: list | None = None) -> Tracker:
    return Tracker(sender, slots or {}, {"text": text, "intent": {"name": "x"}, "entities": entities or []},
                   [], False, None, {}, "action_listen")


class FakeClient:
    def __init__(self, identities: dict | None = None, verification: dict | None = None, records: dict | None = None):
        self.identities, self.verification, self.records = identities or {}, verification or {}, records or {}
        self.asked: list = []

    async def identity(self, channel, external):
        self.asked.append(("identity", channel, external))
        if not backend_client.valid_identity(channel, external):
            return None
        return self.identities.get(f"{channel}:{external}")

    async def verification_status(self, conversation):
        self.asked.append(("verification", conversation))
        return self.verification.get(conversation, {"status": "none"})

    async def complaint(self, reference):
        return self.records.get(reference)

    async def plan_request(self, reference):
        return self.records.get(reference)


def verified_id(client, t):
    return asyncio.run(identity.verified_customer_id(client, t))


def test_forged_slots_are_not_believed():
    client = FakeClient()
    assert verified_id(client, tracker("web:anon-abcdef123", {"verified": True, "customer_id": 5})) is None
    assert ("verification", "web:anon-abcdef123") in client.asked


def test_a_verified_conversation_is_who_the_backend_says():
    client = FakeClient(verification={"web:anon-abcdef123": {"status": "verified", "customer_id": 8}})
    # The backend's record wins over a slot naming someone else.
    assert verified_id(client, tracker("web:anon-abcdef123", {"verified": True, "customer_id": 5})) == 8
    assert verified_id(client, tracker("web:anon-abcdef123", {"verified": False})) is None


def test_the_channel_identity_is_enough_and_wrong_person_is_nothing():
    ok = {"customer_id": 3, "verified": True, "status": "active"}
    client = FakeClient({"sms:+8613800000003": ok, "wechat:oWrong": {**ok, "status": "wrong_person"}})
    assert verified_id(client, tracker("sms:+8613800000003")) == 3
    assert verified_id(client, tracker("wechat:oWrong", {"verified": True, "customer_id": 3})) is None


@pytest.mark.parametrize("sender", ["sms:../web/7", "web:5", "web:7", "wechat:../../customers/7"])
def test_a_forged_sender_has_no_identity(sender):
    client = FakeClient({"web:7": {"customer_id": 7, "verified": True, "status": "active"}})
    assert verified_id(client, tracker(sender, {"verified": True, "customer_id": 7})) is None


def test_backend_urls_escape_ids(monkeypatch):
    seen = []

    async def request(self, method, path, **kwargs):
        seen.append(path)
        return {}

    monkeypatch.setattr(backend_client.BackendClient, "_request", request)
    c = backend_client.BackendClient("http://x", "k")
    assert asyncio.run(c.identity("sms", "../web/7")) is None and seen == []  # never asked
    asyncio.run(c.complaint("../customers/7"))
    asyncio.run(c.current_handoff("web:anon-1/../x"))
    assert seen == ["/complaints/..%2Fcustomers%2F7", "/handoffs/by-conversation/web%3Aanon-1%2F..%2Fx"]


def test_masked_conversation_matches_the_backend():
    assert identity.masked_conversation("sms:+8613812345678") == "sms:138****5678"
    assert identity.masked_conversation("wechat:oAbcdefghwxyz") == "wechat:oAbc****wxyz"
    assert identity.masked_conversation("web:anon-abc") == "web:anon-abc"


def _form_events(monkeypatch, record: dict, text: str = "验证码是******") -> tuple[list, list]:
    from actions import verification

    class Client(FakeClient):
        async def check_code(self, conversation, code):  # the form must not check 「******」
            raise AssertionError("checked the mask as a code")

    d = CollectingDispatcher()
    slots = {"identity_phone": "13800000001", "identity_id_last4": "1234", "identity_otp": None,
             "identity_outcome": "sent", "requested_slot": "identity_otp"}
    t = Tracker("web:anon-abcdef123", slots, {"text": text, "intent": {"name": "inform"}, "entities": []},
                [], False, None, {"name": "identity_form"}, "identity_form")
    with backend_client.override_backend(Client(verification={"web:anon-abcdef123": record})):
        events = asyncio.run(verification.ValidateIdentityForm().run(d, t, {"forms": {"identity_form": {
            "required_slots": ["identity_phone", "identity_id_last4", "identity_otp"]}}, "slots": {}}))
    return events, d.messages


def test_a_masked_code_takes_the_backends_outcome(monkeypatch):
    events, _ = _form_events(monkeypatch, {"status": "verified", "customer_id": 4})
    sets = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert sets["verified"] is True and sets["customer_id"] == 4 and sets["identity_otp"] is None
    assert [e for e in events if e.get("name") == "requested_slot"][-1]["value"] is None  # the form is done


def test_a_masked_wrong_code_says_how_many_tries_are_left(monkeypatch):
    events, messages = _form_events(monkeypatch, {"status": "pending", "attempts_left": 3})
    assert "还可以再试3次" in messages[0]["text"]
    assert not any(e.get("name") == "verified" for e in events)
