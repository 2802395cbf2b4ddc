"""Rasa's SQL tracker store, with less database work per message.

Profiled with py-spy under load (issue 11), the tracker store was about half of
the Rasa server's busy time. For every message Rasa's ``SQLTrackerStore``:

- reads the conversation's events since its last session start;
- before saving, counts those same rows again, to know which of the tracker's
  events are new (``_additional_events``);
- commits the new rows, which on SQLite's default rollback journal syncs the
  file to disk twice per message.

This subclass keeps Rasa's tables, queries and results, and changes only how
much work they take:

- the number of stored events read by ``retrieve`` is kept on the tracker it
  returns, and ``save`` starts from it instead of counting again. Rasa handles
  one conversation at a time under its lock store, from retrieve to save, so
  nobody else adds rows to that conversation in between (with several
  replicas, the project's Redis lock store makes that hold across them). A
  tracker that did not come from ``retrieve`` (a new conversation, one built
  by the HTTP API) and a save that starts a new session fall back to Rasa's
  count;
- ``retrieve`` selects only the JSON column it reads, not whole ORM rows;
- on SQLite, a few connections stay open (Rasa opens the file anew for every
  session), and the file is in write-ahead-log mode with
  ``synchronous=NORMAL``: one sync per checkpoint instead of per commit. A
  crash of the process loses nothing committed; a power cut may lose the last
  moments of conversations, never the file's consistency. Handoffs are not
  kept here (``bot.safety``).

On a database server (PostgreSQL), its database work runs in threads of its
own, each call given ``BOT_TRACKER_TIMEOUT_S`` (30 s). Rasa 3.6 runs the SQL
tracker store on its event loop: a PostgreSQL that hangs (no error, no
answer) would freeze the whole Rasa server, the channels' safe replies and
988 included. Here a hung read or write fails after the timeout instead, and
Rasa's fail-safe wrapper answers that message from a fresh conversation in
memory; the loop stays free, and the stuck thread finishes or fails when the
database answers. The limit is long on purpose: under a heavy load a read
can wait seconds for its turn, and a read given up makes Rasa answer from a
fresh conversation and save that one over the stored one's count. With 5 s,
one run of the cluster test (50 conversations at once on 2 cores) stored a
reply different from the one sent, likely so (four other runs passed). The
channels' own waits (3 s for a crisis) keep patients from waiting on it.
A SQLite file (the embedded profile) cannot hang so and
stays on the loop: in threads it cost the Rasa server about a fifth more
CPU per message under 20 conversations (the threads and the loop taking
turns at the interpreter lock; bench/throughput.py, measured in alternation).

It also forgets: a conversation whose tracker has the slot
``conversation_forgotten`` set (the patient confirmed "forget me",
``bot.privacy``) is deleted at that save instead of written, so that nothing
of it is left, not even the confirming turn; ``forget`` and ``purge`` serve
staff and ``make purge``.

Registered by module path in the endpoint files::

    tracker_store:
      type: bot.run.tracker_store.CountingSQLTrackerStore
      dialect: sqlite
      db: var/conversations.db
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

logger = logging.getLogger(__name__)

# Set by the action that carries out "forget me" (domain.yml).
FORGOTTEN_SLOT = "conversation_forgotten"
# Set on a tracker by ``retrieve``: how many of its events are already stored.
_STORED = "_bot_stored_event_count"
# Set by ``_additional_events`` and made ``_STORED`` once the save commits.
_SAVING = "_bot_saving_event_count"
# Seconds a new PostgreSQL connection may take (psycopg2's connect_timeout).
CONNECT_TIMEOUT_S = 3
# The store's own threads: a hung database can hold some of them without
# taking the threads that the rest of the Rasa server uses.
_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="conversation-store")


def _sqlite_write_ahead_log(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Two Rasa processes may share the file (make run's and a staff
        # shell's): wait for the other's write instead of failing at once.
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


class CountingSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that does not count a conversation's events twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from bot import settings

        super().__init__(*args, **kwargs)
        self.timeout_s = settings.load().tracker_timeout_s
        if self.engine.dialect.name != "sqlite":
            # Rasa logs a failed save's exception, whose text quotes the
            # statement's parameters: the events, patients' words. Not here.
            # pool_pre_ping: after PostgreSQL was away, a pooled connection
            # is tested and replaced before use, so the first messages after
            # it is back do not fail on a dead connection (no restart
            # needed); connect_timeout: a PostgreSQL that does not answer
            # fails a message in seconds, and the channel's safe reply goes
            # out, instead of waiting on the kernel's TCP timeout.
            url = self.engine.url
            kwargs = create_engine_kwargs(url)
            kwargs["connect_args"] = {
                **kwargs.get("connect_args", {}),
                "connect_timeout": CONNECT_TIMEOUT_S,
            }
            self.engine.dispose()
            self.engine = create_engine(
                url, hide_parameters=True, pool_pre_ping=True, **kwargs
            )
            self.sessionmaker = sessionmaker(bind=self.engine)
        if self.engine.dialect.name == "sqlite":
            # Rasa's engine opens the file anew for every session (NullPool):
            # under load, opening and closing was a tenth of the server's
            # time. Keep a few connections open instead; Rasa uses each from
            # one thread at a time, on its event loop.
            pooled = create_engine(
                self.engine.url,
                poolclass=QueuePool,
                pool_size=2,
                max_overflow=8,
                connect_args={"check_same_thread": False},
                hide_parameters=True,
            )
            event.listen(pooled, "connect", _sqlite_write_ahead_log)
            self.engine.dispose()
            self.engine = pooled
            self.sessionmaker = sessionmaker(bind=pooled)

    def ping(self) -> None:
        """Raise if the database does not answer (the health check's)."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    async def _in_thread(self, work: Callable[..., Any], *args: Any) -> Any:
        """``work(*args)`` in the store's threads, for at most ``timeout_s``
        (asyncio.TimeoutError after that; the thread runs on); on SQLite,
        here and now."""
        if self.engine.dialect.name == "sqlite":
            return work(*args)
        future = asyncio.get_running_loop().run_in_executor(_THREADS, work, *args)
        return await asyncio.wait_for(future, self.timeout_s)

    def _read_events(self, sender_id: str, all_sessions: bool) -> list[dict]:
        with self.session_scope() as session:
            query = self._event_query(session, sender_id, all_sessions).with_entities(
                self.SQLEvent.data
            )
            return [json.loads(data) for (data,) in query]

    async def _retrieve(
        self, sender_id: str, fetch_events_from_all_sessions: bool
    ) -> DialogueStateTracker | None:
        events = await self._in_thread(
            self._read_events, sender_id, fetch_events_from_all_sessions
        )
        if not self.domain or not events:
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        if not fetch_events_from_all_sessions:
            # Exactly the rows Rasa's _additional_events would count.
            setattr(tracker, _STORED, len(events))
        return tracker

    def _additional_events(
        self, session: Any, tracker: DialogueStateTracker
    ) -> Iterator:
        stored = getattr(tracker, _STORED, None)
        if stored is None:
            stored = self._event_query(
                session, tracker.sender_id, fetch_events_from_all_sessions=False
            ).count()
        new = list(itertools.islice(tracker.events, stored, len(tracker.events)))
        # A new session moves the count's starting point: count it next time.
        starts_session = any(isinstance(e, SessionStarted) for e in new)
        setattr(tracker, _SAVING, None if starts_session else stored + len(new))
        return iter(new)

    async def save(self, tracker: DialogueStateTracker) -> None:
        if tracker.get_slot(FORGOTTEN_SLOT):
            deleted = await self._in_thread(self.forget, tracker.sender_id)
            logger.info("a conversation was deleted at the patient's request "
                        "(%d events)", deleted)  # fmt: skip
            setattr(tracker, _STORED, None)
            return
        await self.stream_events(tracker)
        try:
            await self._in_thread(self._write_new_events, tracker)
        except BaseException:
            setattr(tracker, _STORED, None)  # what was written is unknown
            raise
        setattr(tracker, _STORED, getattr(tracker, _SAVING, None))

    def _write_new_events(self, tracker: DialogueStateTracker) -> None:
        """Rasa's ``SQLTrackerStore.save`` after its event broker step (the
        same rows), made synchronous to run in a thread."""
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                intent = data.get("parse_data", {}).get("intent", {}).get("name")
                session.add(
                    self.SQLEvent(
                        sender_id=tracker.sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=intent,
                        action_name=data.get("name"),
                        data=json.dumps(data),
                    )
                )
            session.commit()

    def forget(self, sender_id: str) -> int:
        """Delete every event of the conversation ``sender_id``; how many."""
        with self.session_scope() as session:
            deleted = (
                session.query(self.SQLEvent)
                .filter(self.SQLEvent.sender_id == sender_id)
                .delete(synchronize_session=False)
            )
            session.commit()
        return deleted

    def purge(self, before: float) -> tuple[int, int]:
        """Delete the conversations whose last event is older than ``before``
        (a Unix time): (conversations, events) deleted."""
        with self.session_scope() as session:
            stale = (
                session.query(self.SQLEvent.sender_id)
                .group_by(self.SQLEvent.sender_id)
                .having(func.max(self.SQLEvent.timestamp) < before)
                .subquery()
            )
            senders = session.query(func.count()).select_from(stale).scalar()
            events = (
                session.query(self.SQLEvent)
                .filter(self.SQLEvent.sender_id.in_(select(stale.c.sender_id)))
                .delete(synchronize_session=False)
            )
            session.commit()
        return senders, events


def configured_store() -> CountingSQLTrackerStore:
    """The conversation store of the profile's endpoints file, as the servers
    use it (for staff commands and ``make purge``)."""
    import os

    from rasa.core.tracker_store import TrackerStore
    from rasa.core.utils import read_endpoints_from_path
    from rasa.shared.core.domain import Domain

    from bot import settings
    from bot.run.serve import child_env

    for name, value in child_env().items():
        os.environ.setdefault(name, value)
    endpoints = read_endpoints_from_path(settings.load().endpoints_file)
    domain = Domain.load(str(settings.PROJECT_ROOT / "domain.yml"))
    store = TrackerStore.create(endpoints.tracker_store, domain)
    return getattr(store, "_tracker_store", store)  # inside Rasa's awaitable wrapper
