"""The facet matcher (bot/nlu/facet_matcher.py): facets by their phrases,
learned from the annotated training data and the synonyms."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from bot import settings
from bot.nlu.facet_matcher import FacetMatcher


@pytest.fixture(scope="module")
def matcher(tmp_path_factory) -> FacetMatcher:
    storage = LocalModelStorage(Path(tmp_path_factory.mktemp("model")))
    component = FacetMatcher({}, storage, Resource("facet_matcher"))
    component.train(load_data(str(settings.DATA_DIR / "nlu")))
    return FacetMatcher.load({}, storage, Resource("facet_matcher"), None)


def facets(matcher: FacetMatcher, text: str, entities=()) -> list[tuple[str, str]]:
    message = Message(data={"text": text, "entities": list(entities)})
    matcher.process([message])
    return [(e["value"], e["extractor"]) for e in message.get("entities")]


@pytest.mark.parametrize(
    ("text", "facet"),
    [
        ("my skin is flaky and tight", "skin"),
        ("how long after accutane can I wax?", "after_treatment"),
        ("what about AFTER MY LAST DOSE", "after_treatment"),
        ("do dudes need this", "men"),
        ("and my nostrils?", "nose"),
    ],
)
def test_a_facet_is_found_by_its_phrase_anywhere(matcher, text, facet):
    assert facets(matcher, text) == [(facet, "FacetMatcher")]


def test_a_phrase_inside_another_word_is_not_a_facet(matcher):
    assert facets(matcher, "my eyeliner smudges") == []
    assert facets(matcher, "can i take it with manuka honey") == []


def test_the_crfs_facet_is_kept(matcher):
    crf = {"entity": "facet", "value": "lips", "extractor": "CRFEntityExtractor"}
    assert facets(matcher, "my lips and my skin", [crf]) == [
        ("lips", "CRFEntityExtractor")
    ]
