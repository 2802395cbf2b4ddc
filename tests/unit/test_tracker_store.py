"""The project's SQL tracker store stores exactly what Rasa's does, with one
query less per message (bot.run.tracker_store), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.run.tracker_store import FORGOTTEN_SLOT, CountingSQLTrackerStore

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet]
slots:
  topic:
    type: text
    mappings: [{type: custom}]
  conversation_forgotten:
    type: bool
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: hi}]
"""
)


@pytest.fixture(params=["sqlite", "postgresql"])
def place(request, tmp_path) -> dict:
    if request.param == "sqlite":
        return {"dialect": "sqlite", "db": str(tmp_path / "conversations.db")}
    url = make_url(request.getfixturevalue("postgres_url"))
    return {
        "dialect": "postgresql",
        "host": url.host,
        "port": url.port,
        "db": url.database,
        "username": url.username,
    }


def turn(text: str) -> list:
    return [
        UserUttered(text, {"name": "greet", "confidence": 1.0}),
        SlotSet("topic", text),
        ActionExecuted("utter_greet"),
        BotUttered(f"re: {text}"),
        ActionExecuted("action_listen"),
    ]


def stored(place: dict, sender: str) -> list[dict]:
    """Every stored event of a conversation, read by Rasa's own store."""
    reader = SQLTrackerStore(DOMAIN, **place)
    try:
        tracker = asyncio.run(reader.retrieve_full_tracker(sender))
        return [e.as_dict() for e in tracker.events] if tracker else []
    finally:
        reader.engine.dispose()


def count_queries(store: SQLTrackerStore) -> list[str]:
    seen: list[str] = []

    def before(_conn, _cursor, statement, *_args) -> None:
        if "count(" in statement.lower():
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", before)
    return seen


def conversation(store: SQLTrackerStore, sender: str) -> DialogueStateTracker:
    """What Rasa does with a conversation: create, then retrieve, update and
    save each message; two saves in one turn; a new session on the way."""

    async def run() -> DialogueStateTracker:
        tracker = await store.create_tracker(sender)
        for text in ("one", "two"):
            tracker = await store.retrieve(sender)
            tracker.update_with_events(turn(text), DOMAIN)
            await store.save(tracker)
        tracker = await store.retrieve(sender)
        tracker.update_with_events(turn("three")[:2], DOMAIN)
        await store.save(tracker)  # saved mid-turn, then again
        tracker.update_with_events(turn("three")[2:], DOMAIN)
        await store.save(tracker)
        time.sleep(0.01)  # the next session's events are later in time
        tracker = await store.retrieve(sender)
        tracker.update_with_events(
            [ActionExecuted("action_session_start"), SessionStarted()], DOMAIN
        )
        tracker.update_with_events(turn("four"), DOMAIN)
        await store.save(tracker)
        tracker.update_with_events(turn("five"), DOMAIN)
        await store.save(tracker)  # the count after a new session is Rasa's
        tracker = await store.retrieve(sender)
        tracker.update_with_events(turn("six"), DOMAIN)
        await store.save(tracker)
        return await store.retrieve(sender)

    return asyncio.run(run())


def test_it_stores_what_rasas_store_stores(place):
    ours, theirs = (
        CountingSQLTrackerStore(DOMAIN, **place),
        SQLTrackerStore(DOMAIN, **place),
    )
    try:
        ours_last = conversation(ours, "ours")
        theirs_last = conversation(theirs, "theirs")
    finally:
        ours.engine.dispose()
        theirs.engine.dispose()

    def shape(events: list[dict]) -> list[tuple]:
        return [
            (e["event"], e.get("name"), e.get("text"), e.get("value")) for e in events
        ]

    # Row for row what Rasa's store writes (a save that starts a new session
    # is counted as Rasa counts it, whatever that gives).
    everything = shape(stored(place, "ours"))
    assert everything == shape(stored(place, "theirs"))
    texts = [t for kind, _, t, _ in everything if kind == "user"]
    assert texts[:3] == ["one", "two", "three"] and texts[-3:] == [
        "four",
        "five",
        "six",
    ]
    # The latest session, as Rasa's store returns it.
    assert shape([e.as_dict() for e in ours_last.events]) == shape(
        [e.as_dict() for e in theirs_last.events]
    )


def test_a_retrieved_conversation_is_saved_without_counting_its_events(place):
    store = CountingSQLTrackerStore(DOMAIN, **place)
    rasas = SQLTrackerStore(DOMAIN, **place)
    try:
        asyncio.run(store.create_tracker("sender"))
        ours, theirs = count_queries(store), count_queries(rasas)

        async def message(s: SQLTrackerStore, text: str) -> None:
            tracker = await s.retrieve("sender")
            tracker.update_with_events(turn(text), DOMAIN)
            await s.save(tracker)

        for text in ("a", "b", "c"):
            asyncio.run(message(store, text))
        asyncio.run(message(rasas, "d"))  # the same work on Rasa's store counts
        assert ours == [] and len(theirs) == 1

        # A tracker that did not come from this store is counted, as by Rasa.
        outsider = DialogueStateTracker.from_dict(
            "sender",
            [e.as_dict() for e in asyncio.run(store.retrieve("sender")).events],
        )
        outsider.update_with_events(turn("e"), DOMAIN)
        asyncio.run(store.save(outsider))
        assert len(ours) == 1
    finally:
        store.engine.dispose()
        rasas.engine.dispose()
    texts = [e["text"] for e in stored(place, "sender") if e["event"] == "user"]
    assert texts == ["a", "b", "c", "d", "e"]


def test_a_failed_save_forgets_the_count(tmp_path):
    place = {"dialect": "sqlite", "db": str(tmp_path / "conversations.db")}
    store = CountingSQLTrackerStore(DOMAIN, **place)
    try:
        asyncio.run(store.create_tracker("sender"))
        tracker = asyncio.run(store.retrieve("sender"))
        tracker.update_with_events(turn("lost?"), DOMAIN)

        def refuse(*_args) -> None:
            raise RuntimeError("database went away")

        event.listen(store.engine, "before_cursor_execute", refuse)
        with pytest.raises(RuntimeError):
            asyncio.run(store.save(tracker))
        event.remove(store.engine, "before_cursor_execute", refuse)
        asyncio.run(store.save(tracker))  # counted again: nothing doubled
    finally:
        store.engine.dispose()
    texts = [e["text"] for e in stored(place, "sender") if e["event"] == "user"]
    assert texts == ["lost?"]


def test_sqlite_keeps_a_write_ahead_log(tmp_path):
    store = CountingSQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "c.db"))
    try:
        with store.engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    finally:
        store.engine.dispose()
    assert (mode, synchronous) == ("wal", 1)  # 1 = NORMAL


def test_a_conversation_the_patient_had_forgotten_is_deleted_not_saved(place):
    store = CountingSQLTrackerStore(DOMAIN, **place)
    try:

        async def run() -> None:
            for sender in ("forgotten", "other"):
                tracker = await store.create_tracker(sender)
                tracker.update_with_events(turn("delete my conversation"), DOMAIN)
                await store.save(tracker)
            tracker = await store.retrieve("forgotten")
            tracker.update_with_events(
                [*turn("yes"), SlotSet(FORGOTTEN_SLOT, True)], DOMAIN
            )
            await store.save(tracker)
            # Saved again in the same turn (Rasa may): still nothing.
            await store.save(tracker)

        asyncio.run(run())
    finally:
        store.engine.dispose()
    assert stored(place, "forgotten") == []
    assert [e["text"] for e in stored(place, "other") if e["event"] == "user"] == [
        "delete my conversation"
    ]


def test_purge_deletes_conversations_whose_last_message_is_older(place):
    store = CountingSQLTrackerStore(DOMAIN, **place)
    try:

        async def run() -> None:
            for sender in ("old", "recent"):
                tracker = await store.create_tracker(sender)
                tracker.update_with_events(turn("hello"), DOMAIN)
                await store.save(tracker)

        asyncio.run(run())
        cut = time.time()
        time.sleep(0.01)

        async def later() -> None:
            tracker = await store.retrieve("recent")
            tracker.update_with_events(turn("still here"), DOMAIN)
            await store.save(tracker)

        asyncio.run(later())
        assert store.purge(cut) == (1, 6)  # session start + one turn
        assert store.purge(cut) == (0, 0)
    finally:
        store.engine.dispose()
    assert stored(place, "old") == []
    texts = [e["text"] for e in stored(place, "recent") if e["event"] == "user"]
    assert texts == ["hello", "still here"]  # all of it: its last message is new


def test_a_failed_save_does_not_quote_the_patients_words(place):
    """Rasa logs a failed save's exception: its text must not hold the events."""
    store = CountingSQLTrackerStore(DOMAIN, **place)
    try:
        tracker = asyncio.run(store.create_tracker("sender"))
        tracker.update_with_events(turn("my secret words"), DOMAIN)
        store.SQLEvent.__table__.drop(store.engine)
        with pytest.raises(SQLAlchemyError) as failed:
            asyncio.run(store.save(tracker))
        assert "INSERT INTO events" in str(failed.value)  # the real failure
        assert "secret" not in str(failed.value)
    finally:
        store.SQLEvent.__table__.create(store.engine, checkfirst=True)
        store.engine.dispose()
