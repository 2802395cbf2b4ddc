"""The Rasa server's checks of its stores (bot/run/dependencies.py): one log
line per change of state, and a public health endpoint that cannot make the
stores be pinged more than once a second."""

from __future__ import annotations

import asyncio
import logging
import time
import types

from bot.run import dependencies


def test_each_change_of_a_stores_state_is_logged_once(caplog):
    watch = dependencies.Watch()
    with caplog.at_level(logging.WARNING, logger="bot.run.dependencies"):
        for state in ("ok", "ok", "OperationalError", "OperationalError", "ok", "ok"):
            watch.report("conversation_store", state)
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]
    assert "the conversation store is not answering (OperationalError)" in (
        caplog.records[0].getMessage()
    )
    assert caplog.records[1].getMessage() == "the conversation store answers again"


def test_the_stores_are_checked_at_most_once_a_second(bot_database, monkeypatch):
    monkeypatch.setattr(dependencies, "_last", None)
    agent = types.SimpleNamespace(tracker_store=None, lock_store=None)
    first = asyncio.run(dependencies.check(agent))
    ping = dependencies._running["database"]
    again = asyncio.run(dependencies.check(agent))
    assert first == again == {
        "conversation_store": "ok", "lock_store": "ok", "database": "ok"
    }  # fmt: skip
    assert dependencies._running["database"] is ping  # not pinged again
    time.sleep(dependencies.FRESH_S)
    asyncio.run(dependencies.check(agent))
    assert dependencies._running["database"] is not ping
