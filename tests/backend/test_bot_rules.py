"""config/business.yml has one reader, the backend: every key of the file is modelled and validated
(a misspelt or unknown key stops the start), and GET /api/v1/bot/rules serves the bot side what it
works by. tests/data/bot_rules.json (the bot-side tests' rules, tests/bot/conftest.py) is exactly what
the endpoint serves for the shipped file, so the bot's tests cannot drift from the configuration.
"""
from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from backend.core.config import BusinessRules, RuleSection
from backend.main import create_app
from conftest import make_settings
from testkit import TEST_API_KEYS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "business.yml"
SNAPSHOT = ROOT / "tests" / "data" / "bot_rules.json"


@pytest.fixture(scope="module")
def rules_client(tmp_path_factory):
    # The route reads no table: an empty SQLite file is enough.
    app = create_app(make_settings(f"sqlite:///{tmp_path_factory.mktemp('db') / 'rules.db'}"))
    with TestClient(app) as client:
        yield client


def served(client: TestClient, caller: str = "actions") -> dict:
    resp = client.get("/api/v1/bot/rules", headers={"X-API-Key": TEST_API_KEYS[caller]})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_the_snapshot_is_what_the_endpoint_serves_for_the_shipped_file(rules_client):
    assert served(rules_client) == json.loads(SNAPSHOT.read_text(encoding="utf-8")), (
        "the served bot rules changed: update tests/data/bot_rules.json with this endpoint's answer")


def test_the_action_server_and_the_connectors_may_read_the_rules(rules_client):
    assert served(rules_client, "actions") == served(rules_client, "channels")
    for caller in ("scheduler", "payments", "reports"):
        resp = rules_client.get("/api/v1/bot/rules", headers={"X-API-Key": TEST_API_KEYS[caller]})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "insufficient_scope"
    assert rules_client.get("/api/v1/bot/rules").status_code == 401


def test_the_served_numbers_follow_the_file(tmp_path):
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    raw["verification"].update(code_ttl_seconds=600, lock_minutes=45)
    raw["outreach"].update(wechat_window_hours=24, reminder_days_before=[1, 0])
    raw["handoff"]["plan_segments"] = {"value_tier": ["vip", "standard"]}
    path = tmp_path / "business.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    settings = make_settings(f"sqlite:///{tmp_path / 'r.db'}").model_copy(update={"business_rules_path": path})
    with TestClient(create_app(settings)) as client:
        got = served(client)
    assert got["verification"]["code_ttl_seconds"] == 600 and got["verification"]["lock_minutes"] == 45
    assert got["outreach"]["wechat_window_hours"] == 24 and got["outreach"]["reminder_days_before"] == [1, 0]
    assert got["handoff"]["plan_segments"] == {"value_tier": ["vip", "standard"]}
    assert got["handoff"]["staffed_hours"]["start"] == "09:00" and got["penalty"]["rate_multiplier"] == "1.5"


# --------------------------------------------------------------------------- every key validated

def _models(annotation) -> list[type[BaseModel]]:
    """The models inside a field's type (X, list[X], dict[str, X], X | None)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _walk(model: type[BaseModel], data, path: str, seen: list[str]) -> None:
    """Every key of ``data`` (the file's mapping for ``model``) is a field of the model."""
    assert isinstance(data, dict), path
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        assert key in model.model_fields, f"{where} is not modelled in backend.core.config"
        seen.append(where)
        annotation = model.model_fields[key].annotation
        inner = _models(annotation)
        if not inner:
            continue  # a value (or a mapping of values: priorities, weights, plan_segments)
        origin = typing.get_origin(annotation)
        if origin is list:
            for i, item in enumerate(value):
                _walk(inner[0], item, f"{where}.{i}", seen)
        elif origin is dict:
            for name, item in value.items():
                _walk(inner[0], {k: v for k, v in item.items()}, f"{where}.{name}", seen)
        else:
            _walk(inner[0], value, where, seen)


def test_every_key_of_the_shipped_file_is_modelled():
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    seen: list[str] = []
    _walk(BusinessRules, raw, "", seen)
    assert {"payment_check.default_days_back", "conversation_forms.max_reasks", "penalty.rate_multiplier",
            "abuse.max_message_chars", "outreach.identity_check.kinds"} <= set(seen)
    BusinessRules.load(SHIPPED)  # and the file is valid


def test_every_rules_model_forbids_unknown_keys():
    todo, checked = [BusinessRules], set()
    while todo:
        model = todo.pop()
        if model in checked:
            continue
        checked.add(model)
        assert issubclass(model, RuleSection) and model.model_config.get("extra") == "forbid", model.__name__
        for field in model.model_fields.values():
            todo.extend(_models(field.annotation))
    assert len(checked) > 20


def _set(raw: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[last] = value


@pytest.mark.parametrize("dotted, value", [
    ("payment_chek", {"default_days_back": 7}),                    # a misspelt section
    ("payment_check.default_day_back", 7),                         # a misspelt key of an unchecked-before section
    ("conversation_forms.idle_minute", 30),
    ("penalty.rate_multipler", "1.5"),
    ("promise_to_pay.max_day_ahead", 30),
    ("segments.risk_tiers", []),
    ("segments.risk_tier.0.any_of.0.days_past_due_gtee", 31),     # a segment condition
    ("products.xinyongdai.fee_rate", "0.01"),
    ("handoff.staffed_hours.strat", "09:00"),
    ("handoff.plan_segments.value_teir", ["vip"]),
    ("outreach.caps.per_dya", 1),
    ("outreach.identity_check.channel", ["sms"]),
    ("service_quality.response_minutes.bands.0.blow", 5),
    ("abuse.messages_per_minut", 20),
    ("nlu_review.review_bellow", 0.7),
])
def test_a_misspelt_or_unknown_key_is_refused(tmp_path, dotted, value):
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    _set(raw, dotted, value)
    path = tmp_path / "business.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        BusinessRules.load(path)
    assert dotted.split(".")[-1] in str(err.value)


def test_plan_segments_name_tiers_the_segments_define(tmp_path):
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    raw["handoff"]["plan_segments"] = {"value_tier": ["gold"]}
    path = tmp_path / "business.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValidationError, match="plan_segments.value_tier"):
        BusinessRules.load(path)
