"""Multi-turn conversations with the real Rasa server and action server (REST)."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest
import requests

from bot.content.clinic import load_clinic
from bot.content.store import load_knowledge
from bot.db import engine_for

pytestmark = pytest.mark.integration


def test_the_first_reply_says_what_the_bot_is_then_answers(bot, sender):
    texts = bot.texts(sender, "can I donate blood while on accutane?")
    assert texts[0] == bot.web_text("welcome")
    assert "911" in texts[0]
    assert texts[-1] == bot.web_text("blood_donation")
    # The welcome is said once per conversation, not at every message.
    assert bot.web_text("welcome") not in bot.texts(sender, "does it make you burn?")


def test_a_follow_up_is_answered_in_the_context_of_the_last_topic(bot, sender):
    bot.texts(sender, "is it ok to give blood if im taking isotretinoin")
    assert bot.texts(sender, "and after I stop?") == [
        bot.web_text("blood_donation_after_treatment")
    ]
    bot.texts(sender, "my skin is so dry on absorica")
    assert bot.texts(sender, "what about for the lips?") == [
        bot.web_text("dryness_lips")
    ]


def test_a_conversation_across_topics_keeps_the_facts(bot, sender):
    assert bot.texts(sender, "hello") == [bot.web_text("welcome")]
    answers = [
        ("how often do i have to see the dermatologist", "monthly_visits"),
        ("what blood tests will they do", "blood_work"),
        ("do I need to use 2 kinds of birth control", "birth_control"),
        ("what sunscreen should I wear", "sun_protection"),
    ]
    for question, entry_id in answers:
        assert bot.texts(sender, question) == [bot.web_text(entry_id)], question
    assert bot.texts(sender, "thanks!") == [bot.web_text("thanks")]
    assert bot.texts(sender, "bye") == [bot.web_text("goodbye")]


def test_a_dose_question_goes_to_the_dermatologist_with_the_clinics_phone(bot, sender):
    texts = bot.texts(sender, "can I double my dose to clear up faster?")
    assert texts[-1] == bot.web_text("medical_decision")
    assert load_clinic().phone in texts[-1]


def test_low_confidence_offers_the_topics_and_the_clinics_contact(bot, sender):
    # Words the bot was never trained on fall back whatever the model's
    # confidences (bot/nlu/unknown_words.py); a typed "/nlu_fallback" is words
    # too (bot/channels/payloads.py).
    bot.texts(sender, "hi")
    reply = bot.say(sender, "blorf quazzle snerk")
    assert reply[-1]["text"] == bot.web_text("fallback")
    assert load_clinic().phone in reply[-1]["text"]
    assert {"/ask_what_is_isotretinoin", "/book_appointment"} <= {
        b["payload"] for b in reply[-1]["buttons"]
    }


@pytest.mark.parametrize(
    "gibberish",
    ["blorf quazzle snerk", "asdfgh jkl", "xkcd lorem ipsum", "qwpeoiru zmxn", "??!!"],
)
def test_gibberish_never_gets_a_topic_answer(bot, sender, gibberish):
    bot.texts(sender, "hi")
    texts = bot.texts(sender, gibberish)
    # The topic menu, or the polite decline where training data has such
    # keyboard-mashing under out_of_scope: never a topic's answer.
    assert texts in ([bot.web_text("fallback")], [bot.web_text("out_of_scope")])


def test_a_menu_button_asks_its_topic(bot, sender):
    bot.texts(sender, "hi")
    assert bot.texts(sender, "/ask_sun_protection") == [bot.web_text("sun_protection")]


def test_unrelated_chat_is_declined_politely(bot, sender):
    bot.texts(sender, "hey")
    assert bot.texts(sender, "who won the football game last night") == [
        bot.web_text("out_of_scope")
    ]


def test_a_wording_change_reaches_patients_without_retraining(
    bot, knowledge_files, sender
):
    knowledge_files.edit(
        "night_vision",
        answer="NEW WORDING: it can be harder to see in the dark. Drive with care.",
    )
    load_knowledge(engine_for(bot.database_url), knowledge_files.directory)
    try:
        texts = bot.texts(sender, "will accutane affect my vision at night?")
        assert texts[-1].startswith("NEW WORDING")
    finally:
        load_knowledge(engine_for(bot.database_url))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b'{"sender": "x"}',
        b'{"sender": "x", "message": 12}',
        b'{"sender": "x", "message": ""}',
        b'{"sender": "x", "message": "' + b"acne " * 40_000 + b'"}',
        bytes(range(256)),
    ],
    ids=["empty", "malformed", "no-message", "number", "blank", "huge", "binary"],
)
def test_bad_input_gets_a_clear_error_and_the_bot_keeps_answering(bot, body, sender):
    response = requests.post(
        f"{bot.rasa_url}/webhooks/rest/webhook",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code in (400, 413), response.text[:200]
    assert response.json()["error"]
    # The server is still there and still answering.
    assert bot.texts(sender, "what is isotretinoin")[-1] == bot.web_text("what_is")


def test_a_rest_client_cannot_claim_another_channel(bot, sender):
    """A body saying ``input_channel: sms`` still gets the web text, and the
    tracker store records the REST channel."""
    response = requests.post(
        f"{bot.rasa_url}/webhooks/rest/webhook",
        json={
            "sender": sender,
            "message": "can i donate blood on accutane",
            "input_channel": "sms",
        },
        timeout=60,
    )
    assert response.status_code == 200
    texts = [m["text"] for m in response.json()]
    assert texts[-1] == bot.web_text("blood_donation") != bot.sms_text("blood_donation")
    with sqlite3.connect(bot.work / "conversations.db") as db:
        channels = {
            json.loads(data).get("input_channel")
            for (data,) in db.execute(
                "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'",
                (sender,),
            )
        }
    assert channels == {"rest"}


def test_staff_see_what_patients_asked_that_the_bot_could_not_answer(bot, sender):
    bot.texts(sender, "hi")
    bot.texts(sender, "blorf quazzle snerk")
    bot.texts(sender, "can I double my dose to clear up faster?")
    bot.texts(sender, "what is accutane")
    summary = bot.staff("unanswered")
    assert "fell back" in summary and "to dermatologist" in summary
    assert "quazzle" not in summary  # counts only, without --messages
    shown = bot.staff("unanswered", "--messages")
    mine = [line for line in shown.splitlines() if sender[:10] in line]
    assert [line.split("|", 1)[1].strip() for line in mine] == [
        "blorf quazzle snerk", "can I double my dose to clear up faster?",
    ]  # fmt: skip


def test_a_missed_dose_gets_the_labels_rule_not_a_double_dose(bot, sender):
    bot.texts(sender, "hi")
    texts = bot.texts(sender, "can I double my dose if I missed one yesterday?")
    assert texts == [bot.web_text("missed_dose")]
    assert "Do not take two doses at once" in texts[0]


def test_a_clinicians_sign_off_is_recorded_and_listed(bot):
    before = bot.staff("sign-offs")
    assert "waxing" in before and "entries signed off" in before
    out = bot.staff("sign-off", "waxing", "laser", "--by", "Dr. Lee")
    assert "waxing: signed off by Dr. Lee" in out
    listed = bot.staff("sign-offs").splitlines()
    waxing = next(line for line in listed if line.startswith("waxing "))
    assert "signed off by Dr. Lee" in waxing
    missing = bot.staff("sign-offs", "--missing")
    assert not any(
        line.startswith(("waxing ", "laser ")) for line in missing.splitlines()
    )
    with pytest.raises(subprocess.CalledProcessError):
        bot.staff("sign-off", "no_such_entry", "--by", "Dr. Lee")
