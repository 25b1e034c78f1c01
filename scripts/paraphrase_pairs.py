"""Samples the paraphrase check's pairs (tests/nlu/paraphrase_pairs.tsv) from public corpora.

    .venv-bot/bin/python -m scripts.paraphrase_pairs CORPORA_DIR

CORPORA_DIR/<source>/positive_pairs.tsv holds question pairs a corpus marks as the same meaning
(training splits only: docs/data-sources.md). Kept: pairs about repaying a loan (a repayment word on
either side, none of the topics the contract cannot express), neither side already in our training
data, product names neutralised as for the training examples; 300 per source, seeded. Both sides of
a kept pair must get the same answer from the assistant (scripts/cross_source_eval.py).
"""
from __future__ import annotations

import random
import re
import sys
from pathlib import Path

from bot.nlu.datasets import load_examples
from bot.nlu.normalize import normalize

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "tests" / "nlu" / "paraphrase_pairs.tsv"
SOURCES = {"bq_webank_train": "bq_webank", "atec_antfin_train": "atec_antfin"}
PER_SOURCE = 300
ABOUT_REPAYING = re.compile(r"还款|还钱|扣款|扣钱|逾期|提前还|结清|利息|手续费|罚息|账单|欠|怎么还|分期|延期|到账|征信")
CANNOT_EXPRESS = re.compile(r"额度|提额|开通|关闭|注销|激活|红包|优惠|积分|收款|申请|审核|再借|还能借|手机号|密码|实名|人脸")
NEUTRAL = [(re.compile(r"蚂蚁花呗|花呗|花唄"), "贷款"), (re.compile(r"蚂蚁借呗|借呗|借唄"), "借款"),
           (re.compile(r"微粒贷|微粒貸|微利贷|微粒代"), "贷款"), (re.compile(r"芝麻信用分|芝麻分"), "信用分")]


def neutral(text: str) -> str:
    for pattern, word in NEUTRAL:
        text = pattern.sub(word, text)
    return text


def main() -> None:
    corpora = Path(sys.argv[1])
    known = {e.text.strip() for e in load_examples()}
    rows = ["text_a\ttext_b\tsource"]
    for folder, source in SOURCES.items():
        candidates = []
        for line in (corpora / folder / "positive_pairs.tsv").read_text(encoding="utf-8").splitlines():
            a, b = (neutral(s.strip()) for s in line.split("\t")[:2])
            if not a or not b or a == b or "\t" in a + b:
                continue
            if not (ABOUT_REPAYING.search(a) or ABOUT_REPAYING.search(b)):
                continue
            if CANNOT_EXPRESS.search(a) or CANNOT_EXPRESS.search(b):
                continue
            if normalize(a).strip() in known or normalize(b).strip() in known:
                continue
            candidates.append((a, b))
        random.Random(13).shuffle(candidates)
        rows += [f"{a}\t{b}\t{source}" for a, b in candidates[:PER_SOURCE]]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"{len(rows) - 1} pairs -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
