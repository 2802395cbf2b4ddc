"""The project's tables come from Alembic's migrations (bot/migrations), on
SQLite and on the real PostgreSQL: the migrations and the models agree, a
database made before there were migrations is adopted, replicas that start
together migrate once, and reloading the knowledge base leaves the other
tables alone."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from bot import settings
from bot.channels.sms.store import SmsStore
from bot.content.store import KnowledgeEntryRow, load_knowledge
from bot.db import (
    BASELINE_TABLES,
    Base,
    current_revision,
    engine_for,
    head_revision,
    import_models,
    migrate,
)
from bot.safety.handoffs import HandoffQueue


def differences(engine) -> list:
    """What Alembic's autogenerate would still change: nothing, if the
    migrations made exactly the tables the models declare."""
    import_models()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_the_migrations_make_the_tables_the_models_declare(engine):
    migrate(engine)
    assert current_revision(engine) == head_revision()
    assert differences(engine) == []


@pytest.mark.postgres
def test_the_migrations_make_the_same_tables_on_postgresql(postgres_url):
    engine = engine_for(postgres_url)
    migrate(engine)
    assert current_revision(engine) == head_revision()
    assert differences(engine) == []


def test_a_database_made_before_migrations_is_adopted_with_its_rows(engine):
    """create_all made the tables of whichever stores a process had used: the
    rest are made, the database stamped with the baseline, nothing lost."""
    import_models()
    Base.metadata.create_all(engine, tables=[KnowledgeEntryRow.__table__])
    row = dict(
        id="x", topic="t", title="T", answer="a", sms="s", sources=[],
        reviewed_on=dt.date(2026, 1, 1), reviewed_by="r", source_file="f",
    )  # fmt: skip
    with engine.begin() as connection:
        connection.execute(KnowledgeEntryRow.__table__.insert(), [row])
    migrate(engine)
    assert current_revision(engine) == head_revision()
    assert set(BASELINE_TABLES) <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        ids = connection.execute(select(KnowledgeEntryRow.id)).scalars().all()
    assert ids == ["x"]


@pytest.mark.postgres
def test_replicas_starting_together_migrate_once(postgres_url):
    """Four processes upgrade one new PostgreSQL database at the same moment:
    the advisory lock makes them take turns; all succeed."""
    env = {"BOT_DATABASE_URL": postgres_url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "bot.db", "upgrade"]
    processes = [
        subprocess.Popen(command, cwd=settings.PROJECT_ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(4)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, outputs
    engine = engine_for(postgres_url)
    assert current_revision(engine) == head_revision()
    assert differences(engine) == []


@pytest.mark.postgres
def test_reloading_the_knowledge_base_keeps_handoffs_and_opt_outs(
    postgres_url, knowledge_files, tmp_path
):
    engine = engine_for(postgres_url)
    load_knowledge(engine, knowledge_files.directory)
    handoffs = HandoffQueue(engine, tmp_path / "spool.jsonl")
    stored = handoffs.create("patient-1", "sms", "crisis", "a message")
    SmsStore(engine).set_opted_out("sms-1", True)
    knowledge_files.remove("dryness_lips")
    report = load_knowledge(engine, knowledge_files.directory)
    assert report.removed == ["dryness_lips"]
    assert [h.id for h in handoffs.list()] == [stored.id]
    assert SmsStore(engine).is_opted_out("sms-1")
