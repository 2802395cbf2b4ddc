"""A Rasa NLU component: the facet a patient asks about ("after I stop",
"lips", "men"), found by its phrases wherever it appears.

The facets are a closed list, and each is said in a few set phrases: the
training data's facet annotations and the synonyms (data/nlu/synonyms.yml)
hold them all. The CRF entity extractor learns them from context and misses
the common word in a new sentence ("my skin is flaky and tight": "skin" is
unannotated in most training messages); this component learns the phrases
themselves and adds the facet when the CRF found none. A facet never picks a
wrong answer: it narrows a topic's answer only where the topic has an entry
for that facet (bot/content/answers.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.stored import StoredComponent

ENTITY = "facet"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True
)
class FacetMatcher(StoredComponent, EntityExtractorMixin):
    """The state is the phrases: surface text -> facet."""

    STATE_FILE = "facet_phrases.json"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pattern = self._compile(self.state or {})

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {}

    @staticmethod
    def read_state(path: Path) -> dict[str, str]:
        return json.loads(path.read_text())

    @staticmethod
    def write_state(path: Path, state: dict[str, str]) -> None:
        path.write_text(json.dumps(state, sort_keys=True))

    @staticmethod
    def _compile(phrases: dict[str, str]) -> re.Pattern | None:
        if not phrases:
            return None
        alternatives = sorted(phrases, key=len, reverse=True)  # longest first
        words = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in alternatives)
        return re.compile(rf"(?<!\w)({words})(?!\w)", re.IGNORECASE)

    def train(self, training_data: TrainingData) -> Resource:
        facets: set[str] = set()
        phrases: dict[str, str] = {}
        for example in training_data.entity_examples:
            text = example.get(TEXT) or ""
            for entity in example.get(ENTITIES) or []:
                if entity.get("entity") != ENTITY:
                    continue
                value = str(entity["value"])
                facets.add(value)
                phrases[text[entity["start"] : entity["end"]].lower()] = value
        for surface, value in training_data.entity_synonyms.items():
            if value in facets:
                phrases[surface.lower()] = value
        self._pattern = self._compile(phrases)
        return self.persist(phrases)

    def process(self, messages: list[Message]) -> list[Message]:
        if self._pattern is None:
            return messages
        for message in messages:
            entities = message.get(ENTITIES) or []
            if any(e.get("entity") == ENTITY for e in entities):
                continue  # the CRF found it (in context): keep that one
            found = self._pattern.search(message.get(TEXT) or "")
            if not found:
                continue
            surface = re.sub(r"\s+", " ", found.group(1).lower())
            entity = {
                "entity": ENTITY,
                "value": self.state[surface],
                "start": found.start(1),
                "end": found.end(1),
                "extractor": self.__class__.__name__,
                "confidence_entity": 1.0,
            }
            message.set(ENTITIES, [*entities, entity], add_to_output=True)
        return messages
