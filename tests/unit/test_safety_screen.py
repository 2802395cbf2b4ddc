"""The safety screen on the reviewed message sets and the known pitfalls."""

from __future__ import annotations

import pytest
import yaml

from bot import settings
from bot.safety import Level, default_screen


def load(name: str) -> dict:
    return yaml.safe_load((settings.PROJECT_ROOT / "tests/data" / name).read_text())


# The development set and the first held-out set (both tuned on); the second
# held-out set is measured by bench/safety.py only.
DEV, HOLDOUT = load("safety_messages.yml"), load("safety_holdout.yml")
SETS = {key: DEV[key] + HOLDOUT.get(key, []) for key in DEV}


def level(text: str) -> Level | None:
    return default_screen().screen(text).level


@pytest.mark.parametrize("text", [i["text"] for i in SETS["crisis"]])
def test_every_crisis_message_is_a_crisis(text):
    assert level(text) is Level.CRISIS


@pytest.mark.parametrize("text", [i["text"] for i in SETS["concern"]])
def test_every_concern_message_is_flagged(text):
    assert level(text) in (Level.CONCERN, Level.CRISIS)


@pytest.mark.parametrize("text", [i["text"] for i in SETS["ordinary"]])
def test_no_ordinary_message_is_a_crisis(text):
    assert level(text) is not Level.CRISIS


@pytest.mark.parametrize(
    "text", [i["text"] for i in SETS["informational_crisis_words"]]
)
def test_a_question_naming_suicide_is_treated_as_a_crisis(text):
    # Policy (data/safety/phrases.yml): it may be a veiled disclosure.
    assert level(text) is Level.CRISIS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Feeling SUICIDAL", Level.CRISIS),  # the lemma table is case-sensitive
        ("self-harm", Level.CRISIS),  # three tokens
        ("self harm", Level.CRISIS),
        ("i\u2019ve been cutting", Level.CRISIS),  # curly apostrophe
        ("killing myself", Level.CRISIS),  # inflection via lemmas
        ("kill myself", Level.CRISIS),
        ("my son said he wants to kill himself", Level.CRISIS),  # any reflexive
        ("i killed myself laughing", None),  # idiom cancels the lemma match
        ("he kills himself at the gym every day", None),
        ("my skin is killing me", None),
        ("I'm dying to know if I can wax", None),
        ("this dryness makes me want to scream", None),
        ("suicidle", Level.CRISIS),
        ("kms", Level.CRISIS),
        ("unalive", Level.CRISIS),
        ("i feel depressed on accutane", Level.CONCERN),
        ("can i donate blood", None),
        ("", None),
        ("   ", None),
    ],
)
def test_pitfalls_are_decided_on_purpose(text, expected):
    assert level(text) is expected


def test_the_result_names_the_phrases_that_matched():
    result = default_screen().screen("i want to die, i am so depressed")
    assert result.level is Level.CRISIS and result.flagged
    assert "want to die" in result.phrases
