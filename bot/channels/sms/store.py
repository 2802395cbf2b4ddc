"""What the SMS channel remembers between messages, in the bot's database.

Every row is keyed by the sender id (a keyed hash of the number, see
``bot.channels.sms.phone_numbers``); the only phone number stored is the
encrypted call-back number staff need for a handoff.

- ``sms_messages``: each Twilio ``MessageSid`` once, so a retried webhook is
  answered once (the primary key decides, across replicas).
- ``sms_opt_outs``: who sent STOP (and when); nothing is sent to them.
- ``sms_contacts``: the encrypted call-back number of each sender.
- ``sms_menus``: the buttons of the last reply, so "1" selects the first.

When the database cannot take an opt-out (STOP, START) or a call-back
number, the change is fsynced to a spool file (``SmsStateSpool``, the
handoff spool's format and locking) and moved into the database by the next
SMS that finds it up. Until then the spool is read first: a STOP sent while
the database was down is honoured from the next message on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, String, Text, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot import settings
from bot.db import Base, TableStore
from bot.safety.spool import Spool

logger = logging.getLogger(__name__)


class SmsMessageRow(Base):
    __tablename__ = "sms_messages"

    message_sid = Column(String(64), primary_key=True)
    sender_id = Column(String(64), nullable=False, index=True)
    received_at = Column(DateTime(timezone=True), nullable=False)
    # received → answered | opted_out | reply_failed
    status = Column(String(16), nullable=False)


class SmsOptOutRow(Base):
    __tablename__ = "sms_opt_outs"

    sender_id = Column(String(64), primary_key=True)
    opted_out = Column(Boolean, nullable=False)
    changed_at = Column(DateTime(timezone=True), nullable=False)


class SmsContactRow(Base):
    __tablename__ = "sms_contacts"

    sender_id = Column(String(64), primary_key=True)
    number_encrypted = Column(Text, nullable=False)
    updated_at = Column(DateTime(timezone=True), nullable=False)


class SmsMenuRow(Base):
    __tablename__ = "sms_menus"

    sender_id = Column(String(64), primary_key=True)
    buttons = Column(Text, nullable=False)  # JSON: [{"title", "payload"}, ...]
    sent_at = Column(DateTime(timezone=True), nullable=False)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class SmsStore(TableStore):
    """Dedupe, opt-outs, call-back numbers and menus of the SMS channel."""

    # -- each message once -------------------------------------------------
    def claim_message(self, message_sid: str, sender_id: str) -> bool:
        """True for the first delivery of ``message_sid``, False for a retry."""
        try:
            with self._session() as session, session.begin():
                session.add(
                    SmsMessageRow(
                        message_sid=message_sid,
                        sender_id=sender_id,
                        received_at=now(),
                        status="received",
                    )
                )
        except IntegrityError:
            return False
        return True

    def finish_message(self, message_sid: str, status: str) -> None:
        with self._session() as session, session.begin():
            session.execute(
                update(SmsMessageRow)
                .where(SmsMessageRow.message_sid == message_sid)
                .values(status=status)
            )

    def release_message(self, message_sid: str) -> None:
        """Forget a delivery that failed, so that Twilio's retry is processed."""
        with self._session() as session, session.begin():
            session.execute(
                delete(SmsMessageRow).where(SmsMessageRow.message_sid == message_sid)
            )

    def message_status(self, message_sid: str) -> str | None:
        with self._session() as session:
            return session.scalar(
                select(SmsMessageRow.status).where(
                    SmsMessageRow.message_sid == message_sid
                )
            )

    # -- opt-outs ----------------------------------------------------------
    def is_opted_out(self, sender_id: str) -> bool:
        with self._session() as session:
            row = session.get(SmsOptOutRow, sender_id)
            return bool(row and row.opted_out)

    def set_opted_out(self, sender_id: str, opted_out: bool) -> bool:
        """Record the choice; True if it changed (so it is confirmed once)."""
        try:
            return self._set_opted_out(sender_id, opted_out)
        except IntegrityError:  # a STOP from the same new number at once
            return self._set_opted_out(sender_id, opted_out)

    def _set_opted_out(self, sender_id: str, opted_out: bool) -> bool:
        with self._session() as session, session.begin():
            row = session.get(SmsOptOutRow, sender_id, with_for_update=True)
            if row is None:
                if not opted_out:
                    return False
                session.add(
                    SmsOptOutRow(sender_id=sender_id, opted_out=True, changed_at=now())
                )
                return True
            if row.opted_out == opted_out:
                return False
            row.opted_out, row.changed_at = opted_out, now()
            return True

    def _upsert(self, row: type[Base], sender_id: str, **values: Any) -> None:
        """Insert or update one sender's row in one statement, so that two
        messages from a new number at once cannot collide on the key."""
        dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(
            self.engine.dialect.name
        )
        with self._session() as session, session.begin():
            if dialect is None:  # another database: read, then write
                existing = session.get(row, sender_id, with_for_update=True)
                if existing is None:
                    session.add(row(sender_id=sender_id, **values))
                else:
                    for name, value in values.items():
                        setattr(existing, name, value)
                return
            statement = dialect.insert(row).values(sender_id=sender_id, **values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["sender_id"], set_=values
                )
            )

    # -- call-back numbers -------------------------------------------------
    def save_contact(self, sender_id: str, number_encrypted: str) -> None:
        self._upsert(
            SmsContactRow,
            sender_id,
            number_encrypted=number_encrypted,
            updated_at=now(),
        )

    def contact(self, sender_id: str) -> str | None:
        """The encrypted call-back number of ``sender_id``, if it ever texted."""
        with self._session() as session:
            row = session.get(SmsContactRow, sender_id)
            return row.number_encrypted if row else None

    # -- numbered menus ----------------------------------------------------
    def save_menu(self, sender_id: str, buttons: list[dict[str, Any]]) -> None:
        """The buttons of the latest reply (an empty list clears the menu)."""
        if not buttons:
            with self._session() as session, session.begin():
                session.execute(
                    delete(SmsMenuRow).where(SmsMenuRow.sender_id == sender_id)
                )
            return
        self._upsert(SmsMenuRow, sender_id, buttons=json.dumps(buttons), sent_at=now())

    def menu(self, sender_id: str) -> list[dict[str, Any]]:
        with self._session() as session:
            row = session.get(SmsMenuRow, sender_id)
            return json.loads(row.buttons) if row else []

    # -- privacy (bot.privacy) ---------------------------------------------
    def forget(self, sender_id: str, keep_contact: bool = False) -> int:
        """Delete what the channel keeps of ``sender_id``: its call-back number
        (unless ``keep_contact``: staff still have to call), menu and message
        records; not an opt-out, which STOP requires to be honoured."""
        where = [
            (SmsMenuRow, SmsMenuRow.sender_id == sender_id),
            (SmsMessageRow, SmsMessageRow.sender_id == sender_id),
        ]
        if not keep_contact:
            where.append((SmsContactRow, SmsContactRow.sender_id == sender_id))
        return self._delete(*where)

    def purge(self, before: dt.datetime, keep: frozenset[str] = frozenset()) -> int:
        """Delete call-back numbers, menus and message records older than
        ``before``; the call-back numbers of the senders in ``keep`` (a
        handoff still open: staff must be able to call) stay."""
        return self._delete(
            (SmsContactRow, (SmsContactRow.updated_at < before)
             & SmsContactRow.sender_id.not_in(keep)),
            (SmsMenuRow, SmsMenuRow.sent_at < before),
            (SmsMessageRow, SmsMessageRow.received_at < before),
        )  # fmt: skip

    def _delete(self, *where: tuple[type[Base], Any]) -> int:
        with self._session() as session, session.begin():
            return sum(
                session.execute(delete(row).where(condition)).rowcount
                for row, condition in where
            )


# -- what the database could not take ------------------------------------------

OPT_OUT, CONTACT = "opt_out", "contact"


@dataclass
class SmsStateChange:
    """An opt-out choice (``value``: bool) or an encrypted call-back number
    (``value``: str) that waits in the spool for the database."""

    kind: str
    sender_id: str
    value: Any
    created_at: dt.datetime


def _spooled_change(record: dict) -> SmsStateChange:
    change = SmsStateChange(**record)
    valid = {OPT_OUT: bool, CONTACT: str}.get(change.kind)
    if valid is None or not isinstance(change.value, valid) or not change.sender_id:
        raise ValueError("not an SMS state change")
    return change


class SmsStateSpool:
    """Opt-outs and call-back numbers kept in a file while the database is
    down (``BOT_SMS_SPOOL``), replayed into ``SmsStore`` in order."""

    def __init__(self, path: Path | None = None) -> None:
        self.spool = Spool(
            Path(path or settings.load().sms_state_spool), _spooled_change
        )

    def add(self, kind: str, sender_id: str, value: Any) -> None:
        self.spool.append(SmsStateChange(kind, sender_id, value, now()))

    def opted_out(self, sender_id: str) -> bool | None:
        """The latest spooled opt-out choice of ``sender_id`` (None: none)."""
        if not self.spool.has_lines():
            return None
        changes, _ = self.spool.read()
        choices = [c.value for c in changes
                   if c.kind == OPT_OUT and c.sender_id == sender_id]  # fmt: skip
        return choices[-1] if choices else None

    def replay(self, store: SmsStore) -> int:
        """Apply the spooled changes in order; those the database still
        refuses stay, with everything after them. How many moved."""
        if not self.spool.has_lines():
            return 0
        with self.spool.rewriting() as (changes, corrupt, rewrite):
            if corrupt:
                self.spool.set_aside(corrupt)
                logger.error("%d unreadable SMS spool line(s) set aside", len(corrupt))
            for done, change in enumerate(changes):
                try:
                    if change.kind == OPT_OUT:
                        store.set_opted_out(change.sender_id, change.value)
                    else:
                        store.save_contact(change.sender_id, change.value)
                except SQLAlchemyError:
                    rewrite(changes[done:])
                    return done
            rewrite([])
            return len(changes)

    def drop(self, sender_id: str) -> int:
        """Forget the spooled call-back numbers of ``sender_id`` (forget me);
        its opt-out choices stay, as in the database. How many went."""
        if not self.spool.has_lines():
            return 0
        with self.spool.rewriting() as (changes, corrupt, rewrite):
            kept = [c for c in changes if (c.kind, c.sender_id) != (CONTACT, sender_id)]
            if corrupt:
                self.spool.set_aside(corrupt)
            rewrite(kept)
            return len(changes) - len(kept)
