"""One definition of every enum (backend/models/enums.py), its Chinese labels (texts/zh/labels.yml) and
the bot's copy of the values (config/contract.json):

* every value of every enum staff or borrowers see has a Chinese label, not the raw value;
* the committed contract file is exactly what ``python -m backend.cli contract`` writes, and the
  bot's reader (bot/contract.py) sees the same values;
* the console pages embed the label table and the scripts show labels, not raw values: the JSON of
  a case, a plan request and a complaint carries the labels the pages show.
"""
from __future__ import annotations

import html
import json
import re
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import texts
from backend.cli import CONTRACT_FILE, contract_text
from backend.core.clock import SHANGHAI
from backend.models.enums import CONTRACT, LABELLED, PHONE_PATTERN, label_table, values
from backend.services import staff
from bot import contract as bot_contract
from testkit import HEADERS

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u4e00-\u9fff]")
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)
PASSWORD = "labels-test-pass-1"


@pytest.mark.parametrize("name", sorted(LABELLED))
def test_every_enum_value_has_a_chinese_label(name):
    for value in values(LABELLED[name]):
        assert texts.has(f"labels.{name}.{value}"), f"texts/zh/labels.yml: no label for {name}.{value}"
        label = texts.label(name, value)
        assert label != value and CJK.search(label), f"{name}.{value}: {label!r} is not a Chinese label"


def test_the_catalogue_has_no_label_of_an_unknown_value():
    for name, table in label_table().items():
        if name in LABELLED:
            assert set(table) == set(values(LABELLED[name])), name


def test_committed_contract_is_what_the_command_writes():
    assert CONTRACT_FILE.read_text(encoding="utf-8") == contract_text(), \
        "config/contract.json is out of date: run python -m backend.cli contract"


def test_bot_reads_the_backend_values():
    bot_contract.contract.cache_clear()
    for name in CONTRACT:
        assert bot_contract.values(name) == values(LABELLED[name])
    assert bot_contract.contract()["phone_pattern"] == PHONE_PATTERN
    assert bot_contract.is_mobile("13812345678") and bot_contract.is_mobile("+8613812345678")
    assert not bot_contract.is_mobile("12812345678")


def test_console_scripts_hold_no_label_tables_of_their_own():
    for script in ("console.js", "dashboard.js", "nlu_inbox.js"):
        source = (ROOT / "backend" / "static" / script).read_text(encoding="utf-8")
        for raw in ("request_human:", "wechat: \"微信\"", "claimed: \"处理中\"", "restructured:", "days_past_due_above:"):
            assert raw not in source, f"{script} spells out {raw!r}: use LABELS (texts/zh/labels.yml)"
        assert "LABELS" in source or "labels" in source


@pytest.fixture(scope="module")
def agent(app):
    username = f"labels{uuid.uuid4().hex[:6]}"
    with app.state.sessionmaker() as db:
        staff.create_user(db, username, "客服小周", "supervisor", PASSWORD, T0, "test")
        db.commit()
    c = TestClient(app, follow_redirects=False)
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/login").text).group(1)
    r = c.post("/console/login", data={"username": username, "password": PASSWORD, "csrf": csrf})
    assert r.status_code == 303, r.text
    return c


def test_console_page_embeds_chinese_labels_not_raw_values(app, agent):
    page = agent.get("/console")
    assert page.status_code == 200
    embedded = json.loads(html.unescape(re.search(r"data-labels='([^']*)'", page.text).group(1)))
    assert embedded == label_table()
    assert embedded["handoff_reason"]["request_human"] == "客户要求转人工"
    assert embedded["risk_tier"]["medium"] == "中风险" and embedded["value_tier"]["standard"] == "标准客户"
    assert "（主管）" in page.text  # the signed-in role, as a label


def test_case_json_carries_what_the_page_labels(app, agent):
    body = {"conversation": f"wechat:o{uuid.uuid4().hex[:20]}", "channel": "wechat", "reason": "request_human",
            "summary": "客户要求转人工"}
    created = agent.post("/api/v1/handoffs", headers=HEADERS, json=body)
    assert created.status_code == 201, created.text
    queue = agent.get("/console/api/queue").json()
    row = next(c for c in queue["cases"] if c["reference"] == created.json()["reference"])
    labels = label_table()
    # The raw values the page looks up all have labels.
    assert labels["handoff_reason"][row["reason"]] and labels["handoff_status"][row["status"]]
    assert labels["channel"][row["channel"]] == "微信"


def test_configured_segment_tiers_are_enum_values():
    from backend.core.config import get_settings, load_rules
    from backend.models.enums import RiskTier, ValueTier

    rules = load_rules(get_settings().business_rules_path)
    assert {r.tier for r in rules.risk_tier_rules} <= set(values(RiskTier))
    assert {r.tier for r in rules.value_tier_rules} <= set(values(ValueTier))
