"""The safety classifier on its own: cross-validated on its training data, the
regression sets under tests/data, and its time per message.

Cross-validation (5 folds, stratified) estimates how the classifier does on
messages it has not seen, and is what the thresholds in
``data/safety/classifier.yml`` are chosen on; the evaluation sets are never
used to tune them. For each crisis-score cut-off it prints the share of crisis
messages at or above it and the share of ordinary messages at or above it.

    .venv/bin/python bench/safety_classifier.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import settings  # noqa: E402
from bot.safety.classifier import (  # noqa: E402
    SafetyClassifier,
    Thresholds,
    build_pipeline,
    trained_pipeline,
    training_examples,
)
from bot.safety.text import canonical  # noqa: E402

CUTS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
REGRESSION_SETS = ("safety_messages.yml", "safety_holdout.yml", "safety_holdout_2.yml")


def cross_validate(examples: list[tuple[str, str]]) -> None:
    from sklearn.model_selection import StratifiedKFold

    texts = np.array([canonical(t) for t, _ in examples], dtype=object)
    labels = np.array([label for _, label in examples])
    crisis_scores = np.zeros(len(examples))
    concern_scores = np.zeros(len(examples))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=2026)
    for train, test in folds.split(texts, labels):
        pipeline = build_pipeline().fit(list(texts[train]), list(labels[train]))
        classes = list(pipeline.classes_)
        probabilities = pipeline.predict_proba(list(texts[test]))
        crisis_scores[test] = probabilities[:, classes.index("crisis")]
        concern_scores[test] = probabilities[:, classes.index("concern")]
    counts = {label: int((labels == label).sum()) for label in set(labels)}
    print(f"== 5-fold cross-validation on {len(examples)} examples {counts}")
    print("crisis-score cut: crisis >= cut | concern >= cut | ordinary >= cut")
    for cut in CUTS:
        shares = [
            (crisis_scores[labels == label] >= cut).mean()
            for label in ("crisis", "concern", "ordinary")
        ]
        print(f"  {cut:.2f}: " + " | ".join(f"{s:6.1%}" for s in shares))
    print("concern-score cut: concern >= cut | ordinary >= cut")
    for cut in CUTS:
        shares = [
            (concern_scores[labels == label] >= cut).mean()
            for label in ("concern", "ordinary")
        ]
        print(f"  {cut:.2f}: " + " | ".join(f"{s:6.1%}" for s in shares))


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


def timing(classifier: SafetyClassifier, examples: list[tuple[str, str]]) -> None:
    texts = [t for t, _ in examples[:500]]
    for text in texts[:20]:
        classifier.scores(text)
    times = []
    for text in texts:
        start = time.perf_counter()
        classifier.scores(text)
        times.append(time.perf_counter() - start)
    p99 = sorted(times)[int(len(times) * 0.99)]
    print(f"== time per message: median {statistics.median(times) * 1000:.2f} ms, "
          f"p99 {p99 * 1000:.2f} ms (target < 5 ms)")  # fmt: skip


def main() -> int:
    examples = training_examples()
    cross_validate(examples)
    classifier = SafetyClassifier(trained_pipeline(), Thresholds.from_file())
    regression(classifier)
    timing(classifier, examples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
