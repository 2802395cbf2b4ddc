"""Training time and held-out intent accuracy of NLU pipeline options.

Each option is an NLU pipeline: ``current`` is config.yml's; the DIET options
change the DIET pipeline config.yml had before issue 9 (``DIET_PIPELINE``
below). Policies do not matter here: only the NLU model is trained. For
each one this trains ``rasa train nlu`` from scratch (no graph cache) into a
temporary directory, times it, and scores the model on the held-out set
with ``bench/nlu_accuracy.py``. One training at a time: 2 cores.

    .venv/bin/python bench/training_options.py [OPTION ...] [--test-set PATH]

With no OPTION, every option below is measured (this takes a while).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

Pipeline = list[dict]


def component(pipeline: Pipeline, name: str) -> dict:
    return next(c for c in pipeline if c["name"] == name)


def diet(**changes) -> Callable[[Pipeline], Pipeline]:
    def change(pipeline: Pipeline) -> Pipeline:
        component(pipeline, "DIETClassifier").update(changes)
        return pipeline

    return change


def char_ngrams(low: int, high: int, **extra) -> Callable[[Pipeline], Pipeline]:
    def change(pipeline: Pipeline) -> Pipeline:
        for c in pipeline:
            if c.get("analyzer") == "char_wb":
                c.update(min_ngram=low, max_ngram=high, **extra)
        return pipeline

    return change


def both(*changes: Callable[[Pipeline], Pipeline]) -> Callable[[Pipeline], Pipeline]:
    def change(pipeline: Pipeline) -> Pipeline:
        for one in changes:
            pipeline = one(pipeline)
        return pipeline

    return change


def logistic_regression(pipeline: Pipeline) -> Pipeline:
    """Intents by Rasa's LogisticRegressionClassifier; the facet and drug
    entities by a CRF (DIET gone)."""
    at = pipeline.index(component(pipeline, "DIETClassifier"))
    pipeline[at : at + 1] = [
        {"name": "LogisticRegressionClassifier", "max_iter": 200, "random_state": 2026},
        {"name": "CRFEntityExtractor"},
    ]
    return pipeline


# config.yml's pipeline before issue 9: DIET with 2 transformer layers of 256
# units, 100 epochs, on word and character n-gram counts.
DIET_PIPELINE: Pipeline = [
    {"name": "SpacyNLP", "model": "var/spacy/en_isotretinoin_lookup",
     "case_sensitive": False},
    {"name": "SpacyTokenizer"},
    {"name": "RegexFeaturizer"},
    {"name": "LexicalSyntacticFeaturizer"},
    {"name": "CountVectorsFeaturizer"},
    {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1,
     "max_ngram": 4},
    {"name": "DIETClassifier", "epochs": 100, "constrain_similarities": True,
     "random_seed": 2026},
    {"name": "EntitySynonymMapper"},
    {"name": "FallbackClassifier", "threshold": 0.5, "ambiguity_threshold": 0.05},
    {"name": "bot.nlu.unknown_words.UnknownWordsFallback"},
    {"name": "bot.nlu.safety_screen.SafetyScreenClassifier"},
]  # fmt: skip
CURRENT = "current"

OPTIONS: dict[str, Callable[[Pipeline], Pipeline]] = {
    CURRENT: lambda p: p,
    "diet-2-layers-100-epochs": lambda p: p,
    "diet-0-layers": diet(number_of_transformer_layers=0),
    "diet-0-layers-40-epochs": diet(number_of_transformer_layers=0, epochs=40),
    "diet-1-layer-128-40-epochs": diet(
        number_of_transformer_layers=1, transformer_size=128, epochs=40
    ),
    "diet-0-layers-40-epochs-char-2-4": both(
        diet(number_of_transformer_layers=0, epochs=40), char_ngrams(2, 4)
    ),
    "diet-0-layers-40-epochs-min-df-2": both(
        diet(number_of_transformer_layers=0, epochs=40), char_ngrams(1, 4, min_df=2)
    ),
    "diet-40-epochs": diet(epochs=40),
    "diet-2-layers-128-50-epochs": diet(transformer_size=128, epochs=50),
    "diet-2-layers-128-50-epochs-batch-128": diet(
        transformer_size=128, epochs=50, batch_size=[128, 128]
    ),
    "diet-2-layers-128-100-epochs": diet(transformer_size=128),
    "logistic-regression+crf": logistic_regression,
}


def config_for(option: str) -> dict:
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    base = config["pipeline"] if option == CURRENT else DIET_PIPELINE
    config["pipeline"] = OPTIONS[option](copy.deepcopy(base))
    return config


def measure(option: str, work: Path, test_set: Path) -> tuple[float, str]:
    config_file = work / f"{option}.yml"
    config_file.write_text(yaml.safe_dump(config_for(option), sort_keys=False))
    out = work / option
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RASA_TELEMETRY_ENABLED": "false",
        # An empty graph cache of its own: every option trains from scratch.
        "RASA_CACHE_DIRECTORY": str(work / f"cache-{option}"),
    }
    start = time.monotonic()
    subprocess.run(
        [PYTHON, "-m", "rasa", "train", "nlu", "--config", str(config_file),
         "--nlu", "data/nlu", "--out", str(out), "--fixed-model-name", option],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.monotonic() - start
    model = next(out.glob("*.tar.gz"))
    scored = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "nlu_accuracy.py"), "--model", str(model),
         "--test-set", str(test_set)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    found = re.search(r"intent accuracy:\s+([\d.]+%)", scored.stdout)
    accuracy = found.group(1) if found else "?"
    wrong = re.search(r"wrong answers:\s+([\d.]+%)", scored.stdout)
    fallback = re.search(r"fallback rate:\s+([\d.]+%)", scored.stdout)
    entities = re.search(r"entity recall:\s+([\d.]+%)", scored.stdout)
    summary = (
        f"{accuracy} accuracy, {wrong.group(1) if wrong else '?'} wrong, "
        f"{fallback.group(1) if fallback else '?'} fallback, "
        f"{entities.group(1) if entities else '?'} entities"
    )
    return seconds, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("options", nargs="*", help=", ".join(OPTIONS))
    parser.add_argument(
        "--test-set", type=Path, default=ROOT / "tests/data/nlu_test.yml"
    )
    args = parser.parse_args()
    unknown = set(args.options) - set(OPTIONS)
    if unknown:
        parser.error(f"unknown options {sorted(unknown)}; known: {', '.join(OPTIONS)}")
    print(f"{'option':36} {'train (s)':>9}  held-out ({args.test_set.name})")
    with tempfile.TemporaryDirectory() as work:
        for option in args.options or OPTIONS:
            seconds, summary = measure(option, Path(work), args.test_set)
            print(f"{option:36} {seconds:9.0f}  {summary}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
