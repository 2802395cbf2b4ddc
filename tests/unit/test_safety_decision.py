"""How the screen combines the reviewed phrases with the classifier's scores.

The phrases and the spaCy pipeline are the real ones; the classifier is
replaced by one that returns fixed scores, so each rule of the decision is
checked on purpose (the real classifier is measured by bench/safety_classifier.py
and checked end to end by the other tests).
"""

from __future__ import annotations

import pytest

from bot.safety.classifier import Thresholds
from bot.safety.screen import Level, SafetyScreen

LIMITS = Thresholds.from_file()


class FixedScores:
    thresholds = LIMITS

    def __init__(
        self, crisis: float = 0.0, concern: float = 0.0, neighbours: float = 0.0
    ) -> None:
        self._scores = {
            "crisis": crisis,
            "concern": concern,
            "ordinary": 1 - crisis - concern,
            "neighbours": neighbours,
        }

    def scores(self, text: str) -> dict[str, float]:
        return dict(self._scores)


@pytest.fixture(scope="module")
def screen_with():
    base = SafetyScreen.from_files()

    def build(
        crisis: float = 0.0, concern: float = 0.0, neighbours: float = 0.0
    ) -> SafetyScreen:
        base.classifier = FixedScores(crisis, concern, neighbours)
        return base

    return build


def outcome(screen: SafetyScreen, text: str):
    result = screen.screen(text)
    return result.level, result.informational


def test_a_crisis_phrase_is_a_crisis_whatever_the_classifier_says(screen_with):
    assert outcome(screen_with(crisis=0.0), "i want to kill myself") == (
        Level.CRISIS,
        False,
    )


def test_a_high_crisis_score_alone_is_a_crisis(screen_with):
    screen = screen_with(crisis=LIMITS.crisis, neighbours=LIMITS.crisis_support)
    assert outcome(screen, "everything feels pointless and heavy") == (
        Level.CRISIS,
        False,
    )
    sure = screen_with(crisis=LIMITS.crisis_sure, neighbours=LIMITS.crisis_sure_support)
    assert sure.screen("everything feels pointless and heavy").level is Level.CRISIS


def test_even_a_sure_score_with_no_crisis_example_near_gets_the_question(
    screen_with,
):
    """An innocent double dose told at length scored 0.98 with no crisis
    message among its nearest examples: it asks, with 988 and a handoff."""
    lonely = screen_with(crisis=0.99, neighbours=LIMITS.crisis_sure_support - 0.01)
    assert lonely.screen("took my evening dose twice by mistake").level is (
        Level.POSSIBLE
    )


def test_a_high_score_no_crisis_example_is_near_gets_the_question(screen_with):
    """The regression's confident false alarms have no crisis message among
    their nearest examples: short of sure, such a score asks."""
    unsupported = LIMITS.crisis_support - 0.01
    screen = screen_with(crisis=LIMITS.crisis_sure - 0.01, neighbours=unsupported)
    assert screen.screen("about to strangle this printer").level is Level.POSSIBLE


def test_a_fairly_high_score_among_crisis_examples_is_a_crisis(screen_with):
    """Two signals agree: the regression fairly sure and the nearest examples
    in meaning mostly crises. Either one short of its cut asks instead."""
    text = "everything feels pointless and heavy"
    near = screen_with(crisis=LIMITS.crisis_near, neighbours=LIMITS.crisis_near_vote)
    assert near.screen(text).level is Level.CRISIS
    lower = screen_with(
        crisis=LIMITS.crisis_near - 0.01, neighbours=LIMITS.crisis_near_vote
    )
    assert lower.screen(text).level is Level.POSSIBLE
    apart = screen_with(
        crisis=LIMITS.crisis_near, neighbours=LIMITS.crisis_near_vote - 0.01
    )
    assert apart.screen(text).level is Level.POSSIBLE


def test_an_unsure_crisis_score_alone_gets_the_direct_question(screen_with):
    screen = screen_with(crisis=LIMITS.possible)
    assert screen.screen("can i get my eyebrows waxed").level is Level.POSSIBLE
    below = screen_with(crisis=LIMITS.possible - 0.01)
    assert below.screen("can i get my eyebrows waxed").level is None


def test_a_passive_wish_gets_the_question_unless_the_classifier_agrees(screen_with):
    text = "wish i could sleep forever"
    assert screen_with(crisis=0.1).screen(text).level is Level.POSSIBLE
    assert screen_with(crisis=LIMITS.agree).screen(text).level is Level.CRISIS


def test_a_concern_with_a_risk_signal_gets_the_question(screen_with):
    text = "i feel depressed on accutane"
    assert screen_with(crisis=0.05, concern=0.9).screen(text).level is Level.CONCERN
    risky = screen_with(crisis=LIMITS.concern_risk, concern=0.6)
    assert risky.screen(text).level is Level.POSSIBLE


def test_a_concern_only_the_classifier_found_asks_with_a_risk_signal(screen_with):
    text = "i worked out every step, i just need the house to myself"  # no phrase
    calm = screen_with(crisis=LIMITS.concern_risk - 0.01, concern=LIMITS.concern)
    assert calm.screen(text).level is Level.CONCERN
    risky = screen_with(crisis=LIMITS.concern_risk, concern=LIMITS.mood - 0.3)
    assert risky.screen(text).level is Level.POSSIBLE


def test_a_question_about_the_medicine_read_as_a_mood_question_is_informational(
    screen_with,
):
    text = "how often do teens feel suicidal on this drug?"  # no informational phrase
    calm = screen_with(crisis=0.05, concern=LIMITS.informational)
    assert outcome(calm, text) == (Level.POSSIBLE, True)
    # The same words, but the classifier reads risk: a crisis.
    assert outcome(screen_with(crisis=0.5, concern=0.4), text) == (Level.CRISIS, False)
    # About the writer: always a crisis.
    mine = "am i suicidal because of accutane? i think about it every night"
    assert outcome(calm, mine)[0] is Level.CRISIS


def test_an_idiom_keeps_every_score_from_raising_an_alarm(screen_with):
    screen = screen_with(crisis=0.99)
    assert screen.screen("i killed myself laughing").level is None


def test_a_high_concern_score_alone_is_a_concern(screen_with):
    screen = screen_with(concern=LIMITS.concern)
    assert screen.screen("can i get my eyebrows waxed").level is Level.CONCERN


def test_crisis_words_told_then_a_question_asked_are_a_disclosure(screen_with):
    calm = screen_with(crisis=0.05, concern=0.95)
    told = "suicidal thoughts since week 3. should i stop taking it?"
    assert outcome(calm, told) == (Level.CRISIS, False)


def test_a_report_on_the_warning_needs_no_question_mark(screen_with):
    text = "for my psych class i'm writing a report on the suicide warnings."
    assert outcome(screen_with(crisis=0.05, concern=0.5), text) == (
        Level.POSSIBLE,
        True,
    )


def test_a_text_screened_again_is_not_scored_again(screen_with):
    """The channel and the NLU component both screen each message."""
    screen = screen_with(crisis=0.0)
    calls = []
    scores = screen.classifier.scores
    screen.classifier.scores = lambda text: calls.append(text) or scores(text)
    first = screen.screen("can i wax my eyebrows on accutane")
    assert screen.screen("can i wax my eyebrows on accutane") is first
    assert calls == ["can i wax my eyebrows on accutane"]
    screen_with(crisis=0.99)  # another classifier: verdicts start afresh
    assert screen.screen("can i wax my eyebrows on accutane") is not first


def test_an_idiom_cannot_silence_a_message_read_as_a_crisis(screen_with):
    """An idiom keeps the classifier out ("killed myself laughing") unless the
    classifier and the examples nearest in meaning both read a crisis."""
    text = "i killed myself laughing"
    sure = screen_with(crisis=LIMITS.crisis_sure, neighbours=0.9)
    assert sure.screen(text).level is Level.CRISIS
    near = screen_with(crisis=LIMITS.crisis_near, neighbours=LIMITS.crisis_near_vote)
    assert near.screen(text).level is Level.POSSIBLE
    apart = screen_with(crisis=0.99, neighbours=LIMITS.crisis_near_vote - 0.01)
    assert apart.screen(text).level is None
