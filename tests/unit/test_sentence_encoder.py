"""The sentence encoder (bot/nlu/sentence_encoder.py): all-MiniLM-L6-v2 run in
ONNX Runtime from a graph built of the packaged, digest-checked files, and
checked against the forward pass written out in NumPy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.nlu import sentence_encoder
from bot.nlu.sentence_encoder import EncoderUnavailable, NumpyEncoder, SentenceEncoder


def test_vectors_are_unit_length_and_384_wide():
    vectors = sentence_encoder.encode(["can I give blood on accutane?", ""])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_paraphrase_is_nearer_than_another_topic():
    donate, give, lips = sentence_encoder.encode([
        "can I donate blood while on accutane?",
        "is it ok to give blood if im taking isotretinoin",
        "my lips are so chapped and cracked",
    ])  # fmt: skip
    assert donate @ give > 0.45
    assert donate @ give > donate @ lips + 0.3


def test_a_text_is_computed_once_and_the_cached_vector_cannot_change():
    first = sentence_encoder.encode(["a message seen twice"])[0]
    again = sentence_encoder.encode(["a message seen twice"])[0]
    assert np.array_equal(first, again)
    before = len(sentence_encoder._cache)
    first[:] = 0.0  # a caller changing its copy does not change the cache
    third = sentence_encoder.encode(["a message seen twice"])[0]
    assert np.array_equal(third, again)
    assert len(sentence_encoder._cache) == before


def test_a_message_as_typed_and_as_normalised_share_one_computation():
    typed = sentence_encoder.encode(["I want to DIE, honestly."])[0]
    before = len(sentence_encoder._cache)
    normalised = sentence_encoder.encode(["i want to die, honestly."])[0]
    assert len(sentence_encoder._cache) == before
    assert np.array_equal(typed, normalised)
    other = sentence_encoder.encode(["i want to dye my hair"])[0]
    assert len(sentence_encoder._cache) == before + 1
    assert not np.array_equal(typed, other)


def test_batches_and_single_messages_give_the_same_vector():
    texts = [f"question number {i} about dry skin" for i in range(40)]
    batch = sentence_encoder.default_encoder().encode(texts)
    alone = sentence_encoder.default_encoder().encode([texts[7]])
    assert np.allclose(batch[7], alone[0], atol=1e-5)


def test_the_onnx_graph_gives_the_numpy_reference_s_vectors():
    # Short, long (cut at 128 tokens), empty, accented and mixed-length
    # batches (padding) against the same arithmetic written out in NumPy.
    texts = [
        "can I give blood on accutane?",
        "hi",
        "",
        "¿Puedo tomar isotretinoína si estoy embarazada?",
        "my lips crack and bleed " * 40,
        "I don't want to be here anymore",
    ]
    reference = NumpyEncoder()
    graph = sentence_encoder.default_encoder()
    assert isinstance(graph, SentenceEncoder)
    batch = graph.encode(texts)
    assert np.abs(batch - reference.encode(texts)).max() < 1e-5
    for i, text in enumerate(texts):
        alone = graph.encode([text])
        assert np.abs(alone[0] - reference.encode([text])[0]).max() < 1e-5
        assert np.abs(alone[0] - batch[i]).max() < 1e-5


def test_the_graph_is_kept_and_rebuilt_when_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(sentence_encoder, "GRAPH_DIR", tmp_path / "graphs")
    earlier = tmp_path / "graphs" / "all-minilm-l6-v2-0123456789abcdef.onnx"
    earlier.parent.mkdir()
    earlier.write_bytes(b"an earlier builder's graph")
    built = SentenceEncoder()
    assert not earlier.exists()  # replaced, not kept beside it
    path = sentence_encoder.graph_path()
    assert path.exists() and path.stat().st_mode & 0o077 == 0
    stamp = path.stat().st_mtime_ns
    again = SentenceEncoder()  # read back, not built again
    assert path.stat().st_mtime_ns == stamp
    text = ["does accutane make you tired"]
    assert np.array_equal(built.encode(text), again.encode(text))


def test_files_that_are_not_the_official_model_are_refused(tmp_path: Path):
    copy = tmp_path / "model"
    shutil.copytree(sentence_encoder.model_dir(), copy)
    config = copy / "config.json"
    config.write_text(
        config.read_text().replace('"num_hidden_layers": 6', '"num_hidden_layers": 5')
    )
    for encoder in (SentenceEncoder, NumpyEncoder):
        with pytest.raises(EncoderUnavailable, match="not the official"):
            encoder(copy)


def new_process(monkeypatch) -> None:
    """What a new process starts with: nothing in memory, the store unread."""
    monkeypatch.setattr(sentence_encoder, "_cache", {})
    monkeypatch.setattr(sentence_encoder, "_store_loaded", False)


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """A store of its own, written from three texts computed in one call."""
    path = tmp_path / "vectors.npz"
    monkeypatch.setattr(sentence_encoder, "STORE", path)
    monkeypatch.setattr(sentence_encoder, "BULK", 3)
    new_process(monkeypatch)
    return path


def test_a_trainings_vectors_are_reused_by_the_next_process(store, monkeypatch):
    texts = [f"training example {i} about chapped lips" for i in range(5)]
    first = sentence_encoder.encode(texts)
    assert store.exists() and store.stat().st_mode & 0o077 == 0

    new_process(monkeypatch)
    encoder = sentence_encoder.default_encoder()

    def no_forward_pass(batch):
        raise AssertionError(f"computed again: {batch}")

    monkeypatch.setattr(encoder, "encode", no_forward_pass)
    again = sentence_encoder.encode(texts)
    assert np.array_equal(first, again)


def test_a_damaged_store_is_recomputed(store):
    store.write_bytes(b"not a numpy file")
    texts = [f"another example {i} about sunscreen" for i in range(4)]
    vectors = sentence_encoder.encode(texts)
    assert vectors.shape == (4, sentence_encoder.DIMENSIONS)
    assert len(sentence_encoder._read_store(store)) == 4


def test_threads_encoding_at_once_get_each_their_own_vectors(monkeypatch):
    # The channels' screening threads and the event loop's NLU encode at the
    # same time: every thread gets its texts' vectors, as if it were alone.
    from concurrent.futures import ThreadPoolExecutor

    new_process(monkeypatch)
    groups = [[f"thread {t} asks about dry lips, question {i}" for i in range(6)]
              for t in range(6)]  # fmt: skip
    alone = [NumpyEncoder().encode(group) for group in groups]
    new_process(monkeypatch)
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(sentence_encoder.encode, groups * 3))
    for got, expected in zip(together, alone * 3, strict=True):
        assert np.abs(got - expected).max() < 1e-5
