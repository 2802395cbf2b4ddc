"""The reviewed knowledge-base files: what an entry is, and their validation.

The reviewed source is ``data/knowledge/*.yml`` (one entry per topic or
sub-topic, with its sources and review date); ``read_knowledge`` reads and
validates them all and reports every problem at once. ``bot.content.store``
puts them in SQL.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bot import settings
from bot.content.clinic import PLACEHOLDER_NAMES, Clinic, load_clinic
from bot.content.topics import TOPICS_FILE, TopicMap, read_topic_map

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


def read_sources(directory: Path | None = None) -> dict[str, str]:
    """The source registry: each source id and its full name."""
    path = Path(directory or settings.KNOWLEDGE_DIR) / SOURCES_FILE
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {str(item["id"]): str(item["name"]) for item in raw["sources"]}


def read_source_ids(directory: Path) -> frozenset[str]:
    return frozenset(read_sources(directory))


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
