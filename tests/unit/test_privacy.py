"""Forget me and the retention period (bot.privacy): the action's dialogue on
a real knowledge base, and what is left in real tables afterwards."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa_sdk.events import SlotSet
from sqlalchemy import select, update

from actions import actions
from bot import settings
from bot.channels.sms.store import (
    SmsContactRow,
    SmsMenuRow,
    SmsMessageRow,
    SmsOptOutRow,
    SmsStore,
)
from bot.privacy.__main__ import main as privacy_main
from bot.privacy.erase import forget, purge
from bot.run.tracker_store import FORGOTTEN_SLOT, CountingSQLTrackerStore
from bot.safety.handoffs import ERASED, HandoffQueue, HandoffRow
from tests.unit.test_actions import (
    expected_text,
    make_tracker,
    run,
    texts,
    welcomed,
)

pytestmark = pytest.mark.usefixtures("action_server_database")

DOMAIN = Domain.load(str(settings.PROJECT_ROOT / "domain.yml"))


def sms_rows(engine, sender_id: str) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            row.__tablename__: len(
                connection.execute(select(row).where(row.sender_id == sender_id)).all()
            )
            for row in (SmsContactRow, SmsMenuRow, SmsMessageRow, SmsOptOutRow)
        }


def a_patient_with_records(engine, sender_id: str = "patient-1", resolved=True):
    """A crisis handoff (resolved or not) and every SMS record of ``sender_id``."""
    queue = HandoffQueue(engine)
    handoff = queue.create(sender_id, "sms", "crisis", "i want to die")
    if resolved:
        queue.resolve(handoff.id, "nurse")
    store = SmsStore(engine)
    store.save_contact(sender_id, "encrypted-number")
    store.save_menu(sender_id, [{"title": "Yes", "payload": "Yes"}])
    store.claim_message(f"SM-{sender_id}", sender_id)
    store.set_opted_out(sender_id, True)
    return handoff


# -- the dialogue ---------------------------------------------------------


def test_asking_to_be_forgotten_asks_to_confirm_and_deletes_nothing_yet(
    action_server_database, engine
):
    handoff = a_patient_with_records(engine)
    messages, events = run(
        actions.ActionForgetConversation(),
        make_tracker("forget_me", text="delete my conversation", slots=welcomed()),
    )
    [message] = messages
    assert message["text"] == expected_text(action_server_database, "forget_request")
    assert [b["title"] for b in message["buttons"]] == ["Yes", "No"]
    assert SlotSet("forget_request", True) in events
    assert HandoffQueue(engine).get(handoff.id).message == "i want to die"


def test_yes_erases_the_records_and_has_the_conversation_deleted(
    action_server_database, engine
):
    handoff = a_patient_with_records(engine)
    pending = welcomed(forget_request=True)
    messages, events = run(
        actions.ActionAnswerFallback(), make_tracker("nlu_fallback", text="Yes",
                                                     slots=pending),
    )  # fmt: skip
    assert texts(messages) == [expected_text(action_server_database, "forget_done")]
    assert SlotSet(FORGOTTEN_SLOT, True) in events
    kept = HandoffQueue(engine).get(handoff.id)
    assert kept.message == ERASED and kept.level == "crisis"  # the record stays
    # The number, menu and message records go; the opt-out stays honoured.
    assert sms_rows(engine, "patient-1") == {
        "sms_contacts": 0, "sms_menus": 0, "sms_messages": 0, "sms_opt_outs": 1,
    }  # fmt: skip


def test_while_staff_have_not_called_back_the_number_stays(
    action_server_database, engine
):
    a_patient_with_records(engine, resolved=False)
    run(
        actions.ActionAnswerFallback(),
        make_tracker("nlu_fallback", text="yes", slots=welcomed(forget_request=True)),
    )
    assert sms_rows(engine, "patient-1")["sms_contacts"] == 1
    assert sms_rows(engine, "patient-1")["sms_messages"] == 0


def test_no_deletes_nothing(action_server_database, engine):
    handoff = a_patient_with_records(engine)
    messages, events = run(
        actions.ActionAnswerFallback(),
        make_tracker("nlu_fallback", text="no", slots=welcomed(forget_request=True)),
    )
    assert texts(messages) == [expected_text(action_server_database, "forget_kept")]
    assert SlotSet("forget_request", None) in events
    assert not any(e.get("name") == FORGOTTEN_SLOT for e in events)
    assert HandoffQueue(engine).get(handoff.id).message == "i want to die"


def test_another_question_is_answered_and_deletes_nothing(
    action_server_database, engine
):
    handoff = a_patient_with_records(engine)
    messages, events = run(
        actions.ActionAnswerTopic(),
        make_tracker("ask_waxing", text="can i wax my brows",
                     slots=welcomed(forget_request=True)),
    )  # fmt: skip
    assert texts(messages) == [expected_text(action_server_database, "waxing")]
    assert events[0] == SlotSet("forget_request", None)
    assert not any(e.get("name") == FORGOTTEN_SLOT for e in events)
    assert HandoffQueue(engine).get(handoff.id).message == "i want to die"


def test_asking_again_asks_again(action_server_database):
    _, events = run(
        actions.ActionForgetConversation(),
        make_tracker("forget_me", text="forget me",
                     slots=welcomed(forget_request=True)),
    )  # fmt: skip
    # Cleared, then set by the new question: the last one counts.
    assert [e["value"] for e in events if e.get("name") == "forget_request"] == [
        None, True,
    ]  # fmt: skip


def test_a_crisis_while_asked_gets_the_crisis_reply_and_deletes_nothing(
    action_server_database, engine
):
    handoff = a_patient_with_records(engine)
    messages, events = run(
        actions.ActionAnswerFallback(),
        make_tracker("nlu_fallback", text="yes i want to kill myself",
                     slots=welcomed(forget_request=True)),
    )  # fmt: skip
    assert "988" in texts(messages)[0]
    assert not any(e.get("name") == FORGOTTEN_SLOT for e in events)
    assert HandoffQueue(engine).get(handoff.id).message == "i want to die"


def test_with_the_database_down_the_patient_is_told_nothing_was_deleted(
    action_server_database, monkeypatch
):
    monkeypatch.setenv("BOT_DATABASE_URL", "postgresql://127.0.0.1:9/none")
    messages, events = run(
        actions.ActionAnswerFallback(),
        make_tracker("nlu_fallback", text="yes", slots=welcomed(forget_request=True)),
    )
    assert texts(messages) == [expected_text(action_server_database, "forget_failed")]
    assert not any(e.get("name") == FORGOTTEN_SLOT for e in events)


# -- the records ------------------------------------------------------------


def test_spooled_handoffs_lose_their_text_too(engine, tmp_path):
    queue = HandoffQueue(engine, tmp_path / "spool.jsonl")
    spooled = queue.spool_only(queue.new("patient-1", "rest", "crisis", "words"))
    other = queue.spool_only(queue.new("patient-2", "rest", "concern", "theirs"))
    assert queue.erase_text(sender_id="patient-1") == 0  # none in the table yet
    by_id = {h.id: h.message for h in queue.spooled()}
    assert by_id == {spooled.id: ERASED, other.id: "theirs"}
    assert "words" not in queue.spool.read_text()
    assert queue.replay_spool() == 2
    assert queue.get(spooled.id).message == ERASED


def tracker_store(tmp_path) -> CountingSQLTrackerStore:
    return CountingSQLTrackerStore(
        DOMAIN, dialect="sqlite", db=str(tmp_path / "conversations.db")
    )


def a_conversation(store, sender_id: str, text: str) -> None:
    async def save() -> None:
        tracker = await store.get_or_create_tracker(sender_id)
        tracker.update_with_events(
            [UserUttered(text, {"name": "greet", "confidence": 1.0}),
             ActionExecuted("action_listen")], DOMAIN,
        )  # fmt: skip
        await store.save(tracker)

    asyncio.run(save())


def user_texts(store, sender_id: str) -> list[str]:
    tracker = asyncio.run(store.retrieve_full_tracker(sender_id))
    events = tracker.events if tracker else []
    return [e.text for e in events if isinstance(e, UserUttered)]


def test_staff_forget_deletes_the_conversation_and_the_records(engine, tmp_path):
    store = tracker_store(tmp_path)
    a_conversation(store, "patient-1", "i want to die")
    a_conversation(store, "patient-2", "can i wax")
    handoff = a_patient_with_records(engine)
    erased = forget("patient-1", engine, store)
    assert (erased.conversations, erased.handoff_texts) == (1, 1)
    assert erased.events > 0 and erased.sms_rows == 3
    assert user_texts(store, "patient-1") == []
    assert user_texts(store, "patient-2") == ["can i wax"]
    assert HandoffQueue(engine).get(handoff.id).message == ERASED
    assert "die" not in str(erased)  # counts only


def test_purge_deletes_what_is_older_than_the_retention(engine, tmp_path):
    store = tracker_store(tmp_path)
    a_conversation(store, "old", "old words")
    a_conversation(store, "new", "new words")
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=91)
    with store.session_scope() as session:
        session.execute(
            update(store.SQLEvent)
            .where(store.SQLEvent.sender_id == "old")
            .values(timestamp=long_ago.timestamp())
        )
        session.commit()
    old = a_patient_with_records(engine, "old")
    calling = a_patient_with_records(engine, "old-open", resolved=False)
    new = a_patient_with_records(engine, "new")
    with engine.begin() as connection:
        for table, column in ((HandoffRow, HandoffRow.created_at),
                              (SmsContactRow, SmsContactRow.updated_at),
                              (SmsMenuRow, SmsMenuRow.sent_at),
                              (SmsMessageRow, SmsMessageRow.received_at)):  # fmt: skip
            connection.execute(
                update(table).where(table.sender_id.in_(["old", "old-open"]))
                .values({column: long_ago})
            )  # fmt: skip
    erased = purge(90, engine, store)
    assert (erased.conversations, erased.handoff_texts) == (1, 2)
    assert user_texts(store, "old") == [] and user_texts(store, "new") == ["new words"]
    queue = HandoffQueue(engine)
    assert queue.get(old.id).message == ERASED == queue.get(calling.id).message
    assert queue.get(new.id).message == "i want to die"
    assert sms_rows(engine, "old")["sms_contacts"] == 0
    assert sms_rows(engine, "old-open")["sms_contacts"] == 1  # staff still call
    assert sms_rows(engine, "old-open")["sms_messages"] == 0
    assert sms_rows(engine, "new") == {
        "sms_contacts": 1, "sms_menus": 1, "sms_messages": 1, "sms_opt_outs": 1,
    }  # fmt: skip
    assert purge(90, engine, store) == type(erased)()  # nothing left to do


def test_the_purge_command_refuses_a_retention_under_a_day(capsys):
    assert privacy_main(["purge", "--days", "0"]) == 2
    assert "at least one day" in capsys.readouterr().err
