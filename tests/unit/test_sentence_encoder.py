"""The sentence encoder (bot/nlu/sentence_encoder.py): all-MiniLM-L6-v2 run in
NumPy from the packaged, digest-checked files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.nlu import sentence_encoder
from bot.nlu.sentence_encoder import EncoderUnavailable, SentenceEncoder


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
    cached = sentence_encoder._cache["a message seen twice"]
    with pytest.raises(ValueError):
        cached[0] = 1.0


def test_batches_and_single_messages_give_the_same_vector():
    texts = [f"question number {i} about dry skin" for i in range(40)]
    batch = sentence_encoder.default_encoder().encode(texts)
    alone = sentence_encoder.default_encoder().encode([texts[7]])
    assert np.allclose(batch[7], alone[0], atol=1e-5)


def test_files_that_are_not_the_official_model_are_refused(tmp_path: Path):
    copy = tmp_path / "model"
    shutil.copytree(sentence_encoder.model_dir(), copy)
    config = copy / "config.json"
    config.write_text(
        config.read_text().replace('"num_hidden_layers": 6', '"num_hidden_layers": 5')
    )
    with pytest.raises(EncoderUnavailable, match="not the official"):
        SentenceEncoder(copy)
