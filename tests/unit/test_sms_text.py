"""SMS replies: keywords, numbered buttons, plain text and splitting."""

from __future__ import annotations

import pytest

from bot.channels.sms.format import MAX_PARTS, PART_CHARS, choice, compose, plain, split
from bot.channels.sms.keywords import Keyword, keyword

BUTTONS = [
    {"title": "Side effects", "payload": "/ask_side_effects"},
    {"title": "Book a visit", "payload": "/book_appointment"},
]


@pytest.mark.parametrize(
    "body",
    ["STOP", "stop", " Stop. ", "STOPALL", "unsubscribe", "Cancel", "END", "quit!"],
)
def test_the_opt_out_words_are_keywords_alone(body):
    assert keyword(body, opted_out=False) is Keyword.OPT_OUT


@pytest.mark.parametrize(
    "body",
    ["I want to stop taking it", "can I stop?", "when does it end", "stop the pills"],
)
def test_a_sentence_with_a_keyword_in_it_is_a_question_for_the_bot(body):
    assert keyword(body, opted_out=False) is None
    assert keyword(body, opted_out=True) is None


@pytest.mark.parametrize("body", ["START", "unstop", "Start"])
def test_start_and_unstop_opt_in_from_anyone(body):
    assert keyword(body, opted_out=True) is Keyword.OPT_IN
    assert keyword(body, opted_out=False) is Keyword.OPT_IN


def test_yes_opts_in_only_an_opted_out_number():
    assert keyword("yes", opted_out=True) is Keyword.OPT_IN
    assert keyword("Yes", opted_out=False) is None


def test_help_is_a_keyword():
    assert keyword("help", opted_out=False) is Keyword.HELP
    assert keyword("help me with my dry lips", opted_out=False) is None


def test_buttons_become_a_numbered_list_without_their_payloads():
    reply = compose([{"text": "Pick a topic.", "buttons": BUTTONS}])
    assert reply.text == (
        "Pick a topic.\n\nReply 1 for Side effects\nReply 2 for Book a visit"
    )
    assert "/ask" not in reply.text and "/book" not in reply.text
    assert reply.buttons == BUTTONS


def test_a_number_selects_its_buttons_payload():
    assert choice("1", BUTTONS) == "/ask_side_effects"
    assert choice(" 2. ", BUTTONS) == "/book_appointment"
    assert choice("#2", BUTTONS) == "/book_appointment"
    assert choice("3", BUTTONS) is None
    assert choice("0", BUTTONS) is None
    assert choice("1 more question", BUTTONS) is None
    assert choice("1", []) is None


def test_markup_never_reaches_the_patient():
    text = plain("**Call** <b>us</b> at [our site](https://example.com/book) `now`")
    assert text == "Call us at our site (https://example.com/book) now"


def test_messages_are_joined_in_the_order_the_bot_sent_them():
    reply = compose([{"text": "First."}, {"image": "x.png"}, {"text": "Second."}])
    assert reply.text == "First.\n\nSecond."
    assert reply.buttons == []


def test_a_short_reply_is_one_message():
    assert split("Hello. How are you?") == ["Hello. How are you?"]


def test_a_long_reply_is_cut_between_sentences_in_order():
    sentences = [f"Sentence number {i} says something useful." for i in range(30)]
    text = " ".join(sentences)
    parts = split(text)
    assert 1 < len(parts) <= MAX_PARTS
    assert all(len(p) <= PART_CHARS for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert text.startswith(" ".join(parts))


def test_what_does_not_fit_in_three_messages_is_left_out_from_the_end():
    text = " ".join(f"Fact {i} is here." for i in range(400))
    parts = split(text)
    assert len(parts) == MAX_PARTS
    assert parts[0].startswith("Fact 0 is here.")


def test_a_sentence_longer_than_a_message_is_cut_between_words():
    word_soup = " ".join(["word"] * 300)
    parts = split(word_soup)
    assert all(len(p) <= PART_CHARS for p in parts)
    assert all(not p.startswith(" ") and "wor d" not in p for p in parts)


def test_lines_of_a_numbered_list_stay_on_their_own_lines():
    reply = compose([{"text": "Pick one.", "buttons": BUTTONS}])
    assert split(reply.text) == [reply.text]
