"""The handoff queue: every crisis or concern is stored for staff to act on.

A handoff is committed to the database before the bot replies. If the
database cannot be reached, the handoff is appended (and fsynced) to a local
spool file instead, and the next successful ``create`` (or ``replay_spool``,
run by the notifier and by ``bot.staff``) moves it into the database. Nothing
is ever dropped: a spooled record stays in the spool until its row exists.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import Column, DateTime, Integer, String, Text, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot import settings
from bot.db import Base, TableStore

logger = logging.getLogger(__name__)

STATUSES = ("open", "claimed", "resolved")
LEVELS = ("crisis", "concern")


class HandoffNotFound(LookupError):
    pass


class HandoffRow(Base):
    __tablename__ = "handoffs"

    id = Column(String(32), primary_key=True)
    sender_id = Column(String(128), nullable=False, index=True)
    channel = Column(String(32), nullable=False)
    level = Column(String(16), nullable=False)
    message = Column(Text, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False)
    status = Column(String(16), nullable=False, default="open", index=True)
    claimed_by = Column(String(100), nullable=True)
    resolved_by = Column(String(100), nullable=True)
    resolved_at = Column(DateTime(timezone=True), nullable=True)
    note = Column(Text, nullable=True)
    # Staff notification: retried until notified_at is set.
    notified_at = Column(DateTime(timezone=True), nullable=True)
    notify_attempts = Column(Integer, nullable=False, default=0)
    notify_error = Column(Text, nullable=True)
    next_notify_at = Column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class Handoff:
    id: str
    sender_id: str
    channel: str
    level: str
    message: str
    created_at: dt.datetime
    status: str = "open"
    claimed_by: str | None = None
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None
    note: str | None = None
    notified_at: dt.datetime | None = None
    notify_attempts: int = 0
    notify_error: str | None = None
    next_notify_at: dt.datetime | None = None
    spooled: bool = False

    def summary(self) -> dict[str, object]:
        """The fields staff lists show (no message text)."""
        return {
            "id": self.id,
            "sender_id": self.sender_id,
            "channel": self.channel,
            "level": self.level,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "notified": self.notified_at is not None,
            "notify_attempts": self.notify_attempts,
            "notify_error": self.notify_error,
            "resolved_by": self.resolved_by,
        }


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite gives naive datetimes back; everything here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _handoff(row: HandoffRow) -> Handoff:
    fields = {name: getattr(row, name) for name in Handoff.__dataclass_fields__
              if name != "spooled"}  # fmt: skip
    for name in ("created_at", "resolved_at", "notified_at", "next_notify_at"):
        fields[name] = _aware(fields[name])
    return Handoff(**fields)


def default_spool_path() -> Path:
    return Path(
        os.environ.get("BOT_HANDOFF_SPOOL", settings.VAR_DIR / "handoff-spool.jsonl")
    )


class HandoffQueue(TableStore):
    """Create, list, claim and resolve handoffs; spool them when the DB is down."""

    def __init__(self, engine: Engine | None = None, spool: Path | None = None) -> None:
        super().__init__(engine)
        self.spool = Path(spool or default_spool_path())

    def create(self, sender_id: str, channel: str, level: str, message: str) -> Handoff:
        """Store a handoff: committed to the database, or fsynced to the spool."""
        if level not in LEVELS:
            raise ValueError(f"unknown handoff level {level!r}")
        handoff = Handoff(
            id=uuid.uuid4().hex,
            sender_id=sender_id[:128],
            channel=(channel or "unknown")[:32],
            level=level,
            message=message,
            created_at=now(),
        )
        try:
            self._insert([handoff])
        except SQLAlchemyError as error:
            logger.error(
                "handoff %s could not be stored in the database (%s); spooled",
                handoff.id,
                error.__class__.__name__,
            )
            self._append_to_spool(handoff)
            return Handoff(**{**asdict(handoff), "spooled": True})
        self.replay_spool()  # the database is back: move anything spooled
        return handoff

    def _insert(self, handoffs: list[Handoff]) -> None:
        with self._session() as session, session.begin():
            existing = set(
                session.scalars(
                    select(HandoffRow.id).where(
                        HandoffRow.id.in_([h.id for h in handoffs])
                    )
                )
            )
            for handoff in handoffs:
                if handoff.id not in existing:
                    fields = asdict(handoff)
                    fields.pop("spooled")
                    session.add(HandoffRow(**fields))

    def _append_to_spool(self, handoff: Handoff) -> None:
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        record = asdict(handoff)
        record["created_at"] = handoff.created_at.isoformat()
        line = json.dumps(record) + "\n"
        with open(self.spool, "a", encoding="utf-8") as spool:
            fcntl.flock(spool, fcntl.LOCK_EX)
            spool.write(line)
            spool.flush()
            os.fsync(spool.fileno())

    def replay_spool(self) -> int:
        """Move spooled handoffs into the database; returns how many moved."""
        if not self.spool.exists() or self.spool.stat().st_size == 0:
            return 0
        with open(self.spool, "r+", encoding="utf-8") as spool:
            fcntl.flock(spool, fcntl.LOCK_EX)
            handoffs = []
            for line in spool.read().splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                record.pop("spooled", None)
                record["created_at"] = dt.datetime.fromisoformat(record["created_at"])
                handoffs.append(Handoff(**record))
            if not handoffs:
                return 0
            try:
                self._insert(handoffs)
            except SQLAlchemyError:
                return 0  # still down: the spool keeps them
            spool.seek(0)
            spool.truncate()
            spool.flush()
            os.fsync(spool.fileno())
        logger.info("replayed %d spooled handoff(s) into the database", len(handoffs))
        return len(handoffs)

    def list(self, status: str | None = None) -> list[Handoff]:
        query = select(HandoffRow).order_by(HandoffRow.created_at)
        if status:
            query = query.where(HandoffRow.status == status)
        with self._session() as session:
            return [_handoff(row) for row in session.scalars(query)]

    def get(self, handoff_id: str) -> Handoff:
        with self._session() as session:
            return _handoff(self._row(session, handoff_id))

    def _row(self, session: Session, handoff_id: str) -> HandoffRow:
        """The row whose id is ``handoff_id`` or starts with it (unique prefix)."""
        if len(handoff_id) < 6:
            raise HandoffNotFound("give at least 6 characters of the handoff id")
        rows = session.scalars(
            select(HandoffRow).where(HandoffRow.id.like(f"{handoff_id}%")).limit(2)
        ).all()
        if len(rows) != 1:
            raise HandoffNotFound(
                f"no handoff {handoff_id}" if not rows else f"{handoff_id} is ambiguous"
            )
        return rows[0]

    def claim(self, handoff_id: str, by: str) -> Handoff:
        with self._session() as session, session.begin():
            row = self._row(session, handoff_id)
            if row.status == "open":
                row.status, row.claimed_by = "claimed", by
            return _handoff(row)

    def resolve(self, handoff_id: str, by: str, note: str | None = None) -> Handoff:
        with self._session() as session, session.begin():
            row = self._row(session, handoff_id)
            row.status, row.resolved_by, row.resolved_at = "resolved", by, now()
            if note:
                row.note = note
            return _handoff(row)

    # Notification bookkeeping (bot.staff_alerts) -------------------------

    def due_for_notification(self, limit: int = 20) -> list[Handoff]:
        moment = now()
        query = (
            select(HandoffRow)
            .where(HandoffRow.notified_at.is_(None))
            .where(
                (HandoffRow.next_notify_at.is_(None))
                | (HandoffRow.next_notify_at <= moment)
            )
            .order_by(HandoffRow.created_at)
            .limit(limit)
        )
        with self._session() as session:
            return [_handoff(row) for row in session.scalars(query)]

    def reserve_notification(self, handoff_id: str, seconds: float) -> bool:
        """Take the right to notify (atomic: one replica wins)."""
        moment = now()
        with self._session() as session, session.begin():
            result = session.execute(
                update(HandoffRow)
                .where(HandoffRow.id == handoff_id)
                .where(HandoffRow.notified_at.is_(None))
                .where(
                    (HandoffRow.next_notify_at.is_(None))
                    | (HandoffRow.next_notify_at <= moment)
                )
                .values(next_notify_at=moment + dt.timedelta(seconds=seconds))
            )
            return result.rowcount == 1

    def record_notification(
        self, handoff_id: str, error: str | None, retry_in: float | None = None
    ) -> None:
        with self._session() as session, session.begin():
            row = session.get(HandoffRow, handoff_id)
            row.notify_attempts = (row.notify_attempts or 0) + 1
            if error is None:
                row.notified_at, row.notify_error = now(), None
            else:
                row.notify_error = error[:500]
                row.next_notify_at = now() + dt.timedelta(seconds=retry_in or 60)
