"""Deleting a patient's data: one conversation (forget me), or everything past
the retention period (purge). See ``bot.privacy``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from bot import settings
from bot.channels.sms.store import SmsStateSpool, SmsStore
from bot.db import default_engine
from bot.safety.handoffs import HandoffQueue


@dataclass(frozen=True)
class Erased:
    """What one erasure removed (counts only: nothing of what it said)."""

    conversations: int = 0
    events: int = 0
    handoff_texts: int = 0
    sms_rows: int = 0

    def __str__(self) -> str:
        return (
            f"{self.conversations} conversation(s) ({self.events} events) deleted, "
            f"{self.handoff_texts} handoff message(s) erased, "
            f"{self.sms_rows} SMS record(s) deleted"
        )


def forget_patient_data(sender_id: str, engine: Engine | None = None) -> Erased:
    """The bot's own records of ``sender_id`` (not its conversation, which
    the conversation store deletes): handoff texts and SMS records."""
    engine = engine or default_engine()
    queue = HandoffQueue(engine)
    handoffs = queue.erase_text(sender_id=sender_id)
    # A handoff staff have not resolved (a crisis, maybe) keeps its call-back
    # number until they have: the patient is told so before confirming.
    calling = sender_id in queue.unresolved_senders()
    sms = SmsStore(engine).forget(sender_id, keep_contact=calling)
    if not calling:  # nor a call-back number waiting for the database
        sms += SmsStateSpool().drop(sender_id)
    return Erased(handoff_texts=handoffs, sms_rows=sms)


def forget(sender_id: str, engine: Engine | None = None, store=None) -> Erased:
    """Everything of ``sender_id``: the conversation and the bot's records
    (staff, by sender id)."""
    from bot.run.tracker_store import configured_store

    store = store or configured_store()
    events = store.forget(sender_id)
    own = forget_patient_data(sender_id, engine)
    return Erased(int(events > 0), events, own.handoff_texts, own.sms_rows)


def cutoff(days: int, now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now - dt.timedelta(days=days)


def purge(days: int | None = None, engine: Engine | None = None, store=None) -> Erased:
    """Everything older than ``days`` (``BOT_RETENTION_DAYS``): conversations
    whose last message is older, handoff texts, SMS records."""
    from bot.run.tracker_store import configured_store

    days = settings.load().retention_days if days is None else days
    if days < 1:
        raise ValueError("the retention period is at least one day")
    before = cutoff(days)
    engine = engine or default_engine()
    store = store or configured_store()
    conversations, events = store.purge(before.timestamp())
    queue = HandoffQueue(engine)
    handoffs = queue.erase_text(before=before)
    sms = SmsStore(engine).purge(before, keep=queue.unresolved_senders())
    return Erased(conversations, events, handoffs, sms)
