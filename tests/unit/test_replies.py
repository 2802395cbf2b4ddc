"""Composing a turn's messages (bot/content/replies.py): the welcome, the
crisis reminder and the staff line, without a tracker or an action server."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.content.answers import Answers, Reply, ReviewedFiles
from bot.content.replies import (
    Turn,
    close_intents,
    messages,
    when_content_fails,
    with_welcome_and_reminder,
)

ANSWER = Reply(
    text="Do not give blood while you take this medicine.",
    topic="blood_donation",
    entry_id="blood_donation",
    reviewed_on=dt.date(2026, 11, 1),
    buttons=[],
)


@pytest.fixture(scope="module")
def bot() -> Answers:
    return Answers(ReviewedFiles())


def texts(replies: list[Reply]) -> list[str]:
    return [r.text for r in replies]


def test_the_first_reply_of_a_conversation_starts_with_the_welcome(bot):
    turn = Turn(channel="rest", welcomed=False, after_crisis=False)
    replies = with_welcome_and_reminder(bot, [ANSWER], turn)
    assert replies[0].entry_id == "welcome"
    assert "automated helper" in replies[0].text and "911" in replies[0].text
    assert replies[1:] == [ANSWER]


def test_later_replies_come_without_the_welcome(bot):
    turn = Turn(channel="rest", welcomed=True, after_crisis=False)
    assert with_welcome_and_reminder(bot, [ANSWER], turn) == [ANSWER]


def test_after_a_crisis_every_answer_ends_with_911_and_988(bot):
    turn = Turn(channel="sms", welcomed=True, after_crisis=True)
    replies = with_welcome_and_reminder(bot, [ANSWER], turn)
    assert replies[0] == ANSWER
    assert "988" in replies[-1].text and "911" in replies[-1].text
    assert len(replies[-1].text) <= 320  # an SMS reminder stays short


def test_the_crisis_reply_comes_alone_even_first(bot):
    turn = Turn(channel="rest", welcomed=False, after_crisis=True)
    crisis = bot.for_trigger("crisis", "rest")
    assert with_welcome_and_reminder(bot, [crisis], turn, crisis=True) == [crisis]


def test_staff_see_what_answered_and_patients_do_not():
    staff = Turn(channel="cmdline", welcomed=True, after_crisis=False,
                 intent="ask_blood_donation", confidence=0.93)  # fmt: skip
    sent = messages([ANSWER], staff)
    assert sent[0] == {"text": ANSWER.text, "buttons": None}
    assert sent[-1]["text"].startswith("[staff]")
    assert "blood_donation" in sent[-1]["text"] and "0.93" in sent[-1]["text"]
    patient = Turn(channel="rest", welcomed=True, after_crisis=False)
    assert messages([ANSWER], patient) == [{"text": ANSWER.text, "buttons": None}]


def test_buttons_go_with_their_reply(bot):
    menu = bot.for_trigger("fallback", "rest")
    assert menu.buttons
    sent = messages([menu], Turn(channel="rest", welcomed=True, after_crisis=False))
    assert sent == [{"text": menu.text, "buttons": menu.buttons}]


def test_when_nothing_can_be_read_a_crisis_still_gets_911_and_988():
    crisis = when_content_fails(crisis=True)[0]["text"]
    assert "911" in crisis and "988" in crisis
    other = when_content_fails(crisis=False)[0]["text"]
    assert "911" in other and "call" in other.lower()


def ranking(*pairs: tuple[str, float]) -> list[dict]:
    return [{"name": name, "confidence": c} for name, c in pairs]


def test_two_close_topics_are_offered_as_did_you_mean(bot):
    close = close_intents(
        ranking(("nlu_fallback", 0.5), ("ask_laser", 0.34), ("ask_peels", 0.31))
    )
    assert close == ["ask_laser", "ask_peels"]
    reply = bot.did_you_mean(close, "rest")
    assert reply.topic == "did_you_mean"
    assert [b["payload"] for b in reply.buttons] == [
        "/ask_laser", "/ask_peels", "/ask_help",
    ]  # fmt: skip
    assert reply.buttons[0]["title"] == bot.topics.for_intent("ask_laser").label


@pytest.mark.parametrize(
    "pairs",
    [
        # unclear, not ambiguous: belief spread thin
        (("nlu_fallback", 0.5), ("ask_laser", 0.18), ("ask_peels", 0.15)),
        # one topic and small talk: nothing to choose between
        (("nlu_fallback", 0.5), ("ask_laser", 0.4), ("greet", 0.35)),
        # a crisis or mood reading is never offered as a button
        (("nlu_fallback", 0.5), ("crisis", 0.4), ("ask_dryness", 0.3)),
        (("nlu_fallback", 0.5), ("ask_laser", 0.45)),
    ],
)
def test_otherwise_the_full_menu(bot, pairs):
    close = close_intents(ranking(*pairs))
    assert close == [] or bot.did_you_mean(close, "rest") is None
