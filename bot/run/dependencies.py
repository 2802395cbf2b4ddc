"""Whether the stores the Rasa server needs answer, said in its health check
and once in its log at each change.

The Rasa server needs its conversation store (SQL: SQLite embedded,
PostgreSQL in production), its lock store (in process embedded, Redis in
production) and the project's database (handoffs, SMS state). When one is
away the channels still answer every patient (``bot.channels.guard``: the
clinic's phone, or 988 and 911 with a spooled handoff for a crisis), and
everything reconnects by itself when it is back: nothing here restarts
anything. What this module adds is that people can tell:

- ``GET /webhooks/rest/health`` answers 200 when every store answers and 503
  naming the one that does not (for monitoring; the plain
  ``GET /webhooks/rest/`` stays the readiness probe, 200 while the replica
  can answer patients at all);
- a check every ``BOT_DEPENDENCY_CHECK_S`` seconds logs one ERROR line when a
  store stops answering and one WARNING line when it answers again, whatever
  the traffic; a message that fails on a store says so too (``noticed``).

Each check has ``CHECK_TIMEOUT_S``: a hung store is reported as not
answering, it does not hang the health check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0
OK = "ok"
# What each store is, in the log lines staff read.
NAMES = {
    "conversation_store": "the conversation store",
    "lock_store": "the lock store",
    "database": "the bot's database (handoffs, SMS state)",
}


class Watch:
    """The last known state of each store; logs each change once."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    def report(self, name: str, state: str) -> None:
        before = self.states.get(name)
        self.states[name] = state
        if state == before:
            return
        if state != OK:
            logger.error(
                "%s is not answering (%s): patients get the safe reply "
                "until it is back", NAMES.get(name, name), state,
            )  # fmt: skip
        elif before is not None:
            logger.warning("%s answers again", NAMES.get(name, name))


watch = Watch()

# The checks' own threads: a check stuck on a hung store holds one of these,
# never a thread the channels need; and while it is stuck, no second check of
# that store starts (it is reported as still waiting).
_THREADS = ThreadPoolExecutor(3, thread_name_prefix="store-check")
_running: dict[str, Future] = {}
# The health endpoint is public: however often it is asked, the stores are
# checked at most once per FRESH_S, and the last answer given meanwhile.
FRESH_S = 1.0
_last: tuple[float, dict[str, str]] | None = None


def _inner(store: Any) -> Any:
    # Rasa wraps a custom tracker store in an awaitable adapter.
    return getattr(store, "_tracker_store", store)


async def _in_thread(name: str, check) -> str:
    """Run a blocking check in a thread, for at most CHECK_TIMEOUT_S."""
    waiting = f"no answer within {CHECK_TIMEOUT_S:.0f} s"
    if name in _running and not _running[name].done():
        return waiting  # the previous check of this store is still stuck
    _running[name] = _THREADS.submit(check)
    try:
        await asyncio.wait_for(
            asyncio.shield(asyncio.wrap_future(_running[name])), CHECK_TIMEOUT_S
        )
    except asyncio.TimeoutError:
        return waiting
    except (SQLAlchemyError, OSError) as error:
        return type(error).__name__
    return OK


async def check_conversation_store(store: Any) -> str:
    store = _inner(store)
    ping = getattr(store, "ping", None)
    if ping is None:
        return OK  # in memory: always there
    return await _in_thread("conversation_store", ping)


async def check_lock_store(lock_store: Any) -> str:
    ping = getattr(lock_store, "ping", None)
    if ping is None:
        return OK  # in process
    try:
        await asyncio.wait_for(ping(), CHECK_TIMEOUT_S)
    except asyncio.TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S:.0f} s"
    except Exception as error:  # redis raises its own and OSError's kinds
        return type(error).__name__
    return OK


def _ping_database() -> None:
    from bot.db import default_engine

    with default_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


async def check(agent: Any) -> dict[str, str]:
    """Each store's state (``OK`` or why not), also reported to ``watch``."""
    global _last
    now = time.monotonic()
    if _last is not None and now - _last[0] < FRESH_S:
        return dict(_last[1])
    states = {
        "conversation_store": await check_conversation_store(
            getattr(agent, "tracker_store", None)
        ),
        "lock_store": await check_lock_store(getattr(agent, "lock_store", None)),
        "database": await _in_thread("database", _ping_database),
    }
    for name, state in states.items():
        watch.report(name, state)
    _last = (time.monotonic(), states)
    return dict(states)


def noticed(error: BaseException) -> None:
    """A message failed with ``error``: if a store is why, say which (the
    periodic check says when it is back)."""
    from rasa.core.lock_store import LockError

    if isinstance(error, SQLAlchemyError):
        watch.report("conversation_store", type(error).__name__)
    elif isinstance(error, LockError) and error.__cause__ is not None:
        watch.report("lock_store", type(error.__cause__).__name__)


async def keep_checking(agent_of, every_s: float) -> None:
    """Check every ``every_s`` seconds for the life of the server.
    ``agent_of()`` gives the agent (None until the model is loaded)."""
    while True:
        await asyncio.sleep(every_s)
        agent = agent_of()
        if agent is None:
            continue
        try:
            await check(agent)
        except Exception:  # never let the watcher die
            logger.exception("the stores' check failed")
