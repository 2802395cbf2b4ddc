"""Patients cannot use Rasa's "/intent" syntax on any channel: typed text is
text (bot.channels.payloads), the bot's own buttons still work."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from test_crisis_path import Widget, handoffs_of

pytestmark = pytest.mark.integration


def stored_events(bot, sender: str) -> list[tuple[str, str | None]]:
    """(type, intent) of every event Rasa stored for the conversation."""
    with sqlite3.connect(bot.work / "conversations.db") as connection:
        return connection.execute(
            "SELECT type_name, intent_name FROM events WHERE sender_id = ? ORDER BY id",
            (sender,),
        ).fetchall()


def test_a_typed_crisis_intent_raises_no_handoff_over_rest(bot, sender):
    bot.texts(sender, "hi")
    bot.say(sender, "/crisis")
    assert handoffs_of(bot, sender) == []
    intents = {intent for kind, intent in stored_events(bot, sender) if kind == "user"}
    assert "crisis" not in intents


def test_a_typed_restart_keeps_the_conversation_and_its_crisis(bot, sender):
    bot.say(sender, "i want to kill myself")
    bot.say(sender, "/restart")
    bot.say(sender, "/session_start")
    kinds = [kind for kind, _ in stored_events(bot, sender)]
    assert "restart" not in kinds
    assert kinds.count("session_started") == 1  # the conversation's first only
    assert [h.level for h in handoffs_of(bot, sender)] == ["crisis"]


def test_the_bots_own_buttons_still_work(bot, sender):
    bot.texts(sender, "hi")
    assert bot.texts(sender, "/ask_sun_protection") == [bot.web_text("sun_protection")]
    user = [intent for kind, intent in stored_events(bot, sender) if kind == "user"]
    assert user[-1] == "ask_sun_protection"


def test_a_typed_crisis_intent_raises_no_handoff_in_the_widget(bot):
    widget = Widget(bot.rasa_url, bot.web_url)
    try:
        widget.send({"message": "/greet", "session_id": widget.session_id})
        replies = widget.say("/crisis")
    finally:
        widget.close()
    assert replies, "the widget got no reply"
    assert handoffs_of(bot, widget.session_id) == []
    intents = [i for k, i in stored_events(bot, widget.session_id) if k == "user"]
    assert intents[0] == "greet" and "crisis" not in intents


def test_a_typed_crisis_intent_raises_no_handoff_by_sms(bot):
    number = f"+1402555{uuid.uuid4().int % 10_000:04d}"
    assert bot.text_message(number, "/crisis").ok
    bot.wait_for(lambda: bot.twilio.to(number))
    sender_id = bot.sms_sender_id(number)
    assert handoffs_of(bot, sender_id) == []
    intents = [i for k, i in stored_events(bot, sender_id) if k == "user"]
    assert intents and "crisis" not in intents


def test_the_mood_button_reads_about_mood_without_a_handoff(bot, sender):
    bot.texts(sender, "hi")
    assert bot.texts(sender, "/mental_health_concern") == [bot.web_text("mood")]
    assert handoffs_of(bot, sender) == []
    # Telling us about one's mood still reaches the care team.
    bot.texts(sender, "i have been crying every day since i started")
    assert [h.level for h in handoffs_of(bot, sender)] == ["concern"]
