"""The safety classifier itself: its fast scorer gives scikit-learn's numbers,
and a classifier that cannot load or fails leaves the phrases screening."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from bot.nlu import sentence_encoder
from bot.safety import classifier as safety_classifier
from bot.safety import screen as safety_screen
from bot.safety.classifier import SafetyClassifier, Thresholds, trained_pipeline
from bot.safety.screen import Level, SafetyScreen
from bot.safety.text import canonical

TEXTS = [
    "",
    "ya",
    "my lips are bleeding and peeling, is that normal on week 3?",
    "i don't see the point in waking up anymore",
    "this acne is killing me lol",
    "i w a n t  t o  d i e",
    "thank you to the whole team for everything",
    "me siento atrapada y ya no quiero vivir",
    "ｋｍｓ 💀💀",
]


@pytest.fixture(scope="module")
def pipeline():
    return trained_pipeline()


def test_the_fast_scores_are_scikit_learns_numbers(pipeline):
    fast = SafetyClassifier(pipeline, Thresholds.from_file())
    texts = [canonical(t) for t in TEXTS]
    expected = pipeline.predict_proba(texts)
    for text, row in zip(TEXTS, expected, strict=True):
        scores = fast.scores(text)
        got = [scores[label] for label in pipeline.classes_]
        np.testing.assert_allclose(got, row, rtol=1e-5, atol=1e-6)


def test_the_sentence_vector_is_one_of_the_features(pipeline):
    names = [name for name, _ in pipeline.named_steps["features"].transformer_list]
    assert names == ["chars", "words", "meaning"]
    coefficients = pipeline.named_steps["model"].coef_
    vector_part = coefficients[:, -sentence_encoder.DIMENSIONS :]
    assert np.abs(vector_part).sum() > 0  # the regression uses it


def test_the_neighbour_vote_is_the_weighted_crisis_share_of_the_ten_nearest():
    vote = safety_classifier.NeighbourVote(k=3).fit(
        ["i want to die", "ending it all tonight", "my lips are peeling",
         "refill please", "kms"],
        ["crisis", "crisis", "ordinary", "ordinary", "crisis"],
    )  # fmt: skip
    vector = sentence_encoder.encode(["i wanna die tonight"])[0]
    similarity = vote.vectors_ @ vector
    nearest = np.argsort(-similarity)[:3]
    weights = np.clip(similarity[nearest] - vote.floor, 0, None)
    expected = weights @ vote.crisis_[nearest] / weights.sum()
    assert vote.vote(vector) == pytest.approx(expected, rel=1e-5)
    assert (
        vote.vote(vector)
        > 0.5
        > vote.vote(sentence_encoder.encode(["can i get a refill"])[0])
    )


@pytest.mark.parametrize(
    "mashing", ["qwpeoiru zmxn", "blorf quazzle snerk", "asdfgh jkl"]
)
def test_keyboard_mashing_is_near_nothing_and_gets_no_vote(pipeline, mashing):
    scores = SafetyClassifier(pipeline, Thresholds.from_file()).scores(mashing)
    assert scores["neighbours"] < Thresholds.from_file().neighbours


def test_a_vote_over_fewer_examples_than_k_uses_them_all():
    # floor -1: every example weighs (similarity + 1 > 0), so both vote
    vote = safety_classifier.NeighbourVote(k=10, floor=-1.0).fit(
        ["i want to die", "my lips are peeling"], ["crisis", "ordinary"]
    )
    assert 0.0 < vote.vote(sentence_encoder.encode(["i want to die"])[0]) < 1.0


def test_the_neighbour_vote_alone_asks_the_direct_question(pipeline):
    """With the regression's cuts out of reach, a message no phrase matches
    gets the question from the vote alone, and nothing without it."""
    limits = Thresholds.from_file()
    text = "everything is ready, just waiting for the house to be quiet"
    unreachable = dataclasses.replace(limits, crisis=1.01, possible=1.01, mood=2.1,
                                      concern=1.01, crisis_near=1.01)  # fmt: skip
    asking = SafetyScreen.from_files(classifier=SafetyClassifier(pipeline, unreachable))
    assert asking.phrase_level(text).level is None
    assert asking.classifier.scores(text)["neighbours"] >= limits.neighbours
    assert asking.screen(text).level is Level.POSSIBLE
    deaf = dataclasses.replace(unreachable, neighbours=1.01)
    silent = SafetyScreen.from_files(classifier=SafetyClassifier(pipeline, deaf))
    assert silent.screen(text).level is None
    ordinary = asking.classifier.scores("can i move my appointment to friday")
    assert ordinary["neighbours"] < limits.neighbours


def test_the_thresholds_are_ordered():
    limits = Thresholds.from_file()
    assert 0 < limits.possible < limits.crisis < limits.crisis_sure < 1
    assert limits.possible < limits.crisis_near <= limits.crisis
    assert limits.concern_risk < limits.possible


def test_no_encoder_means_phrases_only_from_start_up(monkeypatch):
    def missing():
        raise sentence_encoder.EncoderUnavailable("no model files")

    monkeypatch.setattr(sentence_encoder, "default_encoder", missing)
    safety_classifier.default_classifier.cache_clear()  # a fresh start-up
    try:
        with pytest.raises(sentence_encoder.EncoderUnavailable):
            safety_classifier.default_classifier()
        assert safety_screen._default_classifier() is None
    finally:
        safety_classifier.default_classifier.cache_clear()


class Broken:
    thresholds = Thresholds.from_file()

    def scores(self, text: str) -> dict[str, float]:
        raise RuntimeError(f"failed on {text}")


def test_a_failing_classifier_leaves_the_phrases_screening(caplog):
    screen = SafetyScreen.from_files(classifier=Broken())
    assert screen.screen("i want to kill myself tonight").level is Level.CRISIS
    assert screen.screen("my lips are so dry").level is None
    # The failure is logged without the message.
    assert "kill myself" not in caplog.text
    assert "RuntimeError" in caplog.text


def test_the_set_up_command_writes_a_file_every_process_can_load(tmp_path):
    # `make setup` trains with `python -m bot.safety.classifier`: what it
    # stores must load in the servers, or the screen silently loses its
    # learned layer.
    run = [sys.executable, "-m", "bot.safety.classifier", "train"]
    subprocess.run([*run, "--cache-dir", str(tmp_path)], check=True, timeout=600)
    load = (
        "import sys, pathlib; from bot.safety.classifier import trained_pipeline; "
        "p = trained_pipeline(pathlib.Path(sys.argv[1])); "
        "print(p.predict_proba(['my lips are dry']).shape)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", load, str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    assert loaded.stdout.strip() == "(1, 3)"
    assert len(list(tmp_path.glob("classifier-*.joblib"))) == 1
