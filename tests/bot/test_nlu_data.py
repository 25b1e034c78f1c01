"""The NLU training data stays well-formed as it grows: at least 40 distinct examples per intent,
no example under two intents, every entity annotation on jieba token boundaries
(scripts/check_nlu.py), and every intent of the contract present."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONTRACT = {
    "greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "request_human", "query_balance",
    "query_repayment_schedule", "query_loan_status", "query_payment_history", "ask_repayment_method",
    "ask_interest_fees", "request_early_repayment", "report_payment_made", "promise_to_pay",
    "request_repayment_plan", "ask_overdue_consequences", "complaint", "query_complaint_status",
    "unsubscribe", "resubscribe", "wrong_person", "busy_later", "provide_identity", "out_of_scope",
}


def test_check_nlu_finds_no_problem():
    proc = subprocess.run([sys.executable, "-m", "scripts.check_nlu", "--min", "40"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    problems = [line for line in proc.stdout.splitlines() if line.startswith("PROBLEM")]
    assert proc.returncode == 0 and not problems, "\n".join(problems[:40]) or proc.stderr[-2000:]
    listed = {line.split()[0] for line in proc.stdout.splitlines()
              if line and not line.startswith(("entities:", "PROBLEM"))}
    assert listed == CONTRACT


def test_entity_annotations_carry_simplified_values():
    """An annotation on traditional text ([隱私](complaint_category)) would teach EntitySynonymMapper
    to turn the extractor's 「隐私」 into 「隱私」, which no form accepts: values must be simplified."""
    import json
    import re

    from bot.nlu.normalize import normalize

    pattern = re.compile(r"\[([^\]]+)\](?:\((\w+)\)|\{([^}]+)\})")
    bad = []
    for path in (ROOT / "data").rglob("*.yml"):
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            value = json.loads("{" + m.group(3) + "}").get("value", m.group(1)) if m.group(3) else m.group(1)
            if isinstance(value, str) and normalize(value) != value:
                bad.append(f"{path.name}: {m.group(0)}")
    assert not bad, bad
