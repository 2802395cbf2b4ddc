"""The SQL engine behind the knowledge base (and, later, the handoff queue).

SQLAlchemy 1.4 in 2.0 style: ``future=True`` engines and sessions, ``select()``.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, declarative_base

from bot import settings

Base = declarative_base()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per database URL for the life of the process."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, future=True, pool_pre_ping=True)


def default_engine() -> Engine:
    """The engine for ``BOT_DATABASE_URL`` (or the embedded SQLite file)."""
    return engine_for(settings.database_url())


_schema_lock = threading.Lock()


def create_schema(engine: Engine) -> None:
    """Create the tables of every imported model module where they are missing.

    Safe when several threads (one lock) or processes (a replica that lost the
    race sees "already exists" and checks again) do it at once.
    """
    with _schema_lock:
        try:
            Base.metadata.create_all(engine)
        except SQLAlchemyError:
            # Another process created a table between the check and CREATE.
            Base.metadata.create_all(engine)


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
