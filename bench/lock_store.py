"""Rasa's RedisLockStore against the project's AtomicRedisLockStore, on the
Redis at 127.0.0.1:6379: two store instances (two replicas) take turns on one
conversation, as two Rasa servers behind a load balancer do.

For each store, N messages of one conversation arrive at once, alternating
between the replicas, each holding the lock for HOLD_MS (the time a message
takes to handle). Prints how many were served, how many overlapped another
(two replicas handling one conversation at once), how many hung (not served
within TIMEOUT_S), and the time from the first message to the last; then the
same burst from two processes (where the replicas really race); then the time
a message waits when it arrives while one other is being handled.

    .venv/bin/python bench/lock_store.py [--messages 50] [--redis-port 6379]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rasa.core.lock_store import RedisLockStore  # noqa: E402

from bot.run.lock_store import AtomicRedisLockStore  # noqa: E402

HOLD_MS = 20
TIMEOUT_S = 60


def stores(kind: str, port: int):
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    if kind == "rasa":
        return [RedisLockStore(port=port, db=1, key_prefix=prefix) for _ in range(2)]
    return [AtomicRedisLockStore(port=port, db=1, key_prefix=prefix) for _ in range(2)]


async def burst(kind: str, port: int, messages: int) -> str:
    replicas = stores(kind, port)
    inside: list[int] = []
    served, overlaps = [], 0

    async def message(n: int) -> None:
        nonlocal overlaps
        async with replicas[n % 2].lock("one-conversation"):
            inside.append(n)
            overlaps += len(inside) > 1
            await asyncio.sleep(HOLD_MS / 1000)
            inside.remove(n)
            served.append(n)

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(message(n)) for n in range(messages)]
    done, pending = await asyncio.wait(tasks, timeout=TIMEOUT_S)
    for task in pending:
        task.cancel()
    errors = sum(1 for t in done if t.exception() is not None)
    took = time.perf_counter() - start
    return (
        f"{kind:6} {messages} messages: served {len(served)}, overlapped {overlaps}, "
        f"hung {len(pending)}, failed {errors}, {took:.1f} s "
        f"(ideal {messages * HOLD_MS / 1000:.1f} s)"
    )


def _replica(kind: str, port: int, prefix: str, messages: int) -> tuple[list, int]:
    """One replica's process: its messages of the conversation, all at once.
    Returns the (start, end) of each one it served, and how many hung."""

    async def run() -> tuple[list, int]:
        if kind == "rasa":
            lock_store = RedisLockStore(port=port, db=1, key_prefix=prefix)
        else:
            lock_store = AtomicRedisLockStore(port=port, db=1, key_prefix=prefix)
        spans = []

        async def message() -> None:
            async with lock_store.lock("one-conversation"):
                start = time.time()
                await asyncio.sleep(HOLD_MS / 1000)
                spans.append((start, time.time()))

        tasks = [asyncio.ensure_future(message()) for _ in range(messages)]
        _, pending = await asyncio.wait(tasks, timeout=TIMEOUT_S)
        for task in pending:
            task.cancel()
        return spans, len(pending)

    return asyncio.run(run())


def two_processes(kind: str, port: int, messages: int) -> str:
    """The same burst from two processes: the race Rasa's store loses."""
    from concurrent.futures import ProcessPoolExecutor

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    with ProcessPoolExecutor(2) as pool:
        replicas = [
            pool.submit(_replica, kind, port, prefix, messages // 2) for _ in range(2)
        ]
        results = [replica.result() for replica in replicas]
    spans = sorted(s for found, _ in results for s in found)
    hung = sum(h for _, h in results)
    overlaps = sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1])
    return (
        f"{kind:6} 2 processes x {messages // 2} messages: served {len(spans)}, "
        f"overlapped {overlaps}, hung {hung}"
    )


async def contended_wait(kind: str, port: int, rounds: int = 20) -> str:
    """How long a message waits beyond the one before it (HOLD_MS)."""
    waits = []
    for _ in range(rounds):
        replicas = stores(kind, port)

        async def first(replicas=replicas) -> None:
            async with replicas[0].lock("c"):
                await asyncio.sleep(HOLD_MS / 1000)

        async def second(replicas=replicas) -> float:
            await asyncio.sleep(0.001)
            start = time.perf_counter()
            async with replicas[1].lock("c"):
                return time.perf_counter() - start

        _, waited = await asyncio.gather(first(), second())
        waits.append((waited - HOLD_MS / 1000) * 1000)
    median = statistics.median(waits)
    return (
        f"{kind:6} a message arriving during another waits {median:.0f} ms median "
        f"beyond it ({max(waits):.0f} ms max, {rounds} rounds)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--redis-port", type=int, default=6379)
    args = parser.parse_args()
    for kind in ("rasa", "atomic"):
        print(asyncio.run(burst(kind, args.redis_port, args.messages)), flush=True)
    for kind in ("rasa", "atomic"):
        print(two_processes(kind, args.redis_port, args.messages), flush=True)
    for kind in ("rasa", "atomic"):
        print(asyncio.run(contended_wait(kind, args.redis_port)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
