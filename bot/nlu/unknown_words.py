"""A Rasa NLU component: a message with no word the bot was trained on gets
the fallback, however confident the classifier is.

DIET's character n-grams let it give gibberish ("xkcd lorem ipsum") a
confident topic. This component learns the words of the training data and, at
run time, sets ``nlu_fallback`` when none of a message's words is among them,
so the patient sees the topic menu and the clinic's number instead of a wrong
answer. It runs before the safety screen, which still catches crisis words
the training data never saw ("sucidal").
"""

from __future__ import annotations

import json
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.ranking import put_intent_first

VOCABULARY_FILE = "vocabulary.json"


def words(message: Message) -> list[str]:
    """The message's tokens that contain a letter, lowercased."""
    return [
        token.text.lower()
        for token in message.get(TOKENS_NAMES[TEXT]) or []
        if any(character.isalpha() for character in token.text)
    ]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class UnknownWordsFallback(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"confidence": 0.0}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: set[str],
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UnknownWordsFallback:
        return cls(config, model_storage, resource, set())

    def train(self, training_data: TrainingData) -> Resource:
        self.vocabulary = {
            word
            for example in training_data.training_examples
            for word in words(example)
        }
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(
                json.dumps(sorted(self.vocabulary))
            )
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> UnknownWordsFallback:
        with model_storage.read_from(resource) as directory:
            vocabulary = set(json.loads((directory / VOCABULARY_FILE).read_text()))
        return cls(config, model_storage, resource, vocabulary)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if not any(word in self.vocabulary for word in words(message)):
                put_intent_first(
                    message, DEFAULT_NLU_FALLBACK_INTENT_NAME, self.config["confidence"]
                )
        return messages
