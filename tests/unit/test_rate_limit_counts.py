"""The rate limits' counting in one process (bot.channels.limits); Redis and
the channels are tested on the real bot (tests/integration/test_rate_limits.py)."""

from __future__ import annotations

import asyncio

from bot.channels.limits import RateLimits


def excesses(limits: RateLimits, calls: list[tuple[str, str | None]]) -> list[int]:
    async def run() -> list[int]:
        return [await limits.excess(sender, address) for sender, address in calls]

    return asyncio.run(run())


def test_a_sender_over_its_limit_is_told_how_far_over():
    limits = RateLimits(per_sender=2, per_address=0)
    assert excesses(limits, [("a", None)] * 4) == [0, 0, 1, 2]
    assert excesses(limits, [("b", None)]) == [0]  # another conversation


def test_an_address_counts_every_conversation_from_it():
    limits = RateLimits(per_sender=10, per_address=3)
    calls = [("a", "10.0.0.1"), ("b", "10.0.0.1"), ("c", "10.0.0.1"), ("d", "10.0.0.1")]
    assert excesses(limits, calls) == [0, 0, 0, 1]
    assert excesses(limits, [("e", "10.0.0.2")]) == [0]


def test_a_new_window_starts_the_counts_again(monkeypatch):
    limits = RateLimits(per_sender=1, per_address=0, window_s=60)
    now = [1_000_000.0]
    monkeypatch.setattr("bot.channels.limits.time.time", lambda: now[0])
    assert excesses(limits, [("a", None)] * 2) == [0, 1]
    now[0] += 60
    assert excesses(limits, [("a", None)]) == [0]


def test_zero_turns_a_limit_off():
    limits = RateLimits(per_sender=0, per_address=0)
    assert excesses(limits, [("a", "10.0.0.1")] * 50) == [0] * 50
