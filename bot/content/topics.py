"""The topic map: which intent asks for which topic, and the facets of topics.

It is data (``data/knowledge/topics.yml``), read once per process: adding a
topic means new training data, so a restart comes with it anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from bot import settings

TOPICS_FILE = "topics.yml"


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    intent: str | None = None
    trigger: str | None = None
    menu: bool = False
    buttons: bool = False
    follow_ups: bool = True
    language: str = "en"
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facet:
    id: str
    default_topic: str | None = None


@dataclass(frozen=True)
class TopicMap:
    topics: tuple[Topic, ...]
    facets: tuple[Facet, ...]

    def topic(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def for_intent(self, intent: str | None) -> Topic | None:
        return next((t for t in self.topics if intent and t.intent == intent), None)

    def for_trigger(self, trigger: str, language: str = "en") -> Topic:
        """The topic a trigger reaches, in ``language`` where there is one."""
        matching = [t for t in self.topics if t.trigger == trigger]
        found = next((t for t in matching if t.language == language), None)
        found = found or next((t for t in matching if t.language == "en"), None)
        if found is None:
            raise KeyError(f"{TOPICS_FILE} has no topic with trigger {trigger!r}")
        return found

    def facet(self, facet_id: str | None) -> Facet | None:
        return next((f for f in self.facets if facet_id and f.id == facet_id), None)

    def menu(self) -> list[Topic]:
        return [t for t in self.topics if t.menu and t.intent]

    @property
    def topic_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.topics)

    @property
    def facet_ids(self) -> frozenset[str]:
        return frozenset(f.id for f in self.facets)


def read_topic_map(directory: Path) -> TopicMap:
    """Parse ``topics.yml`` in ``directory``."""
    raw = yaml.safe_load((directory / TOPICS_FILE).read_text(encoding="utf-8"))
    topics = tuple(
        Topic(**{**item, "choices": tuple(item.get("choices") or ())})
        for item in raw["topics"]
    )
    facets = tuple(Facet(**item) for item in raw.get("facets", []))
    return TopicMap(topics=topics, facets=facets)


@lru_cache(maxsize=1)
def topic_map() -> TopicMap:
    """The project's topic map."""
    return read_topic_map(settings.KNOWLEDGE_DIR)
