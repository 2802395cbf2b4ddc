"""The SQL engine behind the project's own tables (knowledge base, sign-offs,
handoffs, SMS state), and their migrations.

SQLAlchemy 1.4 in 2.0 style: ``future=True`` engines and sessions, ``select()``.
The schema is Alembic's (``bot/migrations``): ``migrate`` brings a database to
the newest revision, once per database and process, under a lock, so several
replicas starting at once on one PostgreSQL database apply each revision once.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import logging
import sys
import threading
from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, declarative_base

from bot import settings

logger = logging.getLogger(__name__)

Base = declarative_base()

# Every module that declares tables on ``Base``: Alembic compares them all.
MODEL_MODULES = (
    "bot.content.store",
    "bot.content.signoff",
    "bot.safety.handoffs",
    "bot.channels.sms.store",
)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The revision whose tables ``create_all`` made before there were migrations:
# such a database is stamped with it, then upgraded.
BASELINE_REVISION = "0001"
BASELINE_TABLES = (
    "kb_entries", "kb_signoffs", "handoffs", "safety_questions",
    "sms_messages", "sms_opt_outs", "sms_contacts", "sms_menus",
)  # fmt: skip
# pg_advisory_xact_lock's key: one migration at a time per PostgreSQL database.
_ADVISORY_LOCK_KEY = 7_402_126_001


def import_models() -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per database URL for the life of the process."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a database error's text (logged with its traceback)
    # must not quote the values, which are patients' words.
    return create_engine(url, future=True, pool_pre_ping=True, hide_parameters=True)


def default_engine() -> Engine:
    """The engine for ``BOT_DATABASE_URL`` (or the embedded SQLite file)."""
    return engine_for(settings.database_url())


def _alembic_config(connection: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    config = _alembic_config(None)  # type: ignore[arg-type]
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


_schema_lock = threading.Lock()
_migrated: set[str] = set()


def migrate(engine: Engine) -> None:
    """Bring the database to the newest revision (once per process).

    On PostgreSQL a transaction-scoped advisory lock makes the replicas that
    start together take turns: the first applies the revisions, the others
    find nothing left to do. On SQLite (one process tree) ``BEGIN IMMEDIATE``
    does the same.
    """
    from alembic import command

    key = engine.url.render_as_string(hide_password=False)
    with _schema_lock:
        if key in _migrated:
            return
        with _file_lock(engine), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _ADVISORY_LOCK_KEY},
                )
            tables = set(inspect(connection).get_table_names())
            config = _alembic_config(connection)
            if "alembic_version" not in tables and tables & set(BASELINE_TABLES):
                # Made by create_all before migrations, by whichever stores a
                # process had used: complete it, and that is the baseline.
                import_models()
                baseline = [Base.metadata.tables[name] for name in BASELINE_TABLES]
                Base.metadata.create_all(connection, tables=baseline)
                command.stamp(config, BASELINE_REVISION)
            command.upgrade(config, "head")
        _migrated.add(key)


@contextlib.contextmanager
def _file_lock(engine: Engine):
    """On SQLite, a lock file beside the database: the processes of one
    machine (the action server, the alerts worker, the Rasa server) that find
    a new file at once take turns. SQLite's own locks do not cover DDL, which
    its Python driver runs outside a transaction."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate-lock")
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def create_schema(engine: Engine) -> None:
    """The project's tables, as the migrations make them (kept under this
    name for the stores that call it on first use)."""
    migrate(engine)


class TableStore:
    """Base of the classes that keep rows in the bot's database: sessions on
    one engine, with the tables created on first use."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or default_engine()
        self._schema_ready = False

    def _session(self) -> Session:
        if not self._schema_ready:
            create_schema(self.engine)
            self._schema_ready = True
        return Session(self.engine, future=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.db",
        description="The project's own tables in BOT_DATABASE_URL (default: the "
        "embedded SQLite file).",
    )
    parser.add_argument("command", choices=("upgrade", "current", "heads"))
    args = parser.parse_args(argv)
    engine = default_engine()
    if args.command == "upgrade":
        migrate(engine)
    if args.command == "heads":
        print(head_revision())
    else:
        print(
            f"{engine.url.render_as_string(hide_password=True)}: "
            f"revision {current_revision(engine)} (newest {head_revision()})"
        )
    return 0


if __name__ == "__main__":
    # Run as ``python -m bot.db`` this file is ``__main__``, a second copy
    # whose ``Base`` no model uses: call the imported module's ``main``.
    from bot.db import main as imported_main

    sys.exit(imported_main())
