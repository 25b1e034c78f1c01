"""Rasa graph components: a normalising jieba tokenizer, the loan entity extractor and the distress
override."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import clock
from bot.nlu.entities import extract
from bot.nlu.normalize import normalize

TOKENS = "text_tokens"


def _normalize_message(message: Message) -> None:
    text = message.get(TEXT)
    if isinstance(text, str) and text:
        message.set(TEXT, normalize(text))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=True)
class NormalizingJiebaTokenizer(JiebaTokenizer):
    """JiebaTokenizer that first normalises the text (OpenCC t2s, full-width -> half-width) and
    drops the whitespace tokens jieba emits (RasaHQ/rasa#7910). Normalisation keeps the length,
    so annotated entity offsets stay valid."""

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            _normalize_message(example)
        return super().process_training_data(training_data)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            _normalize_message(message)
        return super().process(messages)

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        return [t for t in super().tokenize(message, attribute) if t.text.strip()]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LoanEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Runs bot.nlu.entities.extract on each message and snaps spans to token boundaries."""

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "LoanEntityExtractor":
        return cls(config)

    def __init__(self, config: Optional[Dict[Text, Any]] = None) -> None:
        self.component_config = config or {}

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text:
                continue
            tokens = message.get(TOKENS) or []
            found = []
            for ent in extract(text, clock.now()):
                start, end = ent.start, ent.end
                for t in tokens:
                    if t.start <= start < t.end:
                        start = t.start
                    if t.start < end <= t.end:
                        end = t.end
                found.append({"entity": ent.entity, "start": start, "end": end, "value": ent.value,
                              "confidence_entity": 1.0, **({"role": ent.role} if ent.role else {})})
            found = self.add_extractor_name(found)
            message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data


DISTRESS_INTENT = "request_human"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class DistressOverride(GraphComponent):
    """Distress or self-harm words (lexicon/distress.yml, found by LoanEntityExtractor) route the
    message to a person whatever the classifier thought: a safety rule, not a statistical guess.
    It runs after the FallbackClassifier so a low-confidence message is routed too; the
    ``distress`` entity stays on the message so the handoff action can give the hotline."""

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "DistressOverride":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if not any(e.get("entity") == "distress" for e in message.get(ENTITIES) or []):
                continue
            top = {"name": DISTRESS_INTENT, "confidence": 1.0}
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != DISTRESS_INTENT]
            message.set(INTENT, top, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [top] + ranking, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
