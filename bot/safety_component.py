"""The safety screen as a Rasa NLU component (registered in config.yml).

It runs after the intent classifier and the FallbackClassifier, on every
message that goes through the NLU pipeline:

- a crisis phrase sets the intent ``crisis`` with confidence 1.0;
- a concern phrase sets ``mental_health_concern`` with confidence 1.0;
- a ``crisis`` prediction of the classifier that no crisis phrase confirms
  becomes ``mental_health_concern``: a person follows up, without the urgent
  crisis path, and the classifier alone never raises a crisis.

Rules, not the ML policy, then decide what happens next. The phrase file is
read when the model is loaded: editing it needs a restart, not retraining.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu_intent import put_intent_first
from bot.safety import PHRASES_FILE, Level, SafetyScreen

SAFETY_KEY = "safety"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class SafetyScreenClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "phrases": str(PHRASES_FILE),
            "crisis_intent": "crisis",
            "concern_intent": "mental_health_concern",
        }

    def __init__(self, config: dict[str, Any], screen: SafetyScreen) -> None:
        self.config = config
        self.screen = screen

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyScreenClassifier:
        config = {**cls.get_default_config(), **config}
        return cls(config, SafetyScreen.from_files(Path(config["phrases"])))

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._screen(message)
        return messages

    def _screen(self, message: Message) -> None:
        result = self.screen.screen(message.get(TEXT))
        crisis, concern = self.config["crisis_intent"], self.config["concern_intent"]
        if result.level is Level.CRISIS:
            intent, source = crisis, "phrases"
        elif result.level is Level.CONCERN:
            intent, source = concern, "phrases"
        elif self._top_model_intent(message) == crisis:
            intent, source = concern, "model"
        else:
            return
        put_intent_first(message, intent, 1.0)
        message.set(
            SAFETY_KEY,
            {"level": intent, "source": source, "phrases": list(result.phrases)},
            add_to_output=True,
        )

    @staticmethod
    def _top_model_intent(message: Message) -> str | None:
        for entry in message.get(INTENT_RANKING_KEY) or []:
            if entry.get("name") != DEFAULT_NLU_FALLBACK_INTENT_NAME:
                return entry.get("name")
        return None
