"""Cross-validation of the intent classifier's settings on the training data
only (data/nlu/): 5 stratified folds, for each cost C and embedding weight.
This is how bot/nlu/intent_classifier.py's defaults were chosen; the held-out
and blind sets play no part in it.

    .venv/bin/python bench/intent_cv.py

Prints accuracy (top intent) and "confident and right" (top intent right with
a probability of at least 0.5, the fallback threshold in config.yml).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.nlu import sentence_encoder  # noqa: E402
from bot.nlu.intent_classifier import IntentModel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GRID_C = (3.0, 10.0, 30.0, 100.0)
GRID_WEIGHT = (1.0, 2.0)
THRESHOLD = 0.5


def main() -> int:
    from rasa.shared.nlu.training_data.loading import load_data
    from sklearn.model_selection import StratifiedKFold

    examples = [e for e in load_data(str(ROOT / "data" / "nlu")).intent_examples]
    texts = [e.get("text") for e in examples]
    intents = np.array([e.get("intent") for e in examples])
    sentence_encoder.encode(texts)  # once: every fold reuses the vectors
    folds = list(
        StratifiedKFold(5, shuffle=True, random_state=2026).split(texts, intents)
    )
    print(f"{len(texts)} training examples, {len(set(intents))} intents, 5 folds")
    print(f"{'C':>6} {'weight':>6} {'accuracy':>9} {'confident+right':>16}")
    for c in GRID_C:
        for weight in GRID_WEIGHT:
            right = confident = 0
            for train, test in folds:
                config = {"C": c, "embedding_weight": weight, "max_iter": 3000}
                model = IntentModel(config).fit(
                    [texts[i] for i in train], intents[train]
                )
                ranked = model.rankings([texts[i] for i in test])
                for i, ranking in zip(test, ranked, strict=True):
                    hit = ranking[0]["name"] == intents[i]
                    right += hit
                    confident += hit and ranking[0]["confidence"] >= THRESHOLD
            n = len(texts)
            print(f"{c:6.0f} {weight:6.1f} {right / n:9.1%} {confident / n:16.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
