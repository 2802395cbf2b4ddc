"""Every custom action, run as the action server runs it, on a real knowledge
base and a real handoff table."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions import actions
from bot import settings
from bot.content.answers import emergency_text, render
from bot.content.clinic import load_clinic
from bot.content.signoff import SignOffs
from bot.safety.handoffs import HandoffQueue

# Every test here runs on the action server's own database (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("action_server_database")


def make_tracker(
    intent=None,
    entities=(),
    slots=None,
    channel="rest",
    text="a patient's message",
    safety=None,
    message_id=None,
):
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.97} if intent else {},
        "entities": [{"entity": name, "value": value} for name, value in entities],
        "message_id": message_id or f"m-{abs(hash(text))}",
    }
    if safety:  # what the NLU pipeline's safety screen hands the actions
        latest["safety"] = safety
    events = [
        {"event": "action", "name": "action_session_start"},
        {"event": "user", "text": text, "parse_data": latest, "input_channel": channel},
    ]
    return Tracker(
        "patient-1", slots or {}, latest, events, False, None, {}, "action_listen"
    )


def welcomed(**slots):
    return {"welcomed": True, **slots}


def run(action, tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def texts(messages):
    return [m["text"] for m in messages]


def expected_text(kb, entry_id, channel="rest"):
    entry = next(e for e in kb.entries() if e.id == entry_id)
    return render(entry, channel, load_clinic())


ORACLE = yaml.safe_load(
    (settings.PROJECT_ROOT / "tests" / "data" / "topic_oracle.yml").read_text()
)["questions"]
# Answers that "and after I stop?" must not refer back to (written out here,
# not read from the topic map).
NO_FOLLOW_UPS = {
    "book_appointment", "ask_clinic_info", "ask_medical_decision", "request_human",
    "ask_help", "greet", "goodbye", "thank", "bot_challenge", "out_of_scope",
    "forget_me",
}  # fmt: skip


@pytest.mark.parametrize("row", ORACLE, ids=[row["question"] for row in ORACLE])
def test_answer_topic_sends_the_entry_with_the_oracles_fact(
    action_server_database, row
):
    entities = [("facet", row["facet"])] if row.get("facet") else []
    messages, events = run(
        actions.ActionAnswerTopic(),
        make_tracker(row["intent"], entities, slots=welcomed()),
    )
    [text] = texts(messages)
    assert any(part.lower() in text.lower() for part in row["fact"].split("|")), text
    remembered = [e for e in events if e.get("name") == "topic"]
    assert bool(remembered) == (row["intent"] not in NO_FOLLOW_UPS)


def test_the_first_reply_starts_with_what_the_bot_is(action_server_database):
    messages, events = run(actions.ActionAnswerTopic(), make_tracker("ask_waxing"))
    assert texts(messages) == [
        expected_text(action_server_database, "welcome"),
        expected_text(action_server_database, "waxing"),
    ]
    assert "911" in messages[0]["text"]
    assert SlotSet("welcomed", True) in events


def test_a_first_hello_gets_the_welcome_alone(action_server_database):
    messages, _ = run(actions.ActionAnswerTopic(), make_tracker("greet"))
    assert texts(messages) == [expected_text(action_server_database, "welcome")]


def test_answer_topic_narrows_to_the_facet_entry(action_server_database):
    tracker = make_tracker("ask_dryness", [("facet", "lips")], slots=welcomed())
    messages, _ = run(actions.ActionAnswerTopic(), tracker)
    assert texts(messages) == [expected_text(action_server_database, "dryness_lips")]


def test_answer_topic_on_sms_sends_the_short_plain_text(action_server_database):
    tracker = make_tracker("ask_blood_donation", channel="sms", slots=welcomed())
    messages, _ = run(actions.ActionAnswerTopic(), tracker)
    sms = expected_text(action_server_database, "blood_donation", "sms")
    assert texts(messages) == [sms]
    assert sms != expected_text(action_server_database, "blood_donation", "rest")


def test_in_rasa_shell_each_answer_ends_with_the_staff_line(action_server_database):
    tracker = make_tracker("ask_blood_donation", channel="cmdline")
    messages, _ = run(actions.ActionAnswerTopic(), tracker)
    entry = next(
        e for e in action_server_database.entries() if e.id == "blood_donation"
    )
    assert texts(messages)[:2] == [
        expected_text(action_server_database, "welcome"),
        expected_text(action_server_database, "blood_donation"),
    ]
    staff = texts(messages)[-1]
    assert staff.startswith("[staff]")
    assert (
        f"blood_donation (reviewed {entry.reviewed_on.isoformat()}; "
        "no clinician sign-off)" in staff
    )
    assert "intent ask_blood_donation 0.97" in staff


def test_the_staff_line_shows_a_clinician_sign_off_until_the_wording_changes(
    action_server_database,
):
    entry = next(
        e for e in action_server_database.entries() if e.id == "blood_donation"
    )
    signoffs = SignOffs(action_server_database.engine)
    signoffs.record(entry, "Dr. Lee", dt.date(2026, 12, 10))
    tracker = make_tracker("ask_blood_donation", channel="cmdline", slots=welcomed())
    messages, _ = run(actions.ActionAnswerTopic(), tracker)
    assert "signed off by Dr. Lee, 2026-12-10)" in texts(messages)[-1]
    changed = dataclasses.replace(entry, sms=entry.sms + " Changed.")
    assert signoffs.current(changed) is None
    assert signoffs.of([changed])["blood_donation"].current is False


def test_in_rasa_shell_a_crisis_reply_still_comes_first_then_the_staff_line(
    action_server_database,
):
    tracker = make_tracker("crisis", channel="cmdline", text="i want to kill myself")
    messages, _ = run(actions.ActionHandleCrisis(), tracker)
    assert texts(messages)[0] == expected_text(action_server_database, "crisis")
    assert texts(messages)[-1].startswith("[staff] entry crisis (reviewed ")


@pytest.mark.parametrize("channel", ["rest", "socketio", "sms"])
def test_patients_never_see_the_staff_line(action_server_database, channel):
    for action, intent in [
        (actions.ActionAnswerTopic(), "ask_blood_donation"),
        (actions.ActionAnswerFallback(), "nlu_fallback"),
        (actions.ActionHandleConcern(), "mental_health_concern"),
    ]:
        messages, _ = run(action, make_tracker(intent, channel=channel))
        assert messages
        assert not any("[staff]" in m["text"] for m in messages)


def test_help_comes_with_the_main_topics_as_buttons():
    messages, _ = run(
        actions.ActionAnswerTopic(), make_tracker("ask_help", slots=welcomed())
    )
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert "/ask_what_is_isotretinoin" in payloads and "/book_appointment" in payloads


def test_a_dose_question_is_sent_to_the_dermatologist_with_the_clinics_phone():
    tracker = make_tracker("ask_medical_decision", slots=welcomed())
    messages, _ = run(actions.ActionAnswerTopic(), tracker)
    assert load_clinic().phone in messages[0]["text"]
    assert "dermatologist" in messages[0]["text"].lower()


def test_a_non_topic_intent_never_gets_a_guessed_answer(action_server_database):
    tracker = make_tracker("nlu_fallback", slots=welcomed())
    messages, events = run(actions.ActionAnswerTopic(), tracker)
    assert texts(messages) == [expected_text(action_server_database, "fallback")]
    assert not any(e.get("name") == "topic" for e in events)


def test_follow_up_uses_the_last_topic(action_server_database):
    tracker = make_tracker(
        "ask_follow_up",
        [("facet", "after_treatment")],
        slots=welcomed(topic="blood_donation"),
    )
    messages, events = run(actions.ActionAnswerFollowUp(), tracker)
    assert texts(messages) == [
        expected_text(action_server_database, "blood_donation_after_treatment")
    ]
    assert SlotSet("topic", "blood_donation") in events


def test_follow_up_on_a_body_part_without_context_means_dryness(
    action_server_database,
):
    tracker = make_tracker("ask_follow_up", [("facet", "lips")], slots=welcomed())
    messages, _ = run(actions.ActionAnswerFollowUp(), tracker)
    assert texts(messages) == [expected_text(action_server_database, "dryness_lips")]


def test_follow_up_with_a_facet_the_topic_lacks_gives_the_topics_main_entry(
    action_server_database,
):
    tracker = make_tracker(
        "ask_follow_up", [("facet", "men")], slots=welcomed(topic="sun_protection")
    )
    messages, _ = run(actions.ActionAnswerFollowUp(), tracker)
    assert texts(messages) == [expected_text(action_server_database, "sun_protection")]


def test_follow_up_without_any_context_asks_which_topic(action_server_database):
    tracker = make_tracker(
        "ask_follow_up", [("facet", "after_treatment")], slots=welcomed()
    )
    messages, events = run(actions.ActionAnswerFollowUp(), tracker)
    assert texts(messages) == [
        expected_text(action_server_database, "follow_up_unknown")
    ]
    assert messages[0]["buttons"]
    assert not any(e.get("name") == "topic" for e in events)


def test_fallback_offers_topics_and_the_clinics_contact_and_forgets_the_message(
    action_server_database,
):
    tracker = make_tracker("nlu_fallback", slots=welcomed())
    messages, events = run(actions.ActionAnswerFallback(), tracker)
    assert texts(messages) == [expected_text(action_server_database, "fallback")]
    assert load_clinic().phone in messages[0]["text"]
    assert len(messages[0]["buttons"]) >= 5
    assert events[0] == UserUtteranceReverted()  # first: it must not undo the slots


def test_a_crisis_gets_911_and_988_first_and_a_stored_handoff(
    action_server_database, engine
):
    tracker = make_tracker("crisis", text="i want to end my life", channel="sms")
    messages, events = run(actions.ActionHandleCrisis(), tracker)
    assert texts(messages) == [expected_text(action_server_database, "crisis", "sms")]
    assert "911" in messages[0]["text"] and "988" in messages[0]["text"]
    assert SlotSet("crisis_active", True) in events
    (handoff,) = HandoffQueue(engine).list()
    assert (handoff.level, handoff.channel, handoff.status) == ("crisis", "sms", "open")
    assert handoff.message == "i want to end my life"
    assert handoff.sender_id == "patient-1"


def test_after_a_crisis_every_answer_keeps_911_and_988_at_hand(
    action_server_database,
):
    tracker = make_tracker("ask_waxing", slots=welcomed(crisis_active=True))
    messages, _ = run(actions.ActionAnswerTopic(), tracker)
    assert texts(messages) == [
        expected_text(action_server_database, "waxing"),
        expected_text(action_server_database, "crisis_reminder"),
    ]


def test_a_mood_question_gets_the_mood_answer_a_follow_up_and_a_handoff(
    action_server_database, engine
):
    tracker = make_tracker(
        "mental_health_concern", text="can accutane cause depression?", slots=welcomed()
    )
    messages, _ = run(actions.ActionHandleConcern(), tracker)
    assert texts(messages) == [
        expected_text(action_server_database, "mood"),
        expected_text(action_server_database, "concern_follow_up"),
    ]
    assert load_clinic().phone in messages[1]["text"]
    assert [h.level for h in HandoffQueue(engine).list()] == ["concern"]


def test_the_mood_button_gets_the_mood_topic_and_no_handoff(
    action_server_database, engine
):
    """Tapping "Mood and mental health" asks to read about it: the label's
    facts, warning signs and 988, not a call from the care team."""
    tracker = make_tracker(
        "mental_health_concern", text="/mental_health_concern", slots=welcomed()
    )
    messages, events = run(actions.ActionHandleConcern(), tracker)
    assert texts(messages) == [expected_text(action_server_database, "mood")]
    assert "988" in messages[0]["text"]
    assert HandoffQueue(engine).list() == []
    assert {"event": "slot", "name": "topic", "value": "mood"} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in events
    ]


def test_a_mood_disclosure_gets_the_labels_advice_support_and_a_follow_up(
    action_server_database, engine
):
    tracker = make_tracker(
        "mental_health_concern",
        text="i cry every day since i started",
        slots=welcomed(),
        safety={"level": "concern", "source": "phrases"},
    )
    messages, _ = run(actions.ActionHandleConcern(), tracker)
    assert texts(messages) == [
        expected_text(action_server_database, "mood_disclosure"),
        expected_text(action_server_database, "concern_follow_up"),
    ]
    # The label's advice for these signs: stop taking it and call.
    assert "stop taking it" in messages[0]["text"]
    assert load_clinic().phone in messages[0]["text"]
    assert [h.level for h in HandoffQueue(engine).list()] == ["concern"]


POSSIBLE = {"level": "possible", "source": "phrases"}
QUESTION_TEXT = "Are you thinking about ending your life or hurting yourself?"


def ask(engine, text="sometimes i wish i could just disappear", **kwargs):
    """A possible risk: the direct question; returns the messages, events and
    the concern handoff stored for it."""
    tracker = make_tracker(
        "mental_health_concern", text=text, slots=welcomed(), safety=POSSIBLE,
        **kwargs,
    )  # fmt: skip
    messages, events = run(actions.ActionHandleConcern(), tracker)
    (handoff,) = HandoffQueue(engine).list()
    return messages, events, handoff


def test_a_possible_risk_gets_the_direct_question_with_988_and_yes_no_buttons(
    action_server_database, engine
):
    messages, events, handoff = ask(engine)
    assert texts(messages) == [expected_text(action_server_database, "safety_question")]
    text = messages[0]["text"]
    assert "Are you thinking about ending your life or hurting yourself?" in text
    assert "988" in text
    assert [b["title"] for b in messages[0]["buttons"]] == ["Yes", "No"]
    # A concern handoff is stored before the question is sent.
    assert (handoff.level, handoff.status) == ("concern", "open")
    assert SlotSet("safety_question", handoff.id) in events


def test_an_informational_question_gets_the_mood_facts_then_the_direct_question(
    action_server_database, engine
):
    tracker = make_tracker(
        "mental_health_concern",
        text="does isotretinoin cause suicidal thoughts?",
        slots=welcomed(),
        safety={"level": "possible", "informational": True, "source": "phrases"},
    )
    messages, _ = run(actions.ActionHandleConcern(), tracker)
    assert texts(messages) == [
        expected_text(action_server_database, "mood"),
        expected_text(action_server_database, "safety_question"),
    ]
    assert "I'm so sorry you are going through this" not in " ".join(texts(messages))
    assert [h.level for h in HandoffQueue(engine).list()] == ["concern"]


def answer(engine, handoff, text, action=None, intent="nlu_fallback", **slots):
    tracker = make_tracker(
        intent, text=text, slots=welcomed(safety_question=handoff.id, **slots)
    )
    return run(action or actions.ActionAnswerFallback(), tracker)


@pytest.mark.parametrize("reply", ["Yes", "yeah", "idk maybe", "Sí"])
def test_yes_to_the_question_makes_the_handoff_a_crisis_with_the_crisis_reply(
    action_server_database, engine, reply
):
    _, _, handoff = ask(engine)
    messages, events = answer(engine, handoff, reply)
    assert texts(messages) == [expected_text(action_server_database, "crisis")]
    (escalated,) = HandoffQueue(engine).list()  # the same handoff, now urgent
    assert (escalated.id, escalated.level) == (handoff.id, "crisis")
    assert escalated.notified_at is None  # alerted again, as a crisis
    assert SlotSet("safety_question", None) in events
    assert SlotSet("crisis_active", True) in events


def test_no_returns_to_the_conversation_with_the_mood_information(
    action_server_database, engine
):
    _, _, handoff = ask(engine)
    messages, events = answer(engine, handoff, "No", intent="greet",
                              action=actions.ActionAnswerTopic())  # fmt: skip
    assert texts(messages) == [
        expected_text(action_server_database, "safety_answer_no"),
        expected_text(action_server_database, "mood"),
    ]
    (kept,) = HandoffQueue(engine).list()
    assert kept.level == "concern"  # staff still follow up
    assert SlotSet("safety_question", None) in events
    assert UserUtteranceReverted() not in events


def test_no_answer_to_the_question_escalates_and_keeps_911_and_988_at_hand(
    action_server_database, engine
):
    _, _, handoff = ask(engine)
    messages, events = answer(
        engine, handoff, "can i get my eyebrows waxed", intent="ask_waxing",
        action=actions.ActionAnswerTopic(),
    )  # fmt: skip
    assert texts(messages) == [
        expected_text(action_server_database, "waxing"),
        expected_text(action_server_database, "crisis_reminder"),
    ]
    assert [h.level for h in HandoffQueue(engine).list()] == ["crisis"]
    assert SlotSet("crisis_active", True) in events


def test_silence_after_the_question_escalates_when_its_time_runs_out(
    action_server_database, engine, monkeypatch
):
    from bot.safety.alerts import StaffNotifier

    _, _, handoff = ask(engine)
    queue = HandoffQueue(engine)
    monkeypatch.setenv("BOT_SAFETY_ANSWER_TIMEOUT_S", "3600")
    StaffNotifier(queue, url="").notify_due()
    assert queue.get(handoff.id).level == "concern"  # not yet
    monkeypatch.setenv("BOT_SAFETY_ANSWER_TIMEOUT_S", "0")
    StaffNotifier(queue, url="").notify_due()
    assert queue.get(handoff.id).level == "crisis"


def test_a_crisis_in_spanish_gets_988s_spanish_line(action_server_database, engine):
    tracker = make_tracker(
        "crisis",
        text="ya no quiero vivir",
        safety={"level": "crisis", "spanish": True, "source": "phrases"},
    )
    messages, _ = run(actions.ActionHandleCrisis(), tracker)
    assert texts(messages) == [expected_text(action_server_database, "crisis_es")]
    assert "marca 2" in messages[0]["text"] and "AYUDA" in messages[0]["text"]
    assert "911" in messages[0]["text"]


def test_a_crisis_that_skipped_nlu_is_still_caught(action_server_database, engine):
    # "/..." messages skip the NLU pipeline (and so the safety component).
    tracker = make_tracker(
        "ask_waxing", text="/ask_waxing i want to kill myself", slots=welcomed()
    )
    messages, _ = run(actions.ActionAnswerTopic(), tracker)
    assert texts(messages) == [expected_text(action_server_database, "crisis")]
    assert [h.level for h in HandoffQueue(engine).list()] == ["crisis"]


def test_with_the_database_down_answers_come_from_the_reviewed_files(
    monkeypatch, tmp_path, action_server_database
):
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    actions._answers = None
    messages, _ = run(
        actions.ActionAnswerTopic(), make_tracker("ask_waxing", slots=welcomed())
    )
    assert texts(messages) == [expected_text(action_server_database, "waxing")]


def test_with_no_content_at_all_a_crisis_still_gets_911_and_988(monkeypatch, tmp_path):
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setattr("bot.settings.KNOWLEDGE_DIR", tmp_path / "no-such-dir")
    actions._answers = actions._safety_answers = None
    messages, _ = run(actions.ActionHandleCrisis(), make_tracker("crisis"))
    assert texts(messages) == [emergency_text()]
    messages, _ = run(actions.ActionAnswerTopic(), make_tracker("ask_waxing"))
    assert load_clinic().phone in messages[0]["text"] and "911" in messages[0]["text"]


def test_with_the_database_down_a_possible_risk_is_handed_off_as_a_crisis(
    action_server_database, monkeypatch, tmp_path
):
    # Nothing could time the patient's answer: staff are to call at once.
    monkeypatch.setenv("BOT_DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/x")
    actions._handoffs = None
    tracker = make_tracker(
        "mental_health_concern", text="wish i could sleep forever",
        slots=welcomed(), safety=POSSIBLE,
    )  # fmt: skip
    messages, _ = run(actions.ActionHandleConcern(), tracker)
    assert QUESTION_TEXT in messages[0]["text"]  # the question still goes out
    spool = HandoffQueue(spool=tmp_path / "spool.jsonl")
    (spooled,) = spool.spooled()
    assert spooled.level == "crisis"
