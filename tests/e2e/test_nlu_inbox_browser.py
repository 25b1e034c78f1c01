"""The understanding inbox (理解收件箱) end to end, in real headless Chromium against the real stack:

1. a borrower message the running model does not understand (checked first through Rasa's
   /model/parse: a fallback, or else a top intent under nlu_review.review_below) is sent through the
   REST channel; the Rasa event broker (bot/review_broker.py) reports it and it shows up in the
   inbox, masked, within seconds;
2. supervisor1 corrects it with one click in the browser: the row's status changes on the page, the
   database row has the final intent and the reviewer, the audit log has the decision;
3. agent1 sees the inbox with every review button disabled;
4. agent1 flags a confidently understood message of a case's transcript (「标记理解有误」): the backend
   re-reads it from Rasa by its event timestamp and records a staff_flag item;
5. the export command writes exactly the corrected example.

Screenshots: reports/nlu-inbox.png (the supervisor's inbox), reports/nlu-flag.png (the flagged transcript).
"""
from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from console_client import ConsoleUser  # noqa: E402
from test_console_browser import console_sign_in  # noqa: E402

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
REVIEW_BELOW = yaml.safe_load((ROOT / "config" / "business.yml").read_text(encoding="utf-8"))["nlu_review"]["review_below"]
WAIT = 10_000  # ms
# Messages no intent fits, each with a number that must never be stored as typed; what the inbox
# must show. The first one the running model falls back on is used (the model changes with the data).
CANDIDATES = [
    ("阿巴阿巴 1381234567 8 投诉 还款", "阿巴阿巴 **** 8 投诉 还款"),
    ("火星上的猫 1381234567 8 会不会游泳", "火星上的猫 **** 8 会不会游泳"),
    ("阿巴阿巴 1381234567 8 还了 没还", "阿巴阿巴 **** 8 还了 没还"),
    ("今天天气 1381234567 8 还款吗", "今天天气 **** 8 还款吗"),
    ("咕噜咕噜 1381234567 8 嘿嘿", "咕噜咕噜 **** 8 嘿嘿"),
]
CONFIDENT = "我还欠多少钱"  # the model is sure of it: only a staff flag brings it to the inbox


def parse(stack, text: str) -> dict:
    r = httpx.post(f"{stack.rasa_url}/model/parse", params={"token": stack.env["RASA_API_TOKEN"]},
                   json={"text": text}, timeout=30)
    r.raise_for_status()
    return r.json()


def misunderstood(stack) -> tuple[str, str, str, dict]:
    """(text, masked, source, parse data) of the first candidate the model falls back on, else of the
    first one it scores under the review line."""
    parsed = [(text, masked, parse(stack, text)) for text, masked in CANDIDATES]
    for text, masked, p in parsed:
        if p["intent"]["name"] == "nlu_fallback":
            return text, masked, "fallback", p
    for text, masked, p in parsed:
        if p["intent"]["confidence"] < REVIEW_BELOW:
            return text, masked, "low_confidence", p
    pytest.fail(f"the model is sure of every candidate: {[(t, p['intent']) for t, _, p in parsed]}")


def wait_for_item(user: ConsoleUser, masked: str, within: float = 10.0, **query) -> dict:
    started = time.monotonic()
    params = "&".join(f"{k}={v}" for k, v in query.items())
    while True:
        items = [i for i in user.get(f"/nlu-inbox?{params}")["items"] if i["text_masked"] == masked]
        if items:
            return items[0]
        assert time.monotonic() - started < within, f"{masked!r} not in the inbox after {within}s"
        time.sleep(0.2)


def test_live_misunderstanding_to_reviewed_training_example(stack, browser, tmp_path):
    text, masked, source, parsed = misunderstood(stack)
    ranking = [r for r in parsed["intent_ranking"] if r["name"] != "nlu_fallback"][:3]
    predicted = ranking[0]["name"]
    sender = f"web:anon-nlu{uuid.uuid4().hex[:10]}"

    # ----- 1. live traffic: the borrower writes, the bot answers, the broker reports
    assert stack.say(sender, text)  # the bot still answers (asks to rephrase)
    supervisor = ConsoleUser(stack.backend_url, "supervisor1", stack.env["CONSOLE_DEMO_PASSWORD"])
    item = wait_for_item(supervisor, masked)
    assert (item["source"], item["channel"], item["conversation_masked"], item["status"], item["occurrences"]) == (
        source, "web", sender, "open", 1)
    assert (item["predicted_intent"], item["confidence"]) == (predicted, round(ranking[0]["confidence"], 4))
    assert [(r["intent"], r["confidence"]) for r in item["ranking"]] == [
        (r["name"], round(r["confidence"], 4)) for r in ranking]
    with stack.db() as conn:
        stored = conn.execute("SELECT text_masked, status, final_intent FROM nlu_review_items WHERE id = ?",
                              (item["id"],)).fetchone()
        everything = repr(conn.execute("SELECT * FROM nlu_review_items").fetchall())
    assert stored == (masked, "open", None)
    assert "1381234567" not in everything  # the number as typed is stored nowhere

    # ----- 2. supervisor1 corrects it with one click
    target = ranking[1]["name"] if len(ranking) > 1 else ("out_of_scope" if predicted != "out_of_scope" else "greet")
    labels = {i["name"]: i["label"] for i in supervisor.get("/nlu-inbox")["intents"]}
    desk = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
    console_sign_in(desk, stack, "supervisor1")
    desk.click("text=理解收件箱")
    desk.wait_for_url(f"{stack.backend_url}/console/nlu-inbox")
    row = desk.locator(f"#inbox-rows tr[data-item='{item['id']}']")
    row.wait_for(timeout=WAIT)
    assert row.locator("td.said .text").inner_text() == masked
    assert row.locator("button.confirm").inner_text() == f"确认：{labels[predicted]}"
    assert row.locator("button.confirm").is_enabled()
    assert "1381234567" not in desk.content()
    before_audit = stack.db().execute("SELECT COALESCE(MAX(id), 0) FROM audit_log").fetchone()[0]
    if len(ranking) > 1:
        row.locator(f"button.correct[data-intent='{target}']").click()  # 「改为：…」, one click
    else:
        row.locator("select.intent-select").select_option(target)
        row.locator("button.correct-select").click()
    desk.wait_for_selector(f"#inbox-rows tr[data-item='{item['id']}'][data-status='corrected']", timeout=WAIT)
    assert row.locator("td.status").inner_text() == f"已更正：{labels[target]} · supervisor1"
    assert "chosen" in row.locator(f"[data-intent='{target}']").first.get_attribute("class") or len(ranking) == 1
    desk.screenshot(path=str(REPORTS / "nlu-inbox.png"), full_page=True)
    with stack.db() as conn:
        assert conn.execute("SELECT status, final_intent, reviewed_by FROM nlu_review_items WHERE id = ?",
                            (item["id"],)).fetchone() == ("corrected", target, "supervisor1")
        audits = conn.execute("SELECT actor, action, entity_type, entity_id, detail FROM audit_log WHERE id > ?",
                              (before_audit,)).fetchall()
    assert [(a, b, c, d) for a, b, c, d, _ in audits] == [
        ("supervisor1", "nlu_review.corrected", "nlu_review_item", str(item["id"]))]
    assert json.loads(audits[0][4]) == {"final_intent": target, "predicted_intent": predicted,
                                            "previous_status": "open"}

    # ----- 3. agent1 reads the inbox; every review button is disabled
    agent_page = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
    console_sign_in(agent_page, stack, "agent1")
    agent_page.goto(f"{stack.backend_url}/console/nlu-inbox")
    agent_page.select_option("#f-nstatus", "all")
    agent_row = agent_page.locator(f"#inbox-rows tr[data-item='{item['id']}']")
    agent_row.wait_for(timeout=WAIT)
    assert agent_page.locator("#inbox-readonly").is_visible()
    controls = agent_row.locator("td.review button, td.review select")
    assert controls.count() >= 4
    assert all(controls.nth(i).is_disabled() for i in range(controls.count()))

    # ----- 4. agent1 flags a message the bot was sure of, from the case's transcript
    assert parse(stack, CONFIDENT)["intent"]["confidence"] >= REVIEW_BELOW
    stack.say(sender, CONFIDENT)
    case = stack.backend_post("/handoffs", json={"conversation": sender, "channel": "web", "reason": "request_human",
                                                 "summary": "理解收件箱测试"}).json()
    agent_page.goto(f"{stack.backend_url}/console/cases/{case['id']}")
    turn = agent_page.locator("#transcript li.borrower", has_text=CONFIDENT).last
    turn.wait_for(timeout=WAIT)
    flag = turn.locator("button.flag")
    assert flag.inner_text() == "标记理解有误"
    flag.click()
    agent_page.wait_for_function(
        "([text]) => [...document.querySelectorAll('#transcript li.borrower')].some("
        "li => li.textContent.includes(text) && li.querySelector('button.flag').textContent === '已标记')",
        arg=[CONFIDENT], timeout=WAIT)
    agent_page.screenshot(path=str(REPORTS / "nlu-flag.png"), full_page=True)
    flagged = wait_for_item(supervisor, CONFIDENT, within=2.0, source="staff_flag")
    assert (flagged["source"], flagged["predicted_intent"], flagged["status"]) == ("staff_flag", "query_balance", "open")
    with stack.db() as conn:
        assert conn.execute("SELECT actor, action FROM audit_log WHERE entity_type = 'nlu_review_item' AND entity_id = ? "
                            "ORDER BY id", (str(flagged["id"]),)).fetchall() == [
            ("agent1", "nlu_review.recorded"), ("agent1", "nlu_review.flagged")]
    agent = ConsoleUser(stack.backend_url, "agent1", stack.env["CONSOLE_DEMO_PASSWORD"])  # staff close it, signed in
    agent.post(f"/cases/{case['id']}/claim")
    assert agent.post(f"/cases/{case['id']}/hand-back")["status"] == "closed"

    # ----- 5. the export writes exactly the corrected example
    out = tmp_path / "reviewed.yml"
    proc = subprocess.run([str(ROOT / ".venv-app" / "bin" / "python"), "-m", "backend.cli", "--database-url",
                           stack.env["DATABASE_URL"], "export-nlu-review", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == (
        "# GENERATED by `python -m backend.cli export-nlu-review` from the staff console's understanding inbox\n"
        "# (理解收件箱): borrower messages a supervisor confirmed or corrected. Do NOT edit by hand: the\n"
        "# file is regenerated whole on every export. Change a decision in the console and export again;\n"
        "# to settle a conflict with the hand-written data, edit the hand-written file.\n"
        'version: "3.1"\n'
        "nlu:\n"
        f"  - intent: {target}\n"
        "    examples: |\n"
        f"      - {masked}\n")
    assert proc.stdout.splitlines()[0] == (f"nlu review: 1 examples of 1 intents written to {out} (1 new); "
                                           "0 already in the training data, 0 conflicts, 0 skipped")
    with stack.db() as conn:
        assert conn.execute("SELECT exported_at IS NOT NULL FROM nlu_review_items WHERE id = ?",
                            (item["id"],)).fetchone() == (1,)
        assert conn.execute("SELECT actor FROM audit_log WHERE action = 'nlu_review.exported'").fetchall() == [("cli",)]
