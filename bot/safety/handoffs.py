"""The handoff queue: every crisis or concern is stored for staff to act on.

A handoff is committed to the database before the bot replies. If the
database cannot be reached, or does not answer within the crisis path's time
limit (``store_promptly``), the handoff is appended (and fsynced) to a local
spool file instead (``bot.safety.spool``), and the next successful ``create``
(or ``replay_spool``, run by the alerts worker and by ``bot.staff``) moves it
into the database. Nothing
is ever dropped: a spooled record stays in the spool until its row exists, and
a torn or corrupt line is set aside in ``<spool>.corrupt`` for staff while the
rest replays. Staff see spooled handoffs (``spooled()``) before they reach the
database.

A concern whose patient was asked the direct safety question is escalated to
a crisis when the answer is yes, or when no answer comes (``escalate``); the
escalation is spooled like a new handoff when the database is down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from sqlalchemy import Column, DateTime, Integer, String, Text, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot import settings
from bot.db import Base, TableStore
from bot.safety.spool import TIME_FIELDS, Spool

logger = logging.getLogger(__name__)

# Threads of the crisis path's own: a hung database holds some of the first
# (one per handoff written meanwhile), never the second, nor the threads the
# rest of the server shares, so spooling never queues behind a hung write.
_DATABASE_THREADS = ThreadPoolExecutor(4, thread_name_prefix="handoff-db")
_SPOOL_THREADS = ThreadPoolExecutor(2, thread_name_prefix="handoff-spool")

STATUSES = ("open", "claimed", "resolved")
LEVELS = ("crisis", "concern")
# A handoff's message once the patient's words are erased (forget me, or the
# retention period): the record of the handoff stays.
ERASED = ""


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


class SafetyQuestionRow(Base):
    """A direct safety question asked for a concern handoff, and its answer.

    No answer within ``BOT_SAFETY_ANSWER_TIMEOUT_S`` makes the handoff a crisis
    (``HandoffQueue.escalate_unanswered``, run by the staff-alert worker).
    """

    __tablename__ = "safety_questions"

    handoff_id = Column(String(32), primary_key=True)
    sender_id = Column(String(128), nullable=False, index=True)
    channel = Column(String(32), nullable=False)
    asked_at = Column(DateTime(timezone=True), nullable=False, index=True)
    answer = Column(String(16), nullable=True)  # yes, no, other, none (timed out)
    answered_at = Column(DateTime(timezone=True), nullable=True)


def handoff_id_for(sender_id: str, message_id: str | None) -> str:
    """The id of the handoff a message raises: the same in every process that
    handles it (the action, the channel's fallback, the spool), so a message
    handled twice still makes one handoff."""
    if not message_id:
        return uuid.uuid4().hex
    return uuid.uuid5(uuid.NAMESPACE_URL, f"handoff:{sender_id}:{message_id}").hex


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
            "spooled": self.spooled,
        }


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite gives naive datetimes back; everything here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _spooled_handoff(record: dict) -> Handoff:
    handoff = Handoff(**record)
    if handoff.level not in LEVELS or not handoff.id:
        raise ValueError("not a handoff")
    return handoff


def _handoff(row: HandoffRow) -> Handoff:
    fields = {name: getattr(row, name) for name in Handoff.__dataclass_fields__
              if name != "spooled"}  # fmt: skip
    for name in TIME_FIELDS:
        fields[name] = _aware(fields[name])
    return Handoff(**fields)


def _make_crisis(row: HandoffRow) -> bool:
    """Escalate a row to crisis, with a new (urgent) alert: the concern's
    alert said "mood concern". False if it was a crisis already."""
    if row.level == "crisis":
        return False
    row.level = "crisis"
    row.notified_at = row.next_notify_at = row.notify_error = None
    row.notify_attempts = 0
    return True


class HandoffQueue(TableStore):
    """Create, list, claim and resolve handoffs; spool them when the DB is down."""

    def __init__(self, engine: Engine | None = None, spool: Path | None = None) -> None:
        super().__init__(engine)
        self.spool = Path(spool or settings.load().handoff_spool)
        self._spool = Spool(self.spool, _spooled_handoff)

    @staticmethod
    def new(
        sender_id: str,
        channel: str,
        level: str,
        message: str,
        handoff_id: str | None = None,
    ) -> Handoff:
        """A handoff not yet stored (its id decided now, for the spool too)."""
        if level not in LEVELS:
            raise ValueError(f"unknown handoff level {level!r}")
        return Handoff(
            id=handoff_id or uuid.uuid4().hex,
            sender_id=sender_id[:128],
            channel=(channel or "unknown")[:32],
            level=level,
            message=message,
            created_at=now(),
        )

    def create(
        self,
        sender_id: str,
        channel: str,
        level: str,
        message: str,
        handoff_id: str | None = None,
    ) -> Handoff:
        """Store a handoff: committed to the database, or fsynced to the spool."""
        return self.store(self.new(sender_id, channel, level, message, handoff_id))

    def store(self, handoff: Handoff) -> Handoff:
        try:
            self._insert([handoff])
        except SQLAlchemyError as error:
            logger.error(
                "handoff %s could not be stored in the database (%s); spooled",
                handoff.id,
                error.__class__.__name__,
            )
            return self.spool_only(handoff)
        self.replay_spool()  # the database is back: move anything spooled
        return handoff

    def spool_only(self, handoff: Handoff) -> Handoff:
        """Fsync the handoff to the spool (the database is down or too slow)."""
        self._append_to_spool(handoff)
        return replace(handoff, spooled=True)

    async def store_promptly(self, handoff: Handoff, timeout_s: float = 2.0) -> Handoff:
        """Store the handoff, waiting at most ``timeout_s`` for the database.

        A hung database must not hold back a crisis reply: after the time
        limit the handoff is spooled under the same id, and if the database
        write still lands later, the replay sees the row and skips it.
        """
        loop = asyncio.get_running_loop()
        attempt = loop.run_in_executor(_DATABASE_THREADS, self.store, handoff)
        try:
            return await asyncio.wait_for(asyncio.shield(attempt), timeout_s)
        except asyncio.TimeoutError:
            logger.error(
                "handoff %s: the database did not answer within %.1f s; spooled",
                handoff.id,
                timeout_s,
            )
        # The spool is a local file: milliseconds, unless another process
        # holds its lock (a replay stuck on the same hung database). Then the
        # reply does not wait either: the append goes on in its thread and
        # lands when the lock is free.
        spooling = loop.run_in_executor(_SPOOL_THREADS, self.spool_only, handoff)
        try:
            return await asyncio.wait_for(asyncio.shield(spooling), timeout_s)
        except asyncio.TimeoutError:
            logger.error(
                "handoff %s: the spool is locked; it is written when it is free",
                handoff.id,
            )
            return handoff

    def escalate(self, handoff: Handoff) -> Handoff:
        """Make a stored (or spooled) concern a crisis and alert staff again.

        ``handoff`` carries the id of the concern; stored as a crisis, it
        escalates the existing row (``_insert``), or becomes the row if the
        concern never arrived; when the database is down it is spooled, and
        the replay escalates the row.
        """
        return self.store(replace(handoff, level="crisis"))

    def _insert(self, handoffs: list[Handoff]) -> None:
        """Insert the handoffs whose rows do not exist yet; a crisis record for
        an existing concern row (a spooled escalation) escalates it."""
        with self._session() as session, session.begin():
            existing = {
                row.id: row
                for row in session.scalars(
                    select(HandoffRow).where(
                        HandoffRow.id.in_([h.id for h in handoffs])
                    )
                )
            }
            for handoff in handoffs:
                row = existing.get(handoff.id)
                if row is None:
                    fields = asdict(handoff)
                    fields.pop("spooled")
                    existing[handoff.id] = row = HandoffRow(**fields)
                    session.add(row)
                elif handoff.level == "crisis":
                    _make_crisis(row)

    @property
    def corrupt_spool(self) -> Path:
        return self._spool.corrupt_path

    def _append_to_spool(self, handoff: Handoff) -> None:
        self._spool.append(handoff)

    def spooled(self) -> list[Handoff]:
        """Handoffs waiting in the spool (the database was down): staff see
        them at once, before they reach the database."""
        handoffs, _ = self._spool.read()
        latest: dict[str, Handoff] = {}
        for handoff in handoffs:  # an escalation follows its concern
            latest[handoff.id] = replace(handoff, spooled=True)
        return list(latest.values())

    def mark_spooled_notified(self, handoff_id: str) -> None:
        """Staff were alerted to a spooled handoff: the spool remembers it, so
        the replayed row is not alerted twice."""
        if not self._spool.has_lines():
            return
        with self._spool.rewriting() as (handoffs, corrupt, rewrite):
            if corrupt:
                return  # replay_spool sets them aside first
            moment = now()
            rewrite(
                [
                    replace(h, notified_at=moment) if h.id == handoff_id else h
                    for h in handoffs
                ]
            )

    def list_with_spooled(
        self, status: str | None = None
    ) -> tuple[list[Handoff], str | None]:
        """The database's handoffs and the spooled ones not in it yet, and an
        error when the database could not be read (spooled ones only then)."""
        error = None
        try:
            stored = self.list(status)
        except SQLAlchemyError as failure:
            stored, error = [], failure.__class__.__name__
        known = {h.id for h in stored}
        waiting = [
            h
            for h in self.spooled()
            if h.id not in known and (status in (None, "open"))
        ]
        return sorted(stored + waiting, key=lambda h: h.created_at), error

    def replay_spool(self) -> int:
        """Move spooled handoffs into the database; returns how many moved.

        Lines that are not a handoff (a write torn by a crash, a corrupted
        file) are moved to ``<spool>.corrupt`` and logged, never replayed and
        never in the way of the others.
        """
        if not self._spool.has_lines():
            return 0
        with self._spool.rewriting() as (handoffs, corrupt, rewrite):
            if corrupt:
                self._spool.set_aside(corrupt)
                logger.error(
                    "%d unreadable line(s) of the handoff spool set aside in %s",
                    len(corrupt),
                    self.corrupt_spool,
                )
                rewrite(handoffs)
            if not handoffs:
                return 0
            try:
                self._insert(handoffs)
            except SQLAlchemyError:
                return 0  # still down: the spool keeps them
            rewrite([])
        logger.info("replayed %d spooled handoff(s) into the database", len(handoffs))
        return len(handoffs)

    def erase_text(
        self, sender_id: str | None = None, before: dt.datetime | None = None
    ) -> int:
        """Drop the patient's words from the handoffs of ``sender_id`` (the
        patient asked to be forgotten), or from those created ``before`` (the
        retention period): the record stays, for the clinic's safety log, with
        an empty message. Spooled ones too. Returns how many rows lost text."""
        if sender_id is None and before is None:
            raise ValueError("erase whose handoffs? give a sender id or a date")

        def matches(handoff: Handoff) -> bool:
            return (sender_id is None or handoff.sender_id == sender_id) and (
                before is None or handoff.created_at < before
            )

        if self._spool.has_lines():
            with self._spool.rewriting() as (handoffs, corrupt, rewrite):
                if any(matches(h) and h.message for h in handoffs):
                    if corrupt:  # a rewrite keeps handoffs only: keep these aside
                        self._spool.set_aside(corrupt)
                    rewrite([replace(h, message=ERASED) if matches(h) else h
                             for h in handoffs])  # fmt: skip
        statement = update(HandoffRow).where(HandoffRow.message != ERASED)
        if sender_id is not None:
            statement = statement.where(HandoffRow.sender_id == sender_id)
        if before is not None:
            statement = statement.where(HandoffRow.created_at < before)
        with self._session() as session, session.begin():
            return session.execute(statement.values(message=ERASED)).rowcount

    def unresolved_senders(self) -> frozenset[str]:
        """The conversations with a handoff staff have not resolved yet."""
        query = select(HandoffRow.sender_id).where(HandoffRow.status != "resolved")
        with self._session() as session:
            return frozenset(session.scalars(query))

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

    # The direct safety question ----------------------------------------

    def question_asked(self, handoff: Handoff) -> None:
        with self._session() as session, session.begin():
            if session.get(SafetyQuestionRow, handoff.id) is None:
                session.add(
                    SafetyQuestionRow(
                        handoff_id=handoff.id,
                        sender_id=handoff.sender_id,
                        channel=handoff.channel,
                        asked_at=now(),
                    )
                )

    def question_answered(self, handoff_id: str, answer: str) -> None:
        with self._session() as session, session.begin():
            session.execute(
                update(SafetyQuestionRow)
                .where(SafetyQuestionRow.handoff_id == handoff_id)
                .where(SafetyQuestionRow.answer.is_(None))
                .values(answer=answer, answered_at=now())
            )

    def escalate_unanswered(self, older_than_s: float) -> list[str]:
        """Escalate to crisis every concern whose safety question has had no
        answer for ``older_than_s``; returns their handoff ids."""
        moment = now()
        cutoff = moment - dt.timedelta(seconds=older_than_s)
        escalated = []
        with self._session() as session, session.begin():
            for question in session.scalars(
                select(SafetyQuestionRow)
                .where(SafetyQuestionRow.answer.is_(None))
                .where(SafetyQuestionRow.asked_at <= cutoff)
                .with_for_update(skip_locked=True)
            ):
                question.answer, question.answered_at = "none", moment
                row = session.get(HandoffRow, question.handoff_id)
                if row is not None and _make_crisis(row):
                    escalated.append(row.id)
        for handoff_id in escalated:
            logger.warning(
                "handoff %s: no answer to the safety question; escalated to crisis",
                handoff_id,
            )
        return escalated

    # Notification bookkeeping (bot.safety.alerts) -------------------------

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
        self,
        handoff_id: str,
        error: str | None,
        retry_in: float | None = None,
        level: str | None = None,
    ) -> None:
        """Record an alert's outcome. ``level`` is the level the alert said:
        if the handoff was escalated after the alert was read, the row waits
        for its urgent alert, due at once: the escalation may have come before
        this alert's reservation, which would otherwise hold it back for the
        reservation's whole length."""
        with self._session() as session, session.begin():
            row = session.get(HandoffRow, handoff_id)
            if level is not None and row.level != level:
                row.next_notify_at = None
                return
            row.notify_attempts = (row.notify_attempts or 0) + 1
            if error is None:
                row.notified_at, row.notify_error = now(), None
            else:
                row.notify_error = error[:500]
                row.next_notify_at = now() + dt.timedelta(seconds=retry_in or 60)
