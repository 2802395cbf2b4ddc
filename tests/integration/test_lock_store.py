"""The project's Redis lock store (bot/run/lock_store.py) on a real Redis:
tickets across two "replicas" (two store instances) exclude each other and
none is lost, a dead holder's ticket expires, and Rasa builds it from the
module path in endpoints.yml."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from urllib.parse import urlparse

import pytest
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig

from bot.run import lock_store as lock_store_module
from bot.run import services
from bot.run.lock_store import AtomicRedisLockStore


def store() -> AtomicRedisLockStore:
    url = urlparse(services.redis_url())
    return AtomicRedisLockStore(
        host=url.hostname, port=url.port, db=1, key_prefix=f"t{uuid.uuid4().hex[:8]}"
    )


def test_rasa_builds_it_from_the_module_path_in_the_endpoints():
    url = urlparse(services.redis_url())
    config = EndpointConfig(
        url=url.hostname, type="bot.run.lock_store.AtomicRedisLockStore",
        port=url.port, db=1,
    )  # fmt: skip
    assert isinstance(LockStore.create(config), AtomicRedisLockStore)


def test_two_replicas_serve_one_conversation_one_message_at_a_time():
    async def run() -> tuple[list[int], int]:
        replicas = [store(), store()]
        replicas[1].key_prefix = replicas[0].key_prefix  # one shared Redis lock
        inside, overlaps, done = [], 0, []

        async def message(n: int) -> None:
            nonlocal overlaps
            async with replicas[n % 2].lock("conversation-1"):
                inside.append(n)
                if len(inside) > 1:
                    overlaps += 1
                await asyncio.sleep(0.002)
                inside.remove(n)
                done.append(n)

        await asyncio.gather(*(message(n) for n in range(50)))
        return done, overlaps

    done, overlaps = asyncio.run(run())
    assert sorted(done) == list(range(50))  # none lost, none twice
    assert overlaps == 0


def _replica(host: str, port: int, prefix: str) -> tuple[list, int]:
    """One replica's process: 20 messages of one conversation at once."""

    async def run() -> tuple[list, int]:
        lock_store = AtomicRedisLockStore(host=host, port=port, db=1, key_prefix=prefix)
        spans = []

        async def message() -> None:
            async with lock_store.lock("conversation-x"):
                start = time.time()
                await asyncio.sleep(0.005)
                spans.append((start, time.time()))

        tasks = [asyncio.ensure_future(message()) for _ in range(20)]
        _, pending = await asyncio.wait(tasks, timeout=60)
        return spans, len(pending)

    return asyncio.run(run())


def test_two_replica_processes_racing_lose_nothing_and_never_overlap():
    """Rasa's RedisLockStore, in the same race, served 2 of 50 and hung 48
    (bench/lock_store.py)."""
    url = urlparse(services.redis_url())
    prefix = f"t{uuid.uuid4().hex[:8]}"
    with ProcessPoolExecutor(2) as pool:
        replicas = [
            pool.submit(_replica, url.hostname, url.port, prefix) for _ in range(2)
        ]
        results = [replica.result() for replica in replicas]
    spans = sorted(span for served, _ in results for span in served)
    assert [hung for _, hung in results] == [0, 0]
    assert len(spans) == 40
    assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:], strict=False))


def test_a_dead_holders_ticket_expires_and_the_next_message_goes_on():
    async def run() -> bool:
        lock_store = store()
        await lock_store.issue("conversation-2", lock_lifetime=0.3)  # never released
        async with lock_store.lock("conversation-2"):
            return True

    assert asyncio.run(asyncio.wait_for(run(), timeout=10))


def test_a_killed_replicas_ticket_lapses_within_its_lease_not_the_lifetime(
    monkeypatch,
):
    """A replica killed while it held a conversation's lock stops renewing its
    lease: the next message waits for the lease (here 0.5 s), not for Rasa's
    60-second lifetime."""
    monkeypatch.setattr(lock_store_module, "LEASE_S", 0.5)

    async def run() -> float:
        lock_store = store()
        await lock_store.issue("conversation-4", lock_lifetime=60)  # then killed
        start = time.monotonic()
        async with lock_store.lock("conversation-4"):
            return time.monotonic() - start

    waited = asyncio.run(asyncio.wait_for(run(), timeout=20))
    assert 0.3 < waited < 3


def test_a_live_holder_keeps_its_lock_past_the_lease(monkeypatch):
    """The holder's heartbeat renews the lease: a message that takes four
    leases is not overtaken by the next one."""
    monkeypatch.setattr(lock_store_module, "LEASE_S", 0.5)

    async def run() -> list[str]:
        replicas = [store(), store()]
        replicas[1].key_prefix = replicas[0].key_prefix
        events: list[str] = []

        async def slow() -> None:
            async with replicas[0].lock("conversation-5", lock_lifetime=60):
                events.append("slow in")
                await asyncio.sleep(2.0)
                events.append("slow out")

        async def next_message() -> None:
            await asyncio.sleep(0.1)
            async with replicas[1].lock("conversation-5", lock_lifetime=60):
                events.append("next in")

        await asyncio.gather(slow(), next_message())
        return events

    assert asyncio.run(run()) == ["slow in", "slow out", "next in"]


def test_tickets_are_served_in_the_order_they_were_issued():
    async def run() -> tuple[list[int], list[int]]:
        lock_store = store()
        order: list[int] = []
        first = await lock_store.issue("c3", 30)
        second = await lock_store.issue("c3", 30)

        async def take(ticket: int) -> None:
            await lock_store.wait_for_turn("c3", ticket)
            order.append(ticket)
            await lock_store.release("c3", ticket)

        await asyncio.gather(take(second), take(first))
        return [first, second], order

    issued, served = asyncio.run(run())
    assert served == issued


@pytest.fixture(autouse=True)
def _redis_available():
    services.redis_url()  # starts a private Redis where none answers


def test_with_redis_away_a_replica_serialises_each_conversation_itself(free_ports):
    # Nothing listens on this port: Redis is "down" (connection refused).
    away = AtomicRedisLockStore(host="127.0.0.1", port=free_ports(), db=1)

    async def run() -> tuple[list[int], int]:
        inside, overlaps, done = [], 0, []

        async def message(n: int) -> None:
            nonlocal overlaps
            async with away.lock(f"conversation-{n % 2}"):
                inside.append(n % 2)
                if inside.count(n % 2) > 1:
                    overlaps += 1
                await asyncio.sleep(0.002)
                inside.remove(n % 2)
                done.append(n)

        await asyncio.gather(*(message(n) for n in range(20)))
        return done, overlaps

    started = time.monotonic()
    done, overlaps = asyncio.run(run())
    assert sorted(done) == list(range(20)) and overlaps == 0
    assert time.monotonic() - started < 5  # refused at once, not a timeout each
    assert away._local._locks == {}  # nothing kept once nobody holds it
    from bot.run.dependencies import watch

    assert watch.states["lock_store"] == "ConnectionError"
