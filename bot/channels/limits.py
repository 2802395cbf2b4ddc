"""Per-sender and per-address rate limits on the patient channels (REST, the
widget's socket.io, SMS), so that one client cannot flood the bot, its
handoffs or the staff alerts.

Each message counts once against its conversation (``BOT_RATE_PER_SENDER``
messages a minute, 20) and once against the address it came from
(``BOT_RATE_PER_ADDRESS``, 60: a family or a school shares one); 0 turns a
limit off (the test suite and the benchmarks, which send everything from
127.0.0.1, turn the address limit off). A message
over either limit gets a polite reply (wait a minute, the clinic's phone, 911
and 988) instead of the bot's. A message the safety screen flags (a crisis, a
possible risk, a mood concern) is never limited: it is screened first, and
goes through whatever the counts say.

The counts are kept for fixed windows of ``BOT_RATE_WINDOW_S`` seconds: in
Redis when ``REDIS_URL`` is set (the production profile: every replica sees
the same counts), otherwise in this process. If Redis does not answer within
0.2 s nobody is limited (one log line a minute says so): a broken counter must
never turn a patient away.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field

from bot import settings

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 0.2


def _key(kind: str, value: str) -> str:
    # Addresses and conversation ids are not kept as they are, even briefly.
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


@dataclass
class RateLimits:
    per_sender: int
    per_address: int
    window_s: float = 60.0
    redis_url: str = ""
    _counts: dict[str, int] = field(default_factory=dict)
    _window: int = -1
    _redis: object | None = None
    _redis_failed_at: float = 0.0

    @classmethod
    def from_settings(cls) -> RateLimits:
        config = settings.load()
        return cls(
            config.rate_per_sender,
            config.rate_per_address,
            config.rate_window_s,
            config.redis_url if config.production else "",
        )

    def window(self, now: float | None = None) -> int:
        return int((time.time() if now is None else now) // self.window_s)

    async def excess(self, sender_id: str, address: str | None) -> int:
        """Count this message: how far over the sender's or the address's
        limit it is in the current window (0: within both; 1: the first one
        over, which SMS answers, and no later one)."""
        keys = []
        if self.per_sender > 0:
            keys.append((_key("sender", sender_id), self.per_sender))
        if address and self.per_address > 0:
            keys.append((_key("address", address), self.per_address))
        if not keys:
            return 0
        counts = await self._count([key for key, _ in keys])
        if counts is None:
            return 0
        return max(
            0, *(count - limit for count, (_, limit) in zip(counts, keys, strict=True))
        )

    async def _count(self, keys: list[str]) -> list[int] | None:
        window = self.window()
        if self.redis_url:
            return await self._count_in_redis(keys, window)
        if window != self._window:  # a new window: the old counts are done
            self._counts.clear()
            self._window = window
        for key in keys:
            self._counts[key] = self._counts.get(key, 0) + 1
        return [self._counts[key] for key in keys]

    async def _count_in_redis(self, keys: list[str], window: int) -> list[int] | None:
        try:
            if self._redis is None:
                import redis.asyncio as redis

                self._redis = redis.from_url(
                    self.redis_url, socket_timeout=REDIS_TIMEOUT_S,
                    socket_connect_timeout=REDIS_TIMEOUT_S,
                )  # fmt: skip
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                full = f"bot:rate:{window}:{key}"
                pipe.incr(full)
                pipe.expire(full, int(self.window_s) + 1)
            replies = await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_S * 2)
            return [int(count) for count in replies[::2]]
        except Exception as error:
            now = time.monotonic()
            if now - self._redis_failed_at > 60:
                self._redis_failed_at = now
                logger.error(
                    "rate limits: Redis did not answer (%s); nobody is limited "
                    "until it does",
                    type(error).__name__,
                )
            return None


_limits: RateLimits | None = None


def default_limits() -> RateLimits:
    """The limits of this process (one per Rasa server)."""
    global _limits
    if _limits is None:
        _limits = RateLimits.from_settings()
    return _limits
