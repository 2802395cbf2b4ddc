"""A clinician's sign-off on knowledge-base entries.

Engineering reviews every entry against its sources (``reviewed_by`` in the
files); the clinic's dermatologist then signs off each one, with the printed
review packet (``make review-packet``) in hand. A sign-off is stored with a
digest of what was signed (title, web and SMS texts, sources): when an entry's
wording changes, its old sign-off no longer counts and the entry shows as not
signed off until a clinician signs it again.

Sign-offs live in the bot's database beside the entries, so loading the
files again (``make kb``) keeps them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import Column, Date, DateTime, String, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.content.entries import Entry
from bot.db import Base, create_schema, default_engine


class SignOffRow(Base):
    __tablename__ = "kb_signoffs"

    entry_id = Column(String(100), primary_key=True)
    digest = Column(String(64), nullable=False)
    clinician = Column(String(100), nullable=False)
    signed_on = Column(Date, nullable=False)
    recorded_at = Column(DateTime, nullable=False)


@dataclass(frozen=True)
class SignOff:
    entry_id: str
    clinician: str
    signed_on: dt.date
    current: bool  # False: the entry changed after it was signed


def content_digest(entry: Entry) -> str:
    """What a clinician signs: the words patients see and where they come from."""
    signed = {
        "title": entry.title,
        "answer": entry.answer,
        "sms": entry.sms,
        "sources": entry.sources,
    }
    return hashlib.sha256(json.dumps(signed, sort_keys=True).encode()).hexdigest()


class SignOffs:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or default_engine()
        create_schema(self.engine)

    def record(
        self, entry: Entry, clinician: str, signed_on: dt.date | None = None
    ) -> SignOff:
        clinician = clinician.strip()
        if not clinician:
            raise ValueError("a sign-off needs the clinician's name")
        row = SignOffRow(
            entry_id=entry.id,
            digest=content_digest(entry),
            clinician=clinician,
            signed_on=signed_on or dt.date.today(),
            recorded_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        )
        with Session(self.engine, future=True) as session, session.begin():
            session.merge(row)
        return SignOff(entry.id, row.clinician, row.signed_on, True)

    def of(self, entries: list[Entry]) -> dict[str, SignOff]:
        """The sign-off of each entry that has one, current or not."""
        by_id = {entry.id: entry for entry in entries}
        query = select(SignOffRow).where(SignOffRow.entry_id.in_(list(by_id)))
        with Session(self.engine, future=True) as session:
            rows = session.scalars(query).all()
        return {
            row.entry_id: SignOff(
                row.entry_id,
                row.clinician,
                row.signed_on,
                row.digest == content_digest(by_id[row.entry_id]),
            )
            for row in rows
        }

    def current(self, entry: Entry) -> SignOff | None:
        """The entry's sign-off if it covers today's wording; None otherwise
        (never signed, changed since, or the database cannot be read)."""
        try:
            found = self.of([entry]).get(entry.id)
        except SQLAlchemyError:
            return None
        return found if found and found.current else None
