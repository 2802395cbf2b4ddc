"""The safety screen's learned layer: a small text classifier beside the phrases.

Phrase lists are precise on the wording they know; patients find other words.
This classifier is a logistic regression over three kinds of features:
character n-grams within words (misspellings, slang, Spanish), words and word
pairs ("not wake", "a burden"), both TF-IDF, and the message's all-MiniLM-L6-v2
sentence vector (``bot.nlu.sentence_encoder``: meaning, so that "thank you to
the whole team" is not near "thank you for everything, goodbye" because it
shares their words). It is trained on category-balanced crisis, concern and
ordinary messages; ``bot.safety.screen`` combines its scores with the phrases
(thresholds in ``data/safety/classifier.yml``).

The sentence vector is the one the NLU pipeline's intent classifier computes
for the same message (the encoder caches it), so a message is encoded once for
both; the classifier's own arithmetic and the neighbour vote take about 1 ms.
The vector was adopted on a same-fold comparison (``bench/safety_classifier.py
--compare``): at the same false-alarm rates on the ordinary messages it catches
more crisis messages.

Beside the regression, a neighbour vote (``NeighbourVote``): the share of
crisis messages among the ten training examples nearest in meaning. A linear
model weighs words and directions; it misses a fresh paraphrase of one crisis
example among thousands ("ctb soon", "how much tylenol is a lethal dose") that
sits right next to it in the sentence space. On the earlier evaluation sets
the vote at 0.8 asked 19 of the 65 crisis messages the regression scored
below its question cut, and none of 3,400 ordinary messages. The screen uses
it only to ask the direct question, never for the crisis reply.

Training data, all reviewed files under ``data/``:

- ``data/safety/training/{crisis,concern,ordinary}.yml``: messages by
  warning-sign category and persona, ordinary ones full of the words a skin
  patient uses ("bleeding lips", "this acne is killing me");
- ``data/nlu/*.yml``: the NLU examples, as crisis (intent ``crisis``), concern
  (``mental_health_concern``) or ordinary (every other intent).

It takes a few seconds to train, so it is not part of the Rasa model: the
first process that needs it trains it and keeps it in
``var/safety/classifier-<fingerprint>.joblib``; later ones load that file.
Editing the training data needs a restart, never a Rasa retraining.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import yaml

from bot import settings
from bot.safety.text import canonical

logger = logging.getLogger(__name__)

LABELS = ("crisis", "concern", "ordinary")
SAFETY_DIR = settings.DATA_DIR / "safety"
TRAINING_DIR = SAFETY_DIR / "training"
THRESHOLDS_FILE = SAFETY_DIR / "classifier.yml"
NLU_DIR = settings.DATA_DIR / "nlu"
CACHE_DIR = settings.VAR_DIR / "safety"
NLU_LABELS = {"crisis": "crisis", "mental_health_concern": "concern"}
# A Rasa training example: "- text with [an entity](facet) in it".
_ENTITY = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\{[^}]*\}")
# This module's own code shapes the model too, and so does the sentence encoder.
_CODE_FILES = (
    Path(__file__),
    Path(__file__).with_name("text.py"),
    Path(__file__).parent.parent / "nlu" / "sentence_encoder.py",
)


@dataclass(frozen=True)
class Thresholds:
    """Reviewed cut-offs on the classifier's probabilities."""

    crisis: float  # at or above: the crisis reply (see crisis_sure)
    crisis_sure: float  # at or above: the crisis reply with little neighbour support
    crisis_sure_support: float  # neighbour vote even a crisis_sure score needs
    crisis_support: float  # neighbour vote a crisis score under crisis_sure needs
    crisis_near: float  # at or above, with a neighbour vote of crisis_near_vote:
    crisis_near_vote: float  # the crisis reply too (both signals agree)
    possible: float  # at or above (crisis score): the direct safety question
    concern: float  # at or above (concern score): a mood concern
    mood: float  # at or above (crisis + concern scores): a mood concern too
    confirm_intent_model: float  # the intent model's `crisis` needs this score
    agree: float  # a possible-risk signal with this crisis score: a crisis
    concern_risk: float  # a concern with this crisis score: the question
    informational: float  # concern score that makes a crisis word a question
    neighbours: float  # neighbour vote at or above: the direct safety question

    @classmethod
    def from_file(cls, path: Path = THRESHOLDS_FILE) -> Thresholds:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))["thresholds"]
        return cls(**{name: float(raw[name]) for name in cls.__dataclass_fields__})


def _rasa_examples(path: Path) -> list[tuple[str, str]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found = []
    for block in raw.get("nlu") or []:
        intent = block.get("intent")
        if not intent or not isinstance(block.get("examples"), str):
            continue
        label = NLU_LABELS.get(intent, "ordinary")
        for line in block["examples"].splitlines():
            line = line.strip()
            if line.startswith("- "):
                text = _ENTITY.sub(lambda m: m.group(1) or m.group(2), line[2:])
                found.append((text.strip(), label))
    return found


def training_files(
    training_dir: Path = TRAINING_DIR, nlu_dir: Path = NLU_DIR
) -> list[Path]:
    return sorted(training_dir.glob("*.yml")) + sorted(nlu_dir.glob("*.yml"))


def training_examples(
    training_dir: Path = TRAINING_DIR, nlu_dir: Path = NLU_DIR
) -> list[tuple[str, str]]:
    """(text, label) pairs from the reviewed training files and the NLU data."""
    examples: list[tuple[str, str]] = []
    for path in sorted(training_dir.glob("*.yml")):
        label = path.stem
        if label not in LABELS:
            raise ValueError(f"{path}: the file name must be one of {LABELS}")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in raw.get("examples") or []:
            examples.append((str(item["text"]), label))
    for path in sorted(nlu_dir.glob("*.yml")):
        examples += _rasa_examples(path)
    # One label per text: a repeat keeps the more urgent one.
    chosen: dict[str, str] = {}
    for text, label in examples:
        key = canonical(text)
        if key and (
            key not in chosen or LABELS.index(label) < LABELS.index(chosen[key])
        ):
            chosen[key] = label
    return sorted(chosen.items())


class SentenceVectors:
    """A scikit-learn transformer: each text's sentence vector, times a weight
    (its share of the regression's attention beside the n-grams)."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def get_params(self, deep: bool = True) -> dict[str, float]:
        return {"weight": self.weight}

    def set_params(self, **params: float) -> SentenceVectors:
        self.weight = params.get("weight", self.weight)
        return self

    def fit(self, texts, labels=None) -> SentenceVectors:
        return self

    def transform(self, texts):
        from bot.nlu import sentence_encoder

        return sentence_encoder.encode(list(texts)) * self.weight

    def fit_transform(self, texts, labels=None):
        return self.transform(texts)


class NeighbourVote:
    """The share of crisis examples among a message's ``k`` nearest training
    examples by sentence vector, each weighted by how far its cosine
    similarity exceeds ``floor``. Below the floor an example is not near at
    all: keyboard-mashing ("qwpeoiru zmxn") is about 0.4 from everything,
    and its nearest examples, short slang like "kms", must not vote."""

    def __init__(self, k: int = 10, floor: float = 0.4) -> None:
        self.k = k
        self.floor = floor

    def fit(self, texts, labels) -> NeighbourVote:
        import numpy as np

        from bot.nlu import sentence_encoder

        self.vectors_ = sentence_encoder.encode(list(texts)).astype(np.float32)
        self.crisis_ = np.array([label == "crisis" for label in labels])
        return self

    def vote(self, vector) -> float:
        import numpy as np

        similarity = self.vectors_ @ vector.astype(np.float32)
        k = min(self.k, len(similarity))  # a training set smaller than k
        nearest = np.argpartition(-similarity, k - 1)[:k]
        weights = np.clip(similarity[nearest] - self.floor, 0.0, None)
        if weights.sum() <= 0:
            return 0.0
        return float(weights @ self.crisis_[nearest] / weights.sum())


def build_pipeline(embedding_weight: float = 1.0):
    """The untrained scikit-learn pipeline (imported lazily: it is heavy).
    ``embedding_weight`` 0 leaves the sentence vector out (the comparison in
    ``bench/safety_classifier.py --compare``)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    parts = [
        # Character n-grams inside words: misspellings, slang, Spanish.
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5),
                                  min_df=2, sublinear_tf=True)),
        # Words and word pairs: "not wake", "better off", "a burden".
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2),
                                  token_pattern=r"(?u)\b\w+\b",
                                  sublinear_tf=True)),
    ]  # fmt: skip
    if embedding_weight:
        # Meaning: the same words in a harmless sentence are far apart.
        parts.append(("meaning", SentenceVectors(embedding_weight)))
    features = FeatureUnion(parts)
    model = LogisticRegression(
        C=20.0, class_weight="balanced", max_iter=3000, random_state=2026
    )
    return Pipeline([("features", features), ("model", model)])


class _FastScorer:
    """The fitted pipeline's arithmetic without scikit-learn's per-call
    overhead (input checks, sparse matrices): n-grams, sublinear TF-IDF with
    l2 norm per vectorizer, the weighted sentence vector, the linear model and
    a softmax. The same numbers as ``predict_proba`` (a unit test compares
    them), ten times faster."""

    def __init__(self, pipeline) -> None:
        import numpy as np

        self._np = np
        union, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
        self._parts = []
        self._vectors: tuple[SentenceVectors, int] | None = None
        offset = 0
        for _, part in union.transformer_list:
            if isinstance(part, SentenceVectors):
                from bot.nlu.sentence_encoder import DIMENSIONS

                self._vectors = (part, offset)
                offset += DIMENSIONS
                continue
            vocabulary = part.vocabulary_
            self._parts.append((part.build_analyzer(), vocabulary, part.idf_, offset))
            offset += len(vocabulary)
        self._coef = model.coef_.T.copy()  # (features, classes)
        self._intercept = model.intercept_
        if self._coef.shape[1] == 1:
            raise ValueError("the safety classifier needs three classes")

    def probabilities(self, text: str, vector=None):
        """``vector``: the text's sentence vector when the caller has it."""
        np = self._np
        logits = self._intercept.copy()
        for analyze, vocabulary, idf, offset in self._parts:
            counts: dict[int, int] = {}
            for gram in analyze(text):
                index = vocabulary.get(gram)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
            if not counts:
                continue
            indices = np.fromiter(counts, dtype=np.int64, count=len(counts))
            tf = np.log(np.fromiter(counts.values(), dtype=float)) + 1.0
            weights = tf * idf[indices]
            weights /= np.sqrt(weights @ weights)
            logits = logits + weights @ self._coef[indices + offset]
        if self._vectors is not None:
            part, offset = self._vectors
            if vector is None:
                vector = part.transform([text])[0]
            else:
                vector = vector * part.weight
            logits = logits + vector @ self._coef[offset : offset + len(vector)]
        logits = logits - logits.max()
        exp = np.exp(logits)
        return exp / exp.sum()


class SafetyClassifier:
    """Scores a message: the probability of each of crisis, concern, ordinary."""

    def __init__(self, pipeline, thresholds: Thresholds) -> None:
        self.pipeline = pipeline
        self.thresholds = thresholds
        self._classes = [str(c) for c in pipeline.classes_]
        self._fast = _FastScorer(pipeline)
        # Absent from a pipeline trained without it (n-grams only).
        self._neighbours: NeighbourVote | None = getattr(pipeline, "neighbours_", None)

    def scores(self, text: str) -> dict[str, float]:
        """Each class's probability, and ``neighbours``: the neighbour vote."""
        plain = canonical(text)
        vector = None
        if self._neighbours is not None:
            from bot.nlu import sentence_encoder

            vector = sentence_encoder.encode([plain])[0]  # one vector for both
        probabilities = self._fast.probabilities(plain, vector)
        pairs = zip(self._classes, probabilities, strict=True)
        scores = {label: float(p) for label, p in pairs}
        if vector is not None:
            scores["neighbours"] = self._neighbours.vote(vector)
        return scores


def train(examples: list[tuple[str, str]]):
    """The fitted pipeline, carrying its neighbour vote as ``neighbours_`` (one
    file, one fingerprint for both)."""
    texts, labels = zip(*examples, strict=True)
    pipeline = build_pipeline().fit(list(texts), list(labels))
    pipeline.neighbours_ = NeighbourVote().fit(texts, labels)
    return pipeline


def fingerprint(files: list[Path] | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(f"scikit-learn=={metadata.version('scikit-learn')}\n".encode())
    for path in [*(files if files is not None else training_files()), *_CODE_FILES]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached_path(cache_dir: Path = CACHE_DIR) -> Path:
    return cache_dir / f"classifier-{fingerprint()}.joblib"


def _load(path: Path):
    """The cached pipeline, or None: absent, or written by a version of the
    code that cannot be read back (then it is trained again)."""
    import joblib

    if not path.exists():
        return None
    try:
        return joblib.load(path)
    except Exception as error:
        logger.warning("cached safety classifier unreadable (%s): retraining", error)
        path.unlink(missing_ok=True)
        return None


def trained_pipeline(cache_dir: Path = CACHE_DIR):
    """The pipeline for today's training data: from the cache, or trained now."""
    import joblib

    target = cached_path(cache_dir)
    if (pipeline := _load(target)) is not None:
        return pipeline
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".training.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process trains, the others wait
        if (pipeline := _load(target)) is not None:
            return pipeline
        examples = training_examples()
        logger.info("training the safety classifier on %d examples", len(examples))
        pipeline = train(examples)
        with tempfile.NamedTemporaryFile(dir=cache_dir, delete=False) as partial:
            joblib.dump(pipeline, partial)
        os.chmod(partial.name, 0o600)
        os.replace(partial.name, target)  # never a half-written model
        for old in cache_dir.glob("classifier-*.joblib"):
            if old != target:
                old.unlink(missing_ok=True)
        return pipeline


@lru_cache(maxsize=1)
def default_classifier() -> SafetyClassifier:
    """The trained classifier, its sentence encoder loaded now: if the encoder
    cannot load, this raises here, at start-up, and the screen runs on its
    phrases, rather than failing on a patient's message."""
    from bot.nlu import sentence_encoder

    sentence_encoder.default_encoder()
    return SafetyClassifier(trained_pipeline(), Thresholds.from_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.safety.classifier")
    parser.add_argument("command", choices=["train", "path"])
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args(argv)
    if args.command == "train":
        existed = cached_path(args.cache_dir).exists()
        trained_pipeline(args.cache_dir)
        state = "up to date" if existed else "trained"
        print(f"safety classifier {state}: {cached_path(args.cache_dir)}")
    else:
        print(cached_path(args.cache_dir))
    return 0


if __name__ == "__main__":
    # Through the module's own name: the pickled pipeline must refer to
    # bot.safety.classifier.SentenceVectors, which every process can import,
    # not to __main__.SentenceVectors.
    from bot.safety.classifier import main as module_main

    sys.exit(module_main())
