"""The knowledge base in SQL: loading the reviewed files, and reading entries.

``load_knowledge`` validates every file first (``bot.content.entries``) and
only then writes, in one transaction, so a malformed entry leaves the database
as it was. The actions read the database at every answer: changing a wording
needs no retraining, only ``python -m bot.content load``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import JSON, Column, Date, String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.content.clinic import Clinic
from bot.content.entries import Entry, read_knowledge
from bot.db import Base, create_schema, default_engine

logger = logging.getLogger(__name__)


class KnowledgeBaseUnavailable(RuntimeError):
    """The database cannot be read (down, or never loaded)."""


class KnowledgeEntryRow(Base):
    __tablename__ = "kb_entries"

    id = Column(String(100), primary_key=True)
    topic = Column(String(64), nullable=False, index=True)
    facet = Column(String(64), nullable=True)
    title = Column(String(200), nullable=False)
    answer = Column(Text, nullable=False)
    sms = Column(Text, nullable=False)
    sources = Column(JSON, nullable=False)
    reviewed_on = Column(Date, nullable=False)
    reviewed_by = Column(String(100), nullable=False)
    review_note = Column(Text, nullable=True)
    source_file = Column(String(200), nullable=False)


@dataclass
class LoadReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"knowledge base: {len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged"
        )


def load_knowledge(
    engine: Engine | None = None,
    directory: Path | None = None,
    clinic: Clinic | None = None,
) -> LoadReport:
    """Validate the files, then make the database match them in one transaction."""
    entries = read_knowledge(directory, clinic)
    engine = engine or default_engine()
    create_schema(engine)
    report = LoadReport()
    with Session(engine, future=True) as session, session.begin():
        stored = {row.id: row for row in session.scalars(select(KnowledgeEntryRow))}
        for entry in entries:
            columns = entry.columns()
            row = stored.pop(entry.id, None)
            if row is None:
                session.add(KnowledgeEntryRow(**columns))
                report.added.append(entry.id)
            elif any(getattr(row, k) != v for k, v in columns.items()):
                for name, value in columns.items():
                    setattr(row, name, value)
                report.updated.append(entry.id)
            else:
                report.unchanged += 1
        for row in stored.values():
            session.delete(row)
            report.removed.append(row.id)
    return report


def _entry(row: KnowledgeEntryRow) -> Entry:
    return Entry(**{name: getattr(row, name) for name in Entry.__dataclass_fields__})


class KnowledgeBase:
    """Read access to the loaded entries: one query per lookup, so a wording
    loaded with ``python -m bot.content load`` is answered at once.

    It also keeps the last copy it read: every entry at the first lookup
    that succeeds, then each entry as a lookup reads it again. While the
    database is down or hung, lookups answer from that copy (the reviewed
    wording last loaded, which may be newer than the files); only a process
    that never reached the database raises ``KnowledgeBaseUnavailable``.
    """

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or default_engine()
        self._copy: dict[tuple[str, str | None], Entry] | None = None

    def find(self, topic: str, facet: str | None = None) -> Entry | None:
        """The entry for ``topic`` narrowed by ``facet`` (None: the main entry)."""
        query = select(KnowledgeEntryRow).where(KnowledgeEntryRow.topic == topic)
        if facet is None:
            query = query.where(KnowledgeEntryRow.facet.is_(None))
        else:
            query = query.where(KnowledgeEntryRow.facet == facet)
        try:
            with Session(self.engine, future=True) as session:
                row = session.scalars(query).first()
                entry = _entry(row) if row else None
            if self._copy is None:
                self._copy = {(e.topic, e.facet): e for e in self.entries()}
        except (SQLAlchemyError, KnowledgeBaseUnavailable) as error:
            if self._copy is None:
                raise KnowledgeBaseUnavailable(type(error).__name__) from error
            logger.error(
                "knowledge-base database unavailable (%s): answering from the "
                "copy last read from it", type(error).__name__,
            )  # fmt: skip
            return self._copy.get((topic, facet))
        if entry is None:
            self._copy.pop((topic, facet), None)
        else:
            self._copy[(topic, facet)] = entry
        return entry

    def entries(self) -> list[Entry]:
        try:
            with Session(self.engine, future=True) as session:
                rows = session.scalars(select(KnowledgeEntryRow).order_by("id"))
                return [_entry(row) for row in rows]
        except SQLAlchemyError as error:
            raise KnowledgeBaseUnavailable(str(error.__class__.__name__)) from error
