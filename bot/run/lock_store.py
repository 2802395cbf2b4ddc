"""A Redis lock store whose tickets are safe across Rasa replicas.

Rasa serialises the messages of one conversation with a ticket lock. Its
``RedisLockStore`` keeps each conversation's lock as one JSON value that every
replica reads, changes and writes back: two replicas issuing tickets at the
same moment overwrite each other's, and messages hang or are lost (measured
with two Rasa 3.6.21 servers: 47 of 50 concurrent messages of one
conversation hung; rasa#9213, fixed in Rasa Pro only). It also waits a fixed
second between attempts, so a message that arrives while another of the same
conversation is being handled waits at least a second.

Here every change is one atomic Redis operation (Lua scripts): a counter issues
ticket numbers, a sorted set holds the waiting tickets in order and a hash
their expiry; a ticket is served when it is the lowest live one. Waiting polls
from 2 ms, doubling to 50 ms, so a contended message waits for the one before
it and not a second more. A ticket whose holder died expires after the lock
lifetime (Rasa's ``TICKET_LOCK_LIFETIME``) as in Rasa, or sooner: a ticket is
a lease of ``LEASE_S`` that its live holder and waiters keep renewing, so the
ticket of a replica that was killed lapses within seconds.

When Redis does not answer (down, or more than ``SOCKET_TIMEOUT_S``), a
message is not failed for it: its conversation is serialised within this
replica only (an in-process lock), one ERROR line says so, and the next
message that gets a ticket from Redis again goes back to the shared lock (a
WARNING line). Patients keep their answers through a Redis outage; what is
lost meanwhile is only the ordering of one conversation's messages sent at
the same moment to two replicas, which sticky sessions make rare.

Registered by module path in ``endpoints.yml``::

    lock_store:
      type: bot.run.lock_store.AtomicRedisLockStore
      url: 127.0.0.1
      port: 6379
      db: 1
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore

logger = logging.getLogger(__name__)

FIRST_WAIT_S = 0.002
LONGEST_WAIT_S = 0.05
# A ticket is a lease: its holder (and each waiter, at every poll) renews it
# every LEASE_S / 3, up to Rasa's lock lifetime. A replica that is killed
# stops renewing, and the conversation's next message waits at most LEASE_S
# for the dead ticket, not the whole lifetime (60 s).
LEASE_S = 5.0
# Keys outlive the lock lifetime by this much, then Redis drops them.
KEY_MARGIN_S = 60
# A Redis that takes longer than this is treated as away (its scripts take
# microseconds); connecting gets CONNECT_TIMEOUT_S.
SOCKET_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 1.0

# KEYS: counter, queue (sorted set of tickets), expiry (hash ticket -> ms)
# ARGV: expires_at_ms, key_ttl_s
ISSUE = """
local ticket = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], ticket, ticket)
redis.call('HSET', KEYS[3], ticket, ARGV[1])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return ticket
"""
# KEYS: queue, expiry. ARGV: ticket, now_ms, renewed_expiry_ms.
# Renews this ticket's lease (a waiter is alive), then:
# 1: this ticket is served; 0: an earlier live ticket is; -1: it expired.
SERVED = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
local tickets = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, ticket in ipairs(tickets) do
  local expires = tonumber(redis.call('HGET', KEYS[2], ticket) or '0')
  if expires < tonumber(ARGV[2]) then
    redis.call('ZREM', KEYS[1], ticket)
    redis.call('HDEL', KEYS[2], ticket)
  elseif ticket == ARGV[1] then
    return 1
  else
    return 0
  end
end
return -1
"""
# KEYS: queue, expiry. ARGV: ticket, expiry_ms, key_ttl_s.
# The holder's heartbeat: 1 renewed, 0 the ticket is gone (it expired).
RENEW = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
for i = 1, 2 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
return 1
"""
# KEYS: queue, expiry. ARGV: ticket.
RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1
"""


class AtomicRedisLockStore(LockStore):
    """Rasa's ticket lock, with atomic tickets and no fixed one-second wait."""

    def __init__(
        self,
        endpoint_config: Any = None,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 1,
        password: str | None = None,
        key_prefix: str = "bot_lock",
        socket_timeout: float = SOCKET_TIMEOUT_S,
    ) -> None:
        import redis.asyncio
        import redis.exceptions

        if endpoint_config is not None:  # created by Rasa from endpoints.yml
            options = dict(endpoint_config.kwargs or {})
            host = endpoint_config.url or options.get("host", host)
            port = options.get("port", port)
            db = options.get("db", db)
            password = options.get("password", password)
            key_prefix = options.get("key_prefix", key_prefix)
            socket_timeout = options.get("socket_timeout", socket_timeout)
        self.red = redis.asyncio.StrictRedis(
            host=host,
            port=int(port),
            db=int(db),
            password=password,
            socket_timeout=float(socket_timeout),
            socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
        # What "Redis is away" looks like, as opposed to a bug.
        self._away_errors = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            OSError,
        )
        self._local = LocalLocks()
        self.key_prefix = str(key_prefix)
        self._issue = self.red.register_script(ISSUE)
        self._served = self.red.register_script(SERVED)
        self._release = self.red.register_script(RELEASE)
        self._renew = self.red.register_script(RENEW)
        super().__init__()

    def _keys(self, conversation_id: str) -> list[str]:
        # One hash tag per conversation: the keys share a slot on Redis Cluster.
        base = f"{self.key_prefix}:{{{conversation_id}}}"
        return [f"{base}:next", f"{base}:queue", f"{base}:expiry"]

    async def issue(self, conversation_id: str, lock_lifetime: float) -> int:
        """A new ticket, its lease ``min(lock_lifetime, LEASE_S)``."""
        lease = min(lock_lifetime, LEASE_S)
        expires_ms = int((time.time() + lease) * 1000)
        ttl_s = int(lock_lifetime) + KEY_MARGIN_S
        keys = self._keys(conversation_id)
        return int(await self._issue(keys=keys, args=[expires_ms, ttl_s]))

    async def wait_for_turn(
        self, conversation_id: str, ticket: int, lease_s: float = LEASE_S
    ) -> None:
        _, queue, expiry = self._keys(conversation_id)
        wait = FIRST_WAIT_S
        while True:
            now = time.time()
            args = [ticket, int(now * 1000), int((now + lease_s) * 1000)]
            state = int(await self._served(keys=[queue, expiry], args=args))
            if state == 1:
                return
            if state == -1:
                raise LockError(
                    f"Could not acquire lock for conversation_id '{conversation_id}'."
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT_S)

    async def renew(
        self, conversation_id: str, ticket: int, lease_s: float, ttl_s: int
    ) -> bool:
        _, queue, expiry = self._keys(conversation_id)
        expires_ms = int((time.time() + lease_s) * 1000)
        args = [ticket, expires_ms, ttl_s]
        return bool(await self._renew(keys=[queue, expiry], args=args))

    async def _heartbeat(
        self, conversation_id: str, ticket: int, lease_s: float, lifetime_s: float
    ) -> None:
        """Renew the held ticket every third of its lease, until the lock's
        lifetime is up (a holder never keeps a conversation longer than
        Rasa's lifetime allows)."""
        ttl_s = int(lifetime_s) + KEY_MARGIN_S
        deadline = time.monotonic() + lifetime_s - lease_s
        while time.monotonic() < deadline:
            await asyncio.sleep(lease_s / 3)
            try:
                if not await self.renew(conversation_id, ticket, lease_s, ttl_s):
                    return
            except Exception as error:  # Redis away: the lease may lapse
                logger.warning("lock renewal failed (%s)", type(error).__name__)

    async def ping(self) -> None:
        """Raise if Redis does not answer (the health check's)."""
        await self.red.ping()

    async def release(self, conversation_id: str, ticket: int) -> None:
        _, queue, expiry = self._keys(conversation_id)
        await self._release(keys=[queue, expiry], args=[ticket])

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,  # Rasa's fixed wait: not used here
    ) -> AsyncGenerator[TicketLock, None]:
        from bot.run.dependencies import OK, watch

        try:
            ticket = await self.issue(conversation_id, lock_lifetime)
        except self._away_errors as error:
            ticket = None
            watch.report("lock_store", type(error).__name__)
        except Exception as error:
            raise LockError(
                f"Error while acquiring lock: {type(error).__name__}"
            ) from error
        if ticket is None:  # Redis away: this replica's own lock meanwhile
            async with self._local.hold(conversation_id):
                yield TicketLock(conversation_id)
            return
        watch.report("lock_store", OK)
        lease = min(lock_lifetime, LEASE_S)
        heartbeat = None
        try:
            await self.wait_for_turn(conversation_id, ticket, lease)
            heartbeat = asyncio.create_task(
                self._heartbeat(conversation_id, ticket, lease, lock_lifetime)
            )
            yield TicketLock(conversation_id)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            try:
                await self.release(conversation_id, ticket)
            except Exception as error:  # the ticket expires on its own
                logger.warning("lock release failed (%s)", type(error).__name__)

    # Rasa's synchronous read-modify-write interface is what this class
    # replaces: nothing in Rasa 3.6 calls it outside ``lock``.
    def get_lock(self, conversation_id: str) -> TicketLock | None:
        raise NotImplementedError("AtomicRedisLockStore is used through lock()")

    def save_lock(self, lock: TicketLock) -> None:
        raise NotImplementedError("AtomicRedisLockStore is used through lock()")

    def delete_lock(self, conversation_id: str) -> None:
        raise NotImplementedError("AtomicRedisLockStore is used through lock()")


class LocalLocks:
    """One asyncio lock per conversation, for as long as someone holds or
    waits for it: the fallback while Redis is away."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: collections.Counter[str] = collections.Counter()

    @asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncGenerator[None, None]:
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        self._users[conversation_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[conversation_id] -= 1
            if not self._users[conversation_id]:
                del self._users[conversation_id]
                del self._locks[conversation_id]
