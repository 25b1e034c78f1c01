"""The intent classifier component: trains, persists, loads, ranks, and its confidences are
calibrated probabilities that FallbackClassifier can threshold."""
from __future__ import annotations

import pytest

pytest.importorskip("rasa")

import numpy as np  # noqa: E402

from rasa.engine.graph import ExecutionContext, GraphSchema  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from bot.nlu.linear_intent import LinearIntentClassifier, fit_temperature  # noqa: E402

EXAMPLES = {
    "query_balance": ["我还欠多少钱", "还剩多少没还", "待还金额是多少", "这个月要还多少", "欠款余额多少",
                      "帮我查下还要还多少钱", "我一共还欠多少", "本期应还多少钱"],
    "report_payment_made": ["我已经还了", "钱已经转过去了", "刚刚还完了", "昨天就还上了", "本月已还",
                            "我早就还清这期了", "已经还款了请查收", "上午刚还的"],
    "greet": ["你好", "在吗", "哈喽", "您好", "早上好", "有人吗", "嗨", "晚上好"],
}


def training_data() -> TrainingData:
    return TrainingData([Message(data={"text": text, "intent": intent})
                         for intent, texts in EXAMPLES.items() for text in texts])


@pytest.fixture
def storage(tmp_path):
    return LocalModelStorage(tmp_path)


def make(storage, config=None) -> LinearIntentClassifier:
    context = ExecutionContext(GraphSchema({}), "test")
    return LinearIntentClassifier.create({**LinearIntentClassifier.get_default_config(), **(config or {})},
                                         storage, Resource("intent"), context)


def parse(classifier: LinearIntentClassifier, text: str) -> Message:
    message = Message(data={"text": text})
    classifier.process([message])
    return message


def test_predicts_unseen_phrasings_with_a_full_ranking(storage):
    classifier = make(storage)
    classifier.train(training_data())
    message = parse(classifier, "我还欠你们多少钱啊")
    assert message.get("intent")["name"] == "query_balance"
    ranking = message.get("intent_ranking")
    assert [r["name"] for r in ranking][0] == "query_balance"
    assert sorted(r["name"] for r in ranking) == sorted(EXAMPLES)
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0)
    assert ranking[0]["confidence"] > ranking[1]["confidence"]
    assert parse(classifier, "我昨天已经还过了").get("intent")["name"] == "report_payment_made"


def test_persisted_model_loads_and_answers_the_same(storage):
    classifier = make(storage)
    resource = classifier.train(training_data())
    loaded = LinearIntentClassifier.load(LinearIntentClassifier.get_default_config(), storage, resource,
                                         ExecutionContext(GraphSchema({}), "test"))
    a, b = parse(classifier, "你好呀"), parse(loaded, "你好呀")
    assert a.get("intent")["name"] == b.get("intent")["name"] == "greet"
    assert a.get("intent")["confidence"] == pytest.approx(b.get("intent")["confidence"])


def test_untrained_or_empty_text_sets_no_intent(storage):
    untrained = make(storage)
    assert parse(untrained, "你好").get("intent") is None
    classifier = make(storage)
    classifier.train(training_data())
    assert parse(classifier, "").get("intent") is None


def test_ranking_length_is_configurable(storage):
    classifier = make(storage, {"ranking_length": 2})
    classifier.train(training_data())
    assert len(parse(classifier, "我还欠多少").get("intent_ranking")) == 2


def test_temperature_fits_overconfident_and_underconfident_margins():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, size=600)
    # Margins that point at the right class only 60% of the time: confidences must come down
    # (a high temperature), not stay near 1.0.
    right = rng.random(600) < 0.6
    predicted = np.where(right, gold, (gold + 1) % 3)
    decisions = np.full((600, 3), -1.0)
    decisions[np.arange(600), predicted] = 1.0
    temperature = fit_temperature(decisions, gold)
    top = np.exp(1 / temperature) / (np.exp(1 / temperature) + 2 * np.exp(-1 / temperature))
    assert top == pytest.approx(0.6, abs=0.02)
    # Always-right margins: the temperature goes low, confidences high.
    assert fit_temperature(decisions[right], gold[right]) < 0.2


def test_two_intents_still_give_two_columns(storage):
    classifier = make(storage)
    data = TrainingData([Message(data={"text": t, "intent": i}) for i in ("greet", "query_balance")
                         for t in EXAMPLES[i]])
    classifier.train(data)
    ranking = parse(classifier, "你好").get("intent_ranking")
    assert [r["name"] for r in ranking] == ["greet", "query_balance"]
    assert ranking[0]["confidence"] > 0.5


def test_cue_groups_mark_each_group_the_text_mentions():
    from bot.nlu.linear_intent import CueGroups, load_cues

    cues = load_cues("bot/nlu/intent_cues.yml")
    assert {"non_loan_finance", "errand"} <= set(cues)
    # Other lenders and bills are the product entity's job now, not an intent cue.
    assert not {"other_lender", "non_loan_bill"} & set(cues)
    names = sorted(cues)
    matrix = CueGroups(cues, 2.0).transform(["大额存单利率多少", "我还欠多少"]).toarray()
    assert matrix[0, names.index("non_loan_finance")] == 2.0
    assert not matrix[1].any()


def with_dense(text: str, vector) -> Message:
    from rasa.shared.nlu.training_data.features import Features

    message = Message(data={"text": text})
    message.add_features(Features(np.asarray(vector, dtype=np.float32)[None, :], "sentence", "text", "e5"))
    return message


def test_dense_sentence_features_are_used_beside_the_characters(storage):
    """Texts that share no characters with their class, but whose sentence vectors do: the dense half
    of the features must carry the decision (what the encoder adds for unseen wording)."""
    rng = np.random.default_rng(0)
    centres = {"query_balance": np.eye(8)[0], "greet": np.eye(8)[1]}
    examples = []
    for i in range(12):
        for intent, centre in centres.items():
            message = with_dense(f"{intent[:2]}{i}", centre + rng.normal(0, 0.05, 8))
            message.set("intent", intent)
            examples.append(message)
    classifier = make(storage, {"dense_weight": 3.0})
    classifier.train(TrainingData(examples))
    unseen = with_dense("完全没见过的字", centres["greet"])
    classifier.process([unseen])
    assert unseen.get("intent")["name"] == "greet"
    unseen = with_dense("完全没见过的字", centres["query_balance"])
    classifier.process([unseen])
    assert unseen.get("intent")["name"] == "query_balance"
