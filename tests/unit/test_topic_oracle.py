"""The topic oracle (tests/data/topic_oracle.yml): each intent's answer holds
the fact written next to it by hand, on the web and by SMS.

The oracle is literal, so it is independent of the topic map and of the
knowledge base it checks. The last two tests prove it has teeth: swapping the
texts of any two entries, or the intents of any two topics, breaks it.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import yaml

from bot import settings
from bot.content import answers as answers_module
from bot.content.answers import Answers
from bot.content.entries import Entry, read_knowledge
from bot.content.topics import TopicMap, topic_map

ORACLE = yaml.safe_load(
    (settings.PROJECT_ROOT / "tests" / "data" / "topic_oracle.yml").read_text()
)["questions"]
CHANNELS = ("rest", "sms")
ENTRIES = read_knowledge()


class EntriesInMemory:
    """The knowledge base's lookup over a given list of entries."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = {(e.topic, e.facet): e for e in entries}

    def find(self, topic: str, facet: str | None = None) -> Entry | None:
        return self.entries.get((topic, facet))


def holds(text: str, fact: str) -> bool:
    """``fact`` (alternatives split by "|") is in ``text``, ignoring case."""
    return any(part.lower() in text.lower() for part in fact.split("|"))


def oracle_failures(answers: Answers) -> list[str]:
    failures = []
    for row in ORACLE:
        for channel in CHANNELS:
            reply = answers.for_intent(row["intent"], row.get("facet"), channel)
            if reply is None or not holds(reply.text, row["fact"]):
                failures.append(f"{row['question']!r} ({channel}): {row['fact']!r}")
    return failures


def test_every_question_of_the_oracle_gets_its_fact():
    answers = Answers(EntriesInMemory(ENTRIES))
    assert oracle_failures(answers) == []


def test_the_oracle_asks_about_every_topic_and_every_facet_a_patient_can_reach():
    asked = {(row["intent"], row.get("facet")) for row in ORACLE}
    topics = topic_map()
    reachable = {
        (topics.topic(entry.topic).intent, entry.facet)
        for entry in ENTRIES
        if topics.topic(entry.topic).intent is not None
    }
    # The crisis reply is checked by the safety tests (a crisis message is
    # not a topic question); a swap with any other entry is still caught here.
    reachable -= {("crisis", None)}
    assert reachable - asked == set()


def swapped_texts(entries: list[Entry], a: int, b: int) -> list[Entry]:
    changed = list(entries)
    changed[a] = dataclasses.replace(
        entries[a], answer=entries[b].answer, sms=entries[b].sms
    )
    changed[b] = dataclasses.replace(
        entries[b], answer=entries[a].answer, sms=entries[a].sms
    )
    return changed


@pytest.fixture
def clinic_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of answers below: the clinic's file is read once, not each time."""
    clinic = answers_module.load_clinic()
    monkeypatch.setattr(answers_module, "load_clinic", lambda: clinic)


@pytest.mark.usefixtures("clinic_read_once")
def test_swapping_the_texts_of_any_two_entries_breaks_the_oracle():
    entries = ENTRIES
    topics = topic_map()
    unchanged = Answers(EntriesInMemory(entries), topics)
    asked = {
        unchanged.for_intent(row["intent"], row.get("facet"), "rest").entry_id
        for row in ORACLE
    }
    # Every swap that touches an entry the oracle asks for (all but the
    # crisis reply's, which the safety tests check word for word).
    pairs = [
        (a, b)
        for a, b in itertools.combinations(range(len(entries)), 2)
        if {entries[a].id, entries[b].id} & asked
    ]
    assert len(pairs) > 1000
    unnoticed = [
        (entries[a].id, entries[b].id)
        for a, b in pairs
        if not oracle_failures(
            Answers(EntriesInMemory(swapped_texts(entries, a, b)), topics)
        )
    ]
    assert unnoticed == []


@pytest.mark.usefixtures("clinic_read_once")
def test_swapping_the_intents_of_any_two_topics_breaks_the_oracle():
    topics = topic_map()
    knowledge = EntriesInMemory(read_knowledge())
    with_intent = [i for i, t in enumerate(topics.topics) if t.intent]
    unnoticed = []
    for a, b in itertools.combinations(with_intent, 2):
        changed = list(topics.topics)
        changed[a] = dataclasses.replace(
            topics.topics[a], intent=topics.topics[b].intent
        )
        changed[b] = dataclasses.replace(
            topics.topics[b], intent=topics.topics[a].intent
        )
        swapped = TopicMap(topics=tuple(changed), facets=topics.facets)
        if not oracle_failures(Answers(knowledge, swapped)):
            unnoticed.append((topics.topics[a].id, topics.topics[b].id))
    assert unnoticed == []


@pytest.mark.parametrize("row", ORACLE, ids=[row["question"] for row in ORACLE])
def test_each_fact_is_in_one_entry_of_its_topic_only(row):
    """A fact that several entries hold could not tell them apart."""
    entries = ENTRIES
    holding = [
        e.id
        for e in entries
        if holds(e.answer, row["fact"]) and holds(e.sms, row["fact"])
    ]
    assert len(holding) == 1, holding
