"""Training is skipped exactly when nothing training reads has changed."""

from __future__ import annotations

import shutil

import pytest

from bot import settings
from bot.run import training


@pytest.fixture
def project(tmp_path):
    for name in ("config.yml", "domain.yml"):
        shutil.copy(settings.PROJECT_ROOT / name, tmp_path / name)
    shutil.copytree(settings.DATA_DIR, tmp_path / "data")
    return tmp_path


def test_the_fingerprint_is_stable(project):
    assert training.fingerprint(project) == training.fingerprint(project)


@pytest.mark.parametrize(
    "path", ["config.yml", "domain.yml", "data/nlu/chitchat.yml", "data/rules.yml"]
)
def test_a_change_to_a_training_input_changes_the_fingerprint(project, path):
    before = training.fingerprint(project)
    with open(project / path, "a") as handle:
        handle.write("\n# edited\n")
    assert training.fingerprint(project) != before


def test_knowledge_and_clinic_edits_do_not_retrain(project):
    before = training.fingerprint(project)
    with open(project / "data/knowledge/daily_life.yml", "a") as handle:
        handle.write("\n# wording edited\n")
    with open(project / "data/clinic.yml", "a") as handle:
        handle.write("\n# phone edited\n")
    assert training.fingerprint(project) == before


def test_an_existing_model_is_not_trained_again(project, capsys):
    target = training.model_path(project)
    target.parent.mkdir()
    target.write_bytes(b"a trained model")
    assert training.train(project) == target
    assert "model up to date" in capsys.readouterr().out
