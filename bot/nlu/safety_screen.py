"""The safety screen as a Rasa NLU component (registered in config.yml).

It runs after the intent classifier and the FallbackClassifier, on every
message that goes through the NLU pipeline (``bot.safety.screen``: phrases and the
learned classifier, on the normalised text):

- a crisis sets the intent ``crisis`` with confidence 1.0;
- a possible risk or a concern sets ``mental_health_concern`` with confidence
  1.0; the parse data's ``safety`` entry tells the concern action which it is
  (a possible risk gets the direct safety question);
- a ``crisis`` prediction of the intent classifier that the screen did not
  raise becomes a possible risk (the patient is asked directly) when the
  safety classifier's crisis score backs it, and is dropped otherwise;
- every message's verdict (a level or none) goes into the parse data, so the
  actions screen again only messages that skipped NLU.

Rules, not the ML policy, then decide what happens next. The phrase file and
the classifier are read when the model is loaded: editing them needs a
restart, not retraining.
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

from bot.nlu.ranking import put_intent_first
from bot.safety.screen import (
    PHRASES_FILE,
    Level,
    SafetyScreen,
    ScreenResult,
    default_screen,
)

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
            # As the FallbackClassifier's: a demoted crisis prediction never
            # turns into a guessed answer.
            "fallback_threshold": 0.5,
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
        if Path(config["phrases"]) == PHRASES_FILE:
            return cls(config, default_screen())
        return cls(config, SafetyScreen.from_files(Path(config["phrases"])))

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._screen(message)
        return messages

    def _screen(self, message: Message) -> None:
        result = self.screen.screen(message.get(TEXT))
        crisis, concern = self.config["crisis_intent"], self.config["concern_intent"]
        limits = self.screen.classifier.thresholds if self.screen.classifier else None
        if result.level is None and self._top_model_intent(message) == crisis:
            if not result.confirms_intent_model(limits):
                # The intent classifier alone never raises a crisis.
                self._demote(message, crisis)
                message.set(SAFETY_KEY, result.as_dict(), add_to_output=True)
                return
            # The direct question, never the crisis reply: the intent
            # classifier reads hyperbole ("bored to death", "my mom will kill
            # me") as crisis, and on the regression sets it never caught a
            # crisis message that the screen had missed.
            result = ScreenResult(
                Level.POSSIBLE, source="model",
                spanish=result.spanish, scores=result.scores,
            )  # fmt: skip
        # The verdict goes to the actions with every message, so that they
        # screen again only what skipped NLU (``/intent`` payloads).
        message.set(SAFETY_KEY, result.as_dict(), add_to_output=True)
        if result.level is None:
            return
        intent = crisis if result.level is Level.CRISIS else concern
        put_intent_first(message, intent, 1.0)

    def _demote(self, message: Message, intent: str) -> None:
        """Make the best other intent (or the fallback) the message's intent."""
        ranking = [
            entry
            for entry in message.get(INTENT_RANKING_KEY) or []
            if entry.get("name") not in (intent, DEFAULT_NLU_FALLBACK_INTENT_NAME)
        ]
        if ranking and ranking[0]["confidence"] >= self.config["fallback_threshold"]:
            put_intent_first(message, ranking[0]["name"], ranking[0]["confidence"])
        else:
            put_intent_first(message, DEFAULT_NLU_FALLBACK_INTENT_NAME, 1.0)

    @staticmethod
    def _top_model_intent(message: Message) -> str | None:
        for entry in message.get(INTENT_RANKING_KEY) or []:
            if entry.get("name") != DEFAULT_NLU_FALLBACK_INTENT_NAME:
                return entry.get("name")
        return None
