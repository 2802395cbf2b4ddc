"""The on-disk spaCy pipeline that Rasa's SpacyNLP loads."""

from __future__ import annotations

from bot.nlu.spacy_pipeline import load_pipeline, save_pipeline


def test_the_pipeline_is_built_without_a_download_and_lemmatizes(tmp_path):
    path = save_pipeline(tmp_path / "pipeline")
    nlp = load_pipeline(path)
    assert nlp.pipe_names == ["lemmatizer"]
    assert [t.lemma_ for t in nlp("pores were clogged")] == ["pore", "be", "clog"]
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < 5_000_000


def test_rasa_can_load_it_by_path(tmp_path):
    from rasa.nlu.utils.spacy_utils import SpacyNLP

    path = save_pipeline(tmp_path / "pipeline")
    model = SpacyNLP.load_model(str(path))
    SpacyNLP.ensure_proper_language_model(model.model)
