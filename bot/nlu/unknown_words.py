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
from pathlib import Path
from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.ranking import put_intent_first
from bot.nlu.stored import StoredComponent


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
class UnknownWordsFallback(StoredComponent, IntentClassifier):
    """The state is the training data's vocabulary."""

    STATE_FILE = "vocabulary.json"

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"confidence": 0.0}

    @staticmethod
    def read_state(path: Path) -> set[str]:
        return set(json.loads(path.read_text()))

    @staticmethod
    def write_state(path: Path, state: set[str]) -> None:
        path.write_text(json.dumps(sorted(state)))

    def train(self, training_data: TrainingData) -> Resource:
        return self.persist(
            {
                word
                for example in training_data.training_examples
                for word in words(example)
            }
        )

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if not any(word in (self.state or ()) for word in words(message)):
                put_intent_first(
                    message, DEFAULT_NLU_FALLBACK_INTENT_NAME, self.config["confidence"]
                )
        return messages
