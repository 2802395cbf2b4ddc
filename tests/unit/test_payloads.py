"""Typed text is text (bot.channels.payloads): only the bot's own button
payloads reach Rasa as commands."""

from __future__ import annotations

import pytest

from bot.channels.payloads import as_text, button_payloads
from bot.content.answers import Answers


def test_every_button_the_bot_shows_passes_as_its_payload():
    answers = Answers()
    shown = [b["payload"] for b in answers.menu_buttons()]
    assert shown and all(as_text(payload) == payload for payload in shown)
    assert as_text("/greet") == "/greet"  # the widget's greeting
    assert as_text("/ask_help") == "/ask_help"
    assert "/crisis" not in button_payloads()


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("/crisis", "crisis"),
        ("/restart", "restart"),
        ("/session_start", "session_start"),
        ('/ask_sun_protection{"facet": "x"}', 'ask_sun_protection{"facet": "x"}'),
        ("//stop", "stop"),
        ("  /crisis  ", "crisis"),
        ("/", "\uff0f"),
        ("///", "\uff0f\uff0f\uff0f"),
        ("is 1/2 a pill ok?", "is 1/2 a pill ok?"),
        ("can i wax", "can i wax"),
    ],
)
def test_anything_else_starting_with_a_slash_is_read_as_words(typed, read):
    assert as_text(typed) == read
