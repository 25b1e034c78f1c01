"""The file the understanding inbox's export writes (backend.services.nlu_export.render) read back by
Rasa's own NLU reader: every example exactly as written, under its intent, no entity made up, for
texts full of YAML syntax. (The export itself is tested in tests/backend/test_nlu_inbox.py.)"""
from __future__ import annotations

import pytest

pytest.importorskip("rasa")

from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader  # noqa: E402

from backend.services import nlu_export  # noqa: E402

TEXTS = {
    "ask_interest_fees": sorted(['"利息" 到底: 多少 # 问一下', "- 利息怎么算", "key: value", "'单引号' 和 \\n 反斜杠"]),
    "out_of_scope": sorted(["---", "...", "|", "> 引用", "&a *b !tag %YAML @x `y`", "{a: 1}", "[1, 2]", "[x] y",
                            "null", "~", "😀 表情", "繁體字還款", "ｆｕｌｌ", "阿巴阿巴 **** 8", "138****5678 验证码****"]),
}


def test_rasa_reads_the_generated_file_exactly():
    content = nlu_export.render(TEXTS)
    data = RasaYAMLReader().reads(content)
    read: dict[str, list[str]] = {}
    for message in data.intent_examples:
        assert not message.get("entities"), message.get("text")
        read.setdefault(message.get("intent"), []).append(message.get("text"))
    assert read == TEXTS
    assert nlu_export.read_examples(content) == TEXTS  # the backend's reader agrees with Rasa's


def test_an_empty_export_is_valid_training_data():
    data = RasaYAMLReader().reads(nlu_export.render({}))
    assert data.intent_examples == []


def test_an_annotation_is_read_as_rasa_reads_it():
    content = 'version: "3.1"\nnlu:\n  - intent: query_balance\n    examples: |\n      - 我还欠[多少](amount)钱\n'
    [message] = RasaYAMLReader().reads(content).intent_examples
    assert nlu_export.read_examples(content) == {"query_balance": [message.get("text")]} == {"query_balance": ["我还欠多少钱"]}
