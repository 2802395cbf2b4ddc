"""Loading, validating and looking up the curated knowledge base."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.content.__main__ import main
from bot.content.entries import SMS_MAX_CHARS, KnowledgeBaseError, read_knowledge
from bot.content.store import (
    KnowledgeBase,
    KnowledgeBaseUnavailable,
    KnowledgeEntryRow,
    load_knowledge,
)
from bot.db import engine_for


def stored_rows(engine) -> dict[str, tuple]:
    with Session(engine, future=True) as session:
        rows = session.scalars(select(KnowledgeEntryRow))
        return {r.id: (r.topic, r.facet, r.answer, r.sms, r.reviewed_on) for r in rows}


def test_every_reviewed_file_loads_and_every_topic_has_a_main_entry(loaded_engine):
    entries = KnowledgeBase(loaded_engine).entries()
    assert len(entries) == len(read_knowledge())
    topics_with_main = {e.topic for e in entries if e.facet is None}
    from bot.content.topics import topic_map

    assert topics_with_main == set(topic_map().topic_ids)


def test_loading_twice_changes_nothing(engine):
    first = load_knowledge(engine)
    before = stored_rows(engine)
    second = load_knowledge(engine)
    assert first.added and not first.updated and not first.removed
    assert (second.added, second.updated, second.removed) == ([], [], [])
    assert second.unchanged == len(first.added)
    assert stored_rows(engine) == before


def test_an_edited_answer_is_updated_and_a_deleted_entry_removed(
    engine, knowledge_files
):
    load_knowledge(engine, knowledge_files.directory)
    knowledge_files.edit("sun_protection", answer="Wear sunscreen, SPF 30 or more.")
    knowledge_files.remove("dryness_lips")
    report = load_knowledge(engine, knowledge_files.directory)
    assert report.updated == ["sun_protection"]
    assert report.removed == ["dryness_lips"]
    kb = KnowledgeBase(engine)
    assert kb.find("sun_protection").answer == "Wear sunscreen, SPF 30 or more."
    assert kb.find("dryness", "lips") is None


@pytest.mark.parametrize(
    ("entry_id", "changes", "field", "expected"),
    [
        ("blood_donation", {"sms": None}, "sms", "is missing"),
        ("waxing", {"reviewed_on": None}, "reviewed_on", "is missing"),
        ("alcohol", {"sms": "Short. " * 60}, "sms", f"the limit is {SMS_MAX_CHARS}"),
        ("exercise", {"topic": "tattoos"}, "topic", "unknown topic 'tattoos'"),
        ("laser", {"facet": "elbows"}, "facet", "unknown facet 'elbows'"),
        ("vitamin_a", {"sources": [{"source": "Wikipedia"}]}, "sources", "unknown"),
        ("booking", {"answer": "Call {clinic_fax}."}, "answer", "unknown placeholder"),
        ("night_vision", {"reviewed_on": "last week"}, "reviewed_on", "YYYY-MM-DD"),
        ("night_vision", {"colour": "blue"}, "colour", "not a known field"),
        ("sharing", {"sms": "See **this** link"}, "sms", "plain text"),
    ],
)
def test_a_malformed_entry_stops_the_load_naming_file_entry_and_field(
    loaded_engine, knowledge_files, entry_id, changes, field, expected
):
    before = stored_rows(loaded_engine)
    path = knowledge_files.edit(entry_id, **changes)
    with pytest.raises(KnowledgeBaseError) as raised:
        load_knowledge(loaded_engine, knowledge_files.directory)
    message = str(raised.value)
    assert path.name in message
    assert f"entry '{entry_id}'" in message
    assert f"field '{field}'" in message
    assert expected in message
    assert stored_rows(loaded_engine) == before


def test_a_topic_without_a_main_entry_stops_the_load(loaded_engine, knowledge_files):
    before = stored_rows(loaded_engine)
    knowledge_files.remove("night_vision")
    with pytest.raises(KnowledgeBaseError, match="topic 'night_vision' has no main"):
        load_knowledge(loaded_engine, knowledge_files.directory)
    assert stored_rows(loaded_engine) == before


def test_a_duplicate_id_is_rejected(knowledge_files):
    knowledge_files.edit("dryness_eyes", id="dryness_lips")
    with pytest.raises(KnowledgeBaseError, match="field 'id': duplicate"):
        read_knowledge(knowledge_files.directory)


def test_the_command_line_reports_problems_and_exits_1(knowledge_files, capsys):
    knowledge_files.edit("blood_donation", title=None)
    assert main(["check", "--dir", str(knowledge_files.directory)]) == 1
    assert "entry 'blood_donation': field 'title'" in capsys.readouterr().err


def test_lookup_finds_the_main_entry_and_a_facet_entry(knowledge):
    main_entry = knowledge.find("blood_donation")
    after = knowledge.find("blood_donation", "after_treatment")
    assert main_entry.facet is None and main_entry.id == "blood_donation"
    assert after.facet == "after_treatment"
    assert knowledge.find("blood_donation", "lips") is None
    assert knowledge.find("no_such_topic") is None


def test_lookup_on_an_unloaded_database_raises_unavailable(engine):
    with pytest.raises(KnowledgeBaseUnavailable):
        KnowledgeBase(engine).find("blood_donation")


def test_with_the_database_gone_lookups_answer_from_the_copy_last_read(
    engine, knowledge_files
):
    # The database holds a newer wording than the project's files: the copy
    # must be the database's, not the files'.
    knowledge_files.edit("sun_protection", answer="Wear sunscreen, SPF 30 or more.")
    load_knowledge(engine, knowledge_files.directory)
    kb = KnowledgeBase(engine)
    assert kb.find("dryness", "lips").id == "dryness_lips"
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE kb_entries")
    # Read before, and never read: both from the copy of the first lookup.
    assert kb.find("dryness", "lips").id == "dryness_lips"
    assert kb.find("sun_protection").answer == "Wear sunscreen, SPF 30 or more."
    assert kb.find("no_such_topic") is None
    # A process that never reached the database has no copy to answer from.
    with pytest.raises(KnowledgeBaseUnavailable):
        KnowledgeBase(engine).find("sun_protection")


def test_the_copy_follows_what_later_lookups_read(engine, knowledge_files):
    load_knowledge(engine, knowledge_files.directory)
    kb = KnowledgeBase(engine)
    assert kb.find("dryness", "lips") is not None
    knowledge_files.edit("sun_protection", answer="Wear sunscreen, SPF 30 or more.")
    knowledge_files.remove("dryness_lips")
    load_knowledge(engine, knowledge_files.directory)
    assert kb.find("sun_protection").answer == "Wear sunscreen, SPF 30 or more."
    assert kb.find("dryness", "lips") is None
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE kb_entries")
    assert kb.find("sun_protection").answer == "Wear sunscreen, SPF 30 or more."
    assert kb.find("dryness", "lips") is None


@pytest.mark.postgres
def test_the_knowledge_base_loads_into_postgresql(postgres_url, knowledge_files):
    engine = engine_for(postgres_url)
    first = load_knowledge(engine)
    assert load_knowledge(engine).unchanged == len(first.added)
    kb = KnowledgeBase(engine)
    assert kb.find("dryness", "lips").id == "dryness_lips"
    assert kb.find("ipledge").sources  # JSON column round-trips
    knowledge_files.edit("blood_donation", sms=None)
    before = stored_rows(engine)
    with pytest.raises(KnowledgeBaseError):
        load_knowledge(engine, knowledge_files.directory)
    assert stored_rows(engine) == before
