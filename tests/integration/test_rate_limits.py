"""Rate limits on the real bot (its own, with small limits): a burst on REST,
the widget and SMS gets the polite reply; a crisis is never limited; and the
counts of two replicas are shared in the production profile's Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import requests

from bot.channels.limits import RateLimits
from bot.run import services
from tests.integration.conftest import RunningBot, own_bot_fixture
from tests.integration.test_crisis_path import Widget, handoffs_of

pytestmark = pytest.mark.integration

PER_SENDER, PER_ADDRESS = 3, 8


limited = own_bot_fixture(
    "limited",
    BOT_RATE_PER_SENDER=str(PER_SENDER),
    BOT_RATE_PER_ADDRESS=str(PER_ADDRESS),
    BOT_RATE_WINDOW_S="600",  # no window ends during the test
)


def post(bot: RunningBot, sender: str, text: str) -> requests.Response:
    return requests.post(
        f"{bot.rasa_url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text},
        timeout=60,
    )


def test_limits(limited):
    """One test, in order: the counts of one address run through all of it."""
    bot = limited
    polite = bot.web_text("rate_limited")
    sender = f"burst-{uuid.uuid4().hex[:8]}"
    # A conversation: 3 messages answered, the 4th asked to wait.
    for _ in range(PER_SENDER):
        assert post(bot, sender, "can i wax my eyebrows").status_code == 200
    over = post(bot, sender, "can i wax my eyebrows")
    assert over.status_code == 429 and over.headers["Retry-After"] == "600"
    assert [m["text"] for m in over.json()] == [polite]
    # ... and a crisis from it still gets the crisis reply and a handoff.
    crisis = post(bot, sender, "i want to kill myself")
    assert crisis.status_code == 200
    assert [m["text"] for m in crisis.json()] == [bot.web_text("crisis")]
    assert [h.level for h in handoffs_of(bot, sender)] == ["crisis"]
    # The address (127.0.0.1): 4 counted so far (the crisis is not counted);
    # new conversations take it to 8, then the 9th message is over.
    for index in range(PER_ADDRESS - PER_SENDER - 1):
        assert post(bot, f"{sender}-{index}", "hi").status_code == 200
    assert post(bot, f"{sender}-new", "hi").status_code == 429
    # The widget from the same address: the polite reply, not a crash.
    widget = Widget(bot.rasa_url, bot.web_url)
    try:
        assert [r["text"] for r in widget.say("what is accutane")] == [polite]
        assert [r["text"] for r in widget.say("kms")] == [bot.web_text("crisis")]
    finally:
        widget.close()
    # SMS counts by number (Twilio's address is everyone's): told once.
    number = f"+1402555{uuid.uuid4().int % 10_000:04d}"
    for _ in range(PER_SENDER):
        bot.text_message(number, "is it ok to drink alcohol")
    answered = len(bot.twilio.to(number))
    assert bot.twilio.to(number)[-1] == bot.sms_text("alcohol")
    assert bot.text_message(number, "and coffee?").status_code == 200
    assert bot.twilio.to(number)[answered:] == [bot.sms_text("rate_limited")]
    bot.text_message(number, "and tea?")
    assert len(bot.twilio.to(number)) == answered + 1  # not told twice
    bot.text_message(number, "i want to end my life")
    assert bot.twilio.to(number)[-1] == bot.sms_text("crisis")


def test_replicas_share_their_counts_in_redis():
    """Two replicas' limits on the production profile's Redis count together;
    with Redis away, nobody is limited."""
    redis_url = services.redis_url()  # the real Redis (a private one if none)
    first, second = (RateLimits(2, 0, 600, redis_url) for _ in range(2))
    sender = f"replicas-{uuid.uuid4().hex}"

    async def run() -> list[int]:
        return [
            await first.excess(sender, None),
            await second.excess(sender, None),
            await first.excess(sender, None),
            await second.excess(sender, None),
        ]

    assert asyncio.run(run()) == [0, 0, 1, 2]
    away = RateLimits(1, 0, 600, "redis://127.0.0.1:9/0")
    assert asyncio.run(away.excess(sender, None)) == 0
    assert asyncio.run(away.excess(sender, None)) == 0
