"""Every custom action, run as the action server runs it, on a real knowledge base."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SessionStarted, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions import actions
from bot.answers import render
from bot.clinic import load_clinic
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.topics import topic_map


@pytest.fixture(autouse=True)
def action_server_database(bot_database, engine):
    """The action server's own database, loaded from the reviewed files."""
    load_knowledge(engine)
    actions._answers = None
    yield KnowledgeBase(engine)
    actions._answers = None


def make_tracker(intent=None, entities=(), slots=None, channel="rest", events=None):
    latest = {
        "text": "a patient's message",
        "intent": {"name": intent, "confidence": 0.97} if intent else {},
        "entities": [{"entity": name, "value": value} for name, value in entities],
    }
    if events is None:
        events = [
            {"event": "action", "name": "action_session_start"},
            {"event": "user", "text": latest["text"], "parse_data": latest,
             "input_channel": channel},
        ]  # fmt: skip
    return Tracker(
        "patient-1", slots or {}, latest, events, False, None, {}, "action_listen"
    )


def run(action, tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def expected_text(kb, entry_id, channel="rest"):
    entry = next(e for e in kb.entries() if e.id == entry_id)
    return render(entry, channel, load_clinic())


TOPIC_INTENTS = [(t.intent, t.id) for t in topic_map().topics if t.intent]


@pytest.mark.parametrize(("intent", "topic"), TOPIC_INTENTS)
def test_answer_topic_sends_the_topics_entry_and_remembers_it(
    action_server_database, intent, topic
):
    messages, events = run(actions.ActionAnswerTopic(), make_tracker(intent))
    assert [m["text"] for m in messages] == [
        expected_text(action_server_database, topic)
    ]
    assert SlotSet("topic", topic) in events


def test_answer_topic_narrows_to_the_facet_entry(action_server_database):
    tracker = make_tracker("ask_dryness", entities=[("facet", "lips")])
    messages, _ = run(actions.ActionAnswerTopic(), tracker)
    assert messages[0]["text"] == expected_text(action_server_database, "dryness_lips")


def test_answer_topic_on_sms_sends_the_short_plain_text(action_server_database):
    tracker = make_tracker("ask_blood_donation", channel="sms")
    messages, _ = run(actions.ActionAnswerTopic(), tracker)
    sms = expected_text(action_server_database, "blood_donation", "sms")
    assert messages[0]["text"] == sms
    assert sms != expected_text(action_server_database, "blood_donation", "rest")


def test_help_comes_with_the_main_topics_as_buttons():
    messages, _ = run(actions.ActionAnswerTopic(), make_tracker("ask_help"))
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert "/ask_what_is_isotretinoin" in payloads and "/book_appointment" in payloads


def test_a_dose_question_is_sent_to_the_dermatologist_with_the_clinics_phone():
    messages, _ = run(actions.ActionAnswerTopic(), make_tracker("ask_medical_decision"))
    assert load_clinic().phone in messages[0]["text"]
    assert "dermatologist" in messages[0]["text"].lower()


def test_a_non_topic_intent_never_gets_a_guessed_answer(action_server_database):
    messages, events = run(actions.ActionAnswerTopic(), make_tracker("greet"))
    assert messages[0]["text"] == expected_text(action_server_database, "fallback")
    assert events == []


def test_follow_up_uses_the_last_topic(action_server_database):
    tracker = make_tracker(
        "ask_follow_up",
        entities=[("facet", "after_treatment")],
        slots={"topic": "blood_donation"},
    )
    messages, events = run(actions.ActionAnswerFollowUp(), tracker)
    assert messages[0]["text"] == expected_text(
        action_server_database, "blood_donation_after_treatment"
    )
    assert SlotSet("topic", "blood_donation") in events


def test_follow_up_on_a_body_part_without_context_means_dryness(
    action_server_database,
):
    tracker = make_tracker("ask_follow_up", entities=[("facet", "lips")])
    messages, _ = run(actions.ActionAnswerFollowUp(), tracker)
    assert messages[0]["text"] == expected_text(action_server_database, "dryness_lips")


def test_follow_up_with_a_facet_the_topic_lacks_gives_the_topics_main_entry(
    action_server_database,
):
    tracker = make_tracker(
        "ask_follow_up", entities=[("facet", "men")], slots={"topic": "sun_protection"}
    )
    messages, _ = run(actions.ActionAnswerFollowUp(), tracker)
    assert messages[0]["text"] == expected_text(
        action_server_database, "sun_protection"
    )


def test_follow_up_without_any_context_asks_which_topic(action_server_database):
    tracker = make_tracker("ask_follow_up", entities=[("facet", "after_treatment")])
    messages, events = run(actions.ActionAnswerFollowUp(), tracker)
    assert messages[0]["text"] == expected_text(
        action_server_database, "follow_up_unknown"
    )
    assert messages[0]["buttons"]
    assert events == []  # the unknown topic is not remembered


def test_fallback_offers_topics_and_the_clinics_contact_and_forgets_the_message(
    action_server_database,
):
    messages, events = run(actions.ActionAnswerFallback(), make_tracker("nlu_fallback"))
    assert messages[0]["text"] == expected_text(action_server_database, "fallback")
    assert load_clinic().phone in messages[0]["text"]
    assert len(messages[0]["buttons"]) >= 5
    assert events == [UserUtteranceReverted()]


def test_session_start_says_what_the_bot_is_before_anything_else(
    action_server_database,
):
    tracker = make_tracker(events=[])
    messages, events = run(actions.ActionSessionStart(), tracker)
    assert messages[0]["text"] == expected_text(action_server_database, "welcome")
    assert "911" in messages[0]["text"]
    assert isinstance(events[0], dict) and events[0] == SessionStarted()


def test_a_database_that_is_down_gets_a_safe_reply(monkeypatch, tmp_path):
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    actions._answers = None
    for action, tracker in [
        (actions.ActionAnswerTopic(), make_tracker("ask_blood_donation")),
        (actions.ActionAnswerFollowUp(), make_tracker("ask_follow_up")),
        (actions.ActionAnswerFallback(), make_tracker("nlu_fallback")),
        (actions.ActionSessionStart(), make_tracker(events=[])),
    ]:
        messages, _ = run(action, tracker)
        assert load_clinic().phone in messages[0]["text"]
        assert "911" in messages[0]["text"]
