"""The curated knowledge base: reviewed YAML files loaded into SQL.

The reviewed source is ``data/knowledge/*.yml`` (one entry per topic or
sub-topic). ``load_knowledge`` validates every file first and only then writes,
in one transaction, so a malformed entry leaves the database as it was. The
actions read the database at every answer: changing a wording needs no
retraining, only ``python -m bot.knowledge load``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import string
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import JSON, Column, Date, String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot import settings
from bot.clinic import PLACEHOLDER_NAMES, Clinic, load_clinic
from bot.db import Base, create_schema, default_engine
from bot.topics import TOPICS_FILE, TopicMap, read_topic_map

SOURCES_FILE = "sources.yml"
SMS_MAX_CHARS = 320
REQUIRED_FIELDS = (
    "id",
    "topic",
    "title",
    "answer",
    "sms",
    "sources",
    "reviewed_on",
    "reviewed_by",
)
OPTIONAL_FIELDS = ("facet", "review_note")
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
# Markup a plain-text SMS must not carry: bold/italics, links, headings, HTML.
SMS_MARKUP = re.compile(r"\*\*|__|\]\(|^#|<[a-z/]", re.MULTILINE)


class KnowledgeBaseError(ValueError):
    """The knowledge-base files are malformed; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


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


@dataclass(frozen=True)
class Entry:
    """One reviewed answer, as stored."""

    id: str
    topic: str
    title: str
    answer: str
    sms: str
    sources: list[dict[str, str]]
    reviewed_on: dt.date
    reviewed_by: str
    source_file: str
    facet: str | None = None
    review_note: str | None = None

    def columns(self) -> dict[str, Any]:
        return asdict(self)


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


def fill_placeholders(text: str, clinic: Clinic) -> str:
    """The text with ``{clinic_phone}``-style fields filled from the clinic."""
    return text.format_map(clinic.fields())


def _placeholder_problem(text: str) -> str | None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name]
    except ValueError as error:
        return f"unbalanced braces ({error}); write clinic details as {{clinic_phone}}"
    unknown = sorted(set(names) - PLACEHOLDER_NAMES)
    if unknown:
        allowed = ", ".join("{" + n + "}" for n in sorted(PLACEHOLDER_NAMES))
        return f"unknown placeholder(s) {unknown}; allowed: {allowed}"
    return None


def read_source_ids(directory: Path) -> frozenset[str]:
    raw = yaml.safe_load((directory / SOURCES_FILE).read_text(encoding="utf-8"))
    return frozenset(str(item["id"]) for item in raw["sources"])


class _Validator:
    """Collects every problem of every file, each naming file, entry and field."""

    def __init__(self, topics: TopicMap, source_ids: frozenset[str], clinic: Clinic):
        self.topics = topics
        self.source_ids = source_ids
        self.clinic = clinic
        self.problems: list[str] = []
        self.seen_ids: dict[str, str] = {}
        self.seen_keys: dict[tuple[str, str | None], str] = {}

    def problem(self, where: str, field_name: str | None, message: str) -> None:
        prefix = f"{where}: field '{field_name}'" if field_name else where
        self.problems.append(f"{prefix}: {message}")

    def file(self, path: Path, label: str) -> list[Entry]:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            self.problem(label, None, f"cannot be read as YAML ({error})")
            return []
        if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
            self.problem(label, None, "expected a mapping with an 'entries' list")
            return []
        entries = []
        for position, item in enumerate(raw["entries"], start=1):
            entry = self.entry(item, label, position)
            if entry is not None:
                entries.append(entry)
        return entries

    def entry(self, item: Any, label: str, position: int) -> Entry | None:
        if not isinstance(item, dict):
            self.problem(f"{label}: entry #{position}", None, "is not a mapping")
            return None
        where = f"{label}: entry '{item.get('id', f'#{position}')}'"
        before = len(self.problems)
        for name in REQUIRED_FIELDS:
            value = item.get(name)
            if value is None or (isinstance(value, str | list) and not value):
                self.problem(where, name, "is missing or empty")
        for name in sorted(set(item) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS)):
            self.problem(where, name, "is not a known field")
        if len(self.problems) > before:
            return None

        entry_id, topic, facet = str(item["id"]), str(item["topic"]), item.get("facet")
        if not ID_PATTERN.match(entry_id):
            self.problem(where, "id", "use lowercase letters, digits and underscores")
        if entry_id in self.seen_ids:
            self.problem(where, "id", f"duplicate of {self.seen_ids[entry_id]}")
        self.seen_ids[entry_id] = where
        if topic not in self.topics.topic_ids:
            self.problem(where, "topic", f"unknown topic {topic!r} (see {TOPICS_FILE})")
        if facet is not None and facet not in self.topics.facet_ids:
            self.problem(where, "facet", f"unknown facet {facet!r} (see {TOPICS_FILE})")
        key = (topic, facet)
        if key in self.seen_keys:
            self.problem(
                where, "facet", f"same topic and facet as {self.seen_keys[key]}"
            )
        self.seen_keys[key] = where

        for name in ("title", "answer", "sms", "reviewed_by"):
            if not isinstance(item[name], str):
                self.problem(where, name, "must be text")
        if isinstance(item["answer"], str):
            self.text(where, "answer", item["answer"])
        if isinstance(item["sms"], str) and self.text(where, "sms", item["sms"]):
            sms = fill_placeholders(item["sms"], self.clinic)
            if len(sms) > SMS_MAX_CHARS:
                self.problem(
                    where,
                    "sms",
                    f"{len(sms)} characters once the clinic's details are filled "
                    f"in; the limit is {SMS_MAX_CHARS}",
                )
            if SMS_MARKUP.search(sms):
                self.problem(where, "sms", "must be plain text (no markup or links)")
        sources = self.sources(where, item["sources"])
        reviewed_on = self.date(where, item["reviewed_on"])
        review_note = item.get("review_note")
        if review_note is not None and not isinstance(review_note, str):
            self.problem(where, "review_note", "must be text")
        if len(self.problems) > before:
            return None
        return Entry(
            id=entry_id,
            topic=topic,
            facet=facet,
            title=item["title"].strip(),
            answer=item["answer"].strip(),
            sms=" ".join(item["sms"].split()),
            sources=sources,
            reviewed_on=reviewed_on,
            reviewed_by=item["reviewed_by"].strip(),
            review_note=review_note.strip() if review_note else None,
            source_file=label,
        )

    def text(self, where: str, name: str, text: str) -> bool:
        problem = _placeholder_problem(text)
        if problem:
            self.problem(where, name, problem)
        return problem is None

    def sources(self, where: str, raw: Any) -> list[dict[str, str]]:
        if not isinstance(raw, list):
            self.problem(where, "sources", "must be a list of {source, section}")
            return []
        sources = []
        for item in raw:
            if not isinstance(item, dict) or "source" not in item:
                self.problem(where, "sources", f"{item!r} needs a 'source'")
                continue
            source = str(item["source"])
            if source not in self.source_ids:
                self.problem(
                    where, "sources", f"unknown source {source!r} (see {SOURCES_FILE})"
                )
            sources.append({"source": source, "section": str(item.get("section", ""))})
        return sources

    def date(self, where: str, raw: Any) -> dt.date:
        if isinstance(raw, dt.date):
            value = raw
        else:
            try:
                value = dt.date.fromisoformat(str(raw))
            except ValueError:
                self.problem(where, "reviewed_on", f"{raw!r} is not a YYYY-MM-DD date")
                return dt.date.min
        if value > dt.date.today():
            self.problem(where, "reviewed_on", f"{value} is in the future")
        return value

    def coverage(self, entries: Iterable[Entry]) -> None:
        with_main = {e.topic for e in entries if e.facet is None}
        for topic in self.topics.topics:
            if topic.id not in with_main:
                self.problems.append(
                    f"{TOPICS_FILE}: topic '{topic.id}' has no main entry "
                    f"(an entry with topic '{topic.id}' and no facet)"
                )


def read_knowledge(
    directory: Path | None = None, clinic: Clinic | None = None
) -> list[Entry]:
    """Every entry of the knowledge-base files, validated.

    Raises ``KnowledgeBaseError`` listing every problem found.
    """
    directory = Path(directory or settings.KNOWLEDGE_DIR)
    validator = _Validator(
        read_topic_map(directory), read_source_ids(directory), clinic or load_clinic()
    )
    entries: list[Entry] = []
    for path in sorted(directory.glob("*.yml")):
        if path.name in (TOPICS_FILE, SOURCES_FILE):
            continue
        label = _label(path)
        entries.extend(validator.file(path, label))
    validator.coverage(entries)
    if validator.problems:
        raise KnowledgeBaseError(validator.problems)
    return entries


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(settings.PROJECT_ROOT))
    except ValueError:
        return str(path)


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
    """Read access to the loaded entries (one query per lookup, no caching)."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or default_engine()

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
                return _entry(row) if row else None
        except SQLAlchemyError as error:
            raise KnowledgeBaseUnavailable(str(error.__class__.__name__)) from error

    def entries(self) -> list[Entry]:
        try:
            with Session(self.engine, future=True) as session:
                rows = session.scalars(select(KnowledgeEntryRow).order_by("id"))
                return [_entry(row) for row in rows]
        except SQLAlchemyError as error:
            raise KnowledgeBaseUnavailable(str(error.__class__.__name__)) from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.knowledge",
        description="Check or load the curated knowledge base.",
    )
    parser.add_argument("command", choices=["check", "load"])
    parser.add_argument("--dir", type=Path, default=settings.KNOWLEDGE_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            print(f"knowledge base: {len(read_knowledge(args.dir))} entries are valid")
        else:
            print(load_knowledge(directory=args.dir))
    except KnowledgeBaseError as error:
        print("The knowledge base was not loaded:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
