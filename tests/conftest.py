"""Shared fixtures: a real knowledge base loaded from the reviewed files."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine

from bot import settings
from bot.db import engine_for
from bot.knowledge import KnowledgeBase, load_knowledge


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def engine(database_url: str) -> Engine:
    return engine_for(database_url)


@pytest.fixture
def loaded_engine(engine: Engine) -> Engine:
    load_knowledge(engine)
    return engine


@pytest.fixture
def knowledge(loaded_engine: Engine) -> KnowledgeBase:
    return KnowledgeBase(loaded_engine)


@pytest.fixture
def knowledge_copy(tmp_path: Path) -> Path:
    """A private copy of data/knowledge/ that a test may edit."""
    target = tmp_path / "knowledge"
    shutil.copytree(settings.KNOWLEDGE_DIR, target)
    return target


class KnowledgeFiles:
    """Edit entries of a knowledge copy by id, as a reviewer would edit YAML."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def locate(self, entry_id: str) -> tuple[Path, dict, dict]:
        for path in sorted(self.directory.glob("*.yml")):
            data = yaml.safe_load(path.read_text())
            for entry in (data or {}).get("entries", []) or []:
                if entry.get("id") == entry_id:
                    return path, data, entry
        raise KeyError(entry_id)

    def edit(self, entry_id: str, **changes: object) -> Path:
        path, data, entry = self.locate(entry_id)
        for name, value in changes.items():
            if value is None:
                entry.pop(name, None)
            else:
                entry[name] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return path

    def remove(self, entry_id: str) -> None:
        path, data, entry = self.locate(entry_id)
        data["entries"].remove(entry)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@pytest.fixture
def knowledge_files(knowledge_copy: Path) -> KnowledgeFiles:
    return KnowledgeFiles(knowledge_copy)


@pytest.fixture
def bot_database(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    """Point the process's default database (BOT_DATABASE_URL) at a test db."""
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    yield database_url
