"""NLU accuracy on the held-out test set (tests/data/nlu_test.yml).

Loads the current trained model (the one `make train` made for these inputs),
parses every held-out message and prints intent accuracy, macro-F1, the
fallback rate, the weakest intents, the most frequent confusions, entity
accuracy and parse time. Target: intent accuracy >= 95%.

    .venv/bin/python bench/nlu_accuracy.py [--model PATH] [--test-set PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import settings  # noqa: E402
from bot.content.replies import close_intents  # noqa: E402
from bot.run import training

TARGET_ACCURACY = 0.95


async def evaluate(model: Path, test_set: Path) -> int:
    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.utils.log_utils import configure_structlog
    from sklearn.metrics import f1_score

    configure_structlog(logging.WARNING)  # Rasa's debug lines carry the text
    agent = Agent.load(str(model))
    examples = load_data(str(test_set)).intent_examples
    synonyms = load_data(str(settings.DATA_DIR / "nlu")).entity_synonyms
    gold, predicted, top_intent, timings = [], [], [], []
    entity_total = entity_right = asked = 0
    for example in examples:
        start = time.perf_counter()
        parsed = await agent.parse_message(example.get("text"))
        timings.append(time.perf_counter() - start)
        gold.append(example.get("intent"))
        predicted.append(parsed["intent"]["name"])
        ranking = [r["name"] for r in parsed.get("intent_ranking") or []]
        top_intent.append(next((r for r in ranking if r != "nlu_fallback"), None))
        if parsed["intent"]["name"] == "nlu_fallback":
            close = close_intents(parsed.get("intent_ranking") or [])
            asked += example.get("intent") in close
        expected = {
            (e["entity"], synonyms.get(str(e["value"]).lower(), e["value"]))
            for e in example.get("entities") or []
        }
        found = {(e["entity"], e["value"]) for e in parsed.get("entities") or []}
        entity_total += len(expected)
        entity_right += len(expected & found)

    right = sum(g == p for g, p in zip(gold, predicted, strict=True))
    accuracy = right / len(gold)
    labels = sorted(set(gold))
    macro_f1 = f1_score(gold, predicted, labels=labels, average="macro")
    per_intent = f1_score(gold, predicted, labels=labels, average=None)
    fallback = sum(p == "nlu_fallback" for p in predicted)
    wrong = sum(
        g != p and p != "nlu_fallback" for g, p in zip(gold, predicted, strict=True)
    )
    top_right = sum(g == t for g, t in zip(gold, top_intent, strict=True))
    confusions = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)

    print(f"model:            {model.name}")
    print(f"test set:         {test_set} ({len(gold)} messages, {len(labels)} intents)")
    print(f"intent accuracy:  {accuracy:.1%} ({right}/{len(gold)})"
          f"  target >= {TARGET_ACCURACY:.0%}")  # fmt: skip
    print(f"macro-F1:         {macro_f1:.3f}")
    print(f"fallback rate:    {fallback / len(gold):.1%} ({fallback} messages "
          f"not answered; {asked} of them asked \"Did you mean...?\" with the "
          "right topic among the two)")  # fmt: skip
    print(f"wrong answers:    {wrong / len(gold):.1%} ({wrong} messages given "
          "another intent with confidence)")  # fmt: skip
    print(f"top intent right: {top_right / len(gold):.1%} (if there were no "
          "fallback threshold)")  # fmt: skip
    if entity_total:
        print(f"entity recall:    {entity_right / entity_total:.1%} "
              f"({entity_right}/{entity_total} drug/facet values)")  # fmt: skip
    print(f"parse time:       median {statistics.median(timings) * 1000:.1f} ms, "
          f"p95 {sorted(timings)[int(len(timings) * 0.95)] * 1000:.1f} ms")  # fmt: skip
    print("weakest intents (F1):")
    for f1, label in sorted(zip(per_intent, labels, strict=True))[:8]:
        print(f"  {f1:.2f}  {label}")
    print("most frequent confusions (expected -> predicted):")
    for (g, p), count in confusions.most_common(40):
        print(f"  {count}  {g} -> {p}")
    return 0 if accuracy >= TARGET_ACCURACY else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument(
        "--test-set",
        type=Path,
        default=settings.PROJECT_ROOT / "tests/data/nlu_test.yml",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model = args.model or training.model_path()
    if not model.exists():
        print(f"no trained model at {model}: run `make train`", file=sys.stderr)
        return 2
    return asyncio.run(evaluate(model, args.test_set))


if __name__ == "__main__":
    sys.exit(main())
