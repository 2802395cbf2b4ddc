"""The safety classifier on its own: cross-validated on its training data, the
regression sets under tests/data, and its time per message.

Cross-validation (5 folds, stratified) estimates how the classifier does on
messages it has not seen, and is what the thresholds in
``data/safety/classifier.yml`` are chosen on; the evaluation sets are never
used to tune them. For each crisis-score cut-off it prints the share of crisis
messages at or above it and the share of ordinary messages at or above it, and
for chosen false-alarm rates on the ordinary messages the cut that gives it
and the crisis messages caught there.

    .venv/bin/python bench/safety_classifier.py
    .venv/bin/python bench/safety_classifier.py --compare

``--compare`` runs the same folds with and without the sentence vector (the
comparison on which the vector was adopted).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import settings  # noqa: E402
from bot.safety.classifier import (  # noqa: E402
    NeighbourVote,
    SafetyClassifier,
    Thresholds,
    build_pipeline,
    trained_pipeline,
    training_examples,
)
from bot.safety.text import canonical  # noqa: E402

CUTS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.85, 0.9,
        0.92, 0.95)  # fmt: skip
# Shares of ordinary messages scoring at or above a cut: the false alarms.
FALSE_ALARM_RATES = (0.001, 0.002, 0.005, 0.01, 0.015)
# Earlier evaluation sets, scored already: regression checks, not tuning data.
REGRESSION_SETS = (
    "safety_messages.yml", "safety_holdout.yml", "safety_holdout_2.yml",
    *(f"safety_blind_2026_12{s}.yml"
      for s in ("", "_b", "_c", "_d", "_e", "_f", "_g", "_h", "_i", "_j", "_k", "_l",
                "_m", "_n", "_o", "_p", "_q", "_r", "_s",
                "_t", "_u")),
)  # fmt: skip


def cross_validate(
    examples: list[tuple[str, str]], embedding_weight: float = 1.0
) -> None:
    from sklearn.model_selection import StratifiedKFold

    texts = np.array([canonical(t) for t, _ in examples], dtype=object)
    labels = np.array([label for _, label in examples])
    crisis_scores = np.zeros(len(examples))
    concern_scores = np.zeros(len(examples))
    votes = np.zeros(len(examples))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=2026)
    for train, test in folds.split(texts, labels):
        pipeline = build_pipeline(embedding_weight).fit(
            list(texts[train]), list(labels[train])
        )
        classes = list(pipeline.classes_)
        probabilities = pipeline.predict_proba(list(texts[test]))
        crisis_scores[test] = probabilities[:, classes.index("crisis")]
        concern_scores[test] = probabilities[:, classes.index("concern")]
        if embedding_weight:
            from bot.nlu import sentence_encoder

            vote = NeighbourVote().fit(list(texts[train]), list(labels[train]))
            vectors = sentence_encoder.encode(list(texts[test]))
            votes[test] = [vote.vote(vector) for vector in vectors]
    counts = {label: int((labels == label).sum()) for label in set(labels)}
    vector = "with" if embedding_weight else "without"
    print(f"== 5-fold cross-validation on {len(examples)} examples {counts}, "
          f"{vector} the sentence vector")  # fmt: skip
    print("crisis-score cut: crisis >= cut | concern >= cut | ordinary >= cut")
    for cut in CUTS:
        shares = [
            (crisis_scores[labels == label] >= cut).mean()
            for label in ("crisis", "concern", "ordinary")
        ]
        print(f"  {cut:.2f}: " + " | ".join(f"{s:6.1%}" for s in shares))
    ordinary = np.sort(crisis_scores[labels == "ordinary"])[::-1]
    print("ordinary false-alarm rate: crisis-score cut, crisis >= cut, concern >= cut")
    for rate in FALSE_ALARM_RATES:
        cut = ordinary[max(int(rate * len(ordinary)) - 1, 0)] + 1e-9
        caught = (crisis_scores[labels == "crisis"] >= cut).mean()
        concern = (crisis_scores[labels == "concern"] >= cut).mean()
        print(
            f"  {rate:5.1%}: cut {cut:.3f}, crisis {caught:6.1%}, "
            f"concern {concern:6.1%}"
        )
    mood = crisis_scores + concern_scores  # anything but ordinary
    print("mood-score (crisis + concern) cut: concern >= cut | ordinary >= cut")
    for cut in CUTS:
        shares = [
            (mood[labels == label] >= cut).mean() for label in ("concern", "ordinary")
        ]
        print(f"  {cut:.2f}: " + " | ".join(f"{s:6.1%}" for s in shares))
    if embedding_weight:
        possible = Thresholds.from_file().possible
        below = crisis_scores < possible
        print(
            f"neighbour-vote cut: crisis >= cut | of them scored under the "
            f"question cut {possible} | ordinary >= cut | of them under it"
        )
        for cut in (0.5, 0.6, 0.7, 0.8, 0.9):
            near = votes >= cut
            shares = [
                (near & mask)[labels == label].mean()
                for label in ("crisis", "ordinary")
                for mask in (near, below)
            ]
            print(f"  {cut:.2f}: " + " | ".join(f"{s:6.1%}" for s in shares))
    if embedding_weight:
        crisis_replies(crisis_scores, votes, labels)
    print("concern-score cut: concern >= cut | ordinary >= cut")
    for cut in CUTS:
        shares = [
            (concern_scores[labels == label] >= cut).mean()
            for label in ("concern", "ordinary")
        ]
        print(f"  {cut:.2f}: " + " | ".join(f"{s:6.1%}" for s in shares))


def crisis_replies(crisis_scores, votes, labels) -> None:
    """The classifier's own crisis reply (no phrase), as the screen gives it,
    for the neighbour-support cut-offs around the reviewed ones."""
    limits = Thresholds.from_file()
    print("classifier-alone crisis reply, by (crisis_support, crisis_sure_support):"
          " crisis | ordinary (count)")  # fmt: skip
    near = (crisis_scores >= limits.crisis_near) & (votes >= limits.crisis_near_vote)
    for support in (0.1, 0.2, 0.3, 0.4):
        for sure_support in (0.0, 0.1, 0.2):
            sure = (crisis_scores >= limits.crisis_sure) & (votes >= sure_support)
            reply = near | (
                (crisis_scores >= limits.crisis) & (sure | (votes >= support))
            )
            shown = [reply[labels == label] for label in ("crisis", "ordinary")]
            print(f"  ({support:.1f}, {sure_support:.1f}): {shown[0].mean():6.1%} | "
                  f"{shown[1].mean():6.2%} ({int(shown[1].sum())})")  # fmt: skip


def regression(classifier: SafetyClassifier) -> None:
    limits = classifier.thresholds
    for name in REGRESSION_SETS:
        path = settings.PROJECT_ROOT / "tests" / "data" / name
        sets = yaml.safe_load(path.read_text(encoding="utf-8"))
        print(f"== {name} (classifier alone, thresholds {limits})")
        for level in ("crisis", "concern", "ordinary"):
            items = sets.get(level) or []
            scores = [classifier.scores(i["text"]) for i in items]
            crisis = sum(s["crisis"] >= limits.crisis for s in scores)
            possible = sum(
                limits.possible <= s["crisis"] < limits.crisis for s in scores
            )
            concern = sum(
                s["crisis"] < limits.possible and s["concern"] >= limits.concern
                for s in scores
            )
            print(f"  {level:<8} n={len(items):>3}: crisis {crisis}, possible "
                  f"{possible}, concern {concern}")  # fmt: skip


def _times(function, texts: list[str]) -> tuple[float, float]:
    times = []
    for text in texts:
        start = time.perf_counter()
        function(text)
        times.append(time.perf_counter() - start)
    p99 = sorted(times)[int(len(times) * 0.99)]
    return statistics.median(times) * 1000, p99 * 1000


def timing(classifier: SafetyClassifier) -> None:
    """The classifier's own time, and the sentence vector's: the NLU pipeline
    computes that vector once per message for the intent classifier and the
    screen (the encoder caches it), so it is shared, not added."""
    from bot.nlu import sentence_encoder

    # Messages the encoder has not seen (the training data is in its cache).
    texts = [
        f"message {i}: my lips are peeling, is day {i} normal?" for i in range(300)
    ]
    encode = _times(lambda t: sentence_encoder.encode([canonical(t)]), texts)
    own = _times(classifier.scores, texts)  # the vectors are cached now
    print(f"== time per message: classifier {own[0]:.2f} ms median, {own[1]:.2f} ms "
          f"p99 (target < 5 ms); the sentence vector, computed once per message "
          f"for the NLU pipeline and the screen: {encode[0]:.1f} ms median, "
          f"{encode[1]:.1f} ms p99")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--compare", action="store_true",
        help="cross-validate with and without the sentence vector, same folds",
    )  # fmt: skip
    args = parser.parse_args(argv)
    examples = training_examples()
    if args.compare:
        cross_validate(examples, embedding_weight=0.0)
    cross_validate(examples)
    classifier = SafetyClassifier(trained_pipeline(), Thresholds.from_file())
    regression(classifier)
    timing(classifier)
    return 0


if __name__ == "__main__":
    sys.exit(main())
