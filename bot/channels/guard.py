"""What every patient channel (REST, socket.io, SMS) does around Rasa: wait a
bounded time for the bot's reply, and when none comes (the action server is
down, slow or failing), send a safe reply and store the handoff a crisis or
concern needs, from this process, with no action server.

The screen runs here first (in-process, in threads of its own; a few
milliseconds, most of them the sentence vector's):
a crisis or a possible risk waits at most ``BOT_CRISIS_REPLY_WAIT_S`` (3 s)
for the bot before 988 and 911 go out; any other message waits
``BOT_REPLY_WAIT_S`` (30 s) before the clinic's phone number does. The
handoff has the id the action server would give it (``handoff_id_for`` the
message id), so a message handled by both still makes one handoff; the
database gets at most 2 seconds before the handoff is spooled instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rasa.core.channels.channel import UserMessage

from bot import settings
from bot.channels import limits
from bot.content.answers import Answers, ReviewedFiles, emergency_text, unavailable_text
from bot.run import dependencies, rasa_speedups
from bot.safety.handoffs import HandoffQueue, handoff_id_for
from bot.safety.screen import Level, ScreenResult, default_screen

logger = logging.getLogger(__name__)

URGENT = (Level.CRISIS, Level.POSSIBLE)

# Every channel of the Rasa server imports this module.
rasa_speedups.install()


def screen(text: str) -> ScreenResult:
    try:
        return default_screen().screen(text)
    except Exception:
        # Never lose the message over the screen: the action re-screens.
        logger.exception("the safety screen failed in the channel")
        return ScreenResult(None)


# Most of a new message's screening is its sentence vector, which ONNX
# Runtime computes without Python's lock: screened in a thread, the event
# loop meanwhile goes on with other conversations, on the second core
# (bench/throughput.py --unique). Threads of its own: never queued behind
# the database work in the loop's shared pool.
_SCREENING = ThreadPoolExecutor(2, thread_name_prefix="safety-screen")


async def screen_off_loop(text: str) -> ScreenResult:
    """``screen(text)``, run in the screen's own threads."""
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _SCREENING, screen, text
        )
    except RuntimeError:  # the pool is shut down: the process is exiting
        return screen(text)


async def store(
    sender_id: str, channel: str, text: str, message_id: str, level: str
) -> None:
    """Store the handoff for a message under the id the action server would
    give it (one handoff), waiting at most 2 seconds for the database."""
    queue = HandoffQueue()
    handoff = queue.new(
        sender_id, channel, level, text, handoff_id_for(sender_id, message_id)
    )
    try:
        stored = await queue.store_promptly(handoff)
        logger.info("%s handoff %s stored by the %s channel", level, stored.id, channel)
    except Exception:
        logger.exception("a %s handoff could not be stored or spooled", level)


async def store_first(
    sender_id: str, channel: str, text: str, message_id: str, result: ScreenResult
) -> None:
    """Store the handoff the screen calls for before any other work, at the
    level the action server would give it."""
    if result.handoff_level is not None:
        await store(sender_id, channel, text, message_id, result.handoff_level)


async def safe_reply(
    sender_id: str, channel: str, text: str, message_id: str, result: ScreenResult
) -> str:
    """The reply when the bot gave none, after storing any handoff it needs.

    Without the action server nobody can hold the direct safety question
    open, so a possible risk is handed off as a crisis and gets 988 and 911.
    """
    if result.level is not None:
        level = "crisis" if result.level in URGENT else "concern"
        await store(sender_id, channel, text, message_id, level)
    if result.level in URGENT:
        return emergency_text(spanish=result.spanish)
    try:
        return unavailable_text()
    except Exception:  # not even the clinic file: still a safe answer
        logger.exception("the clinic's details could not be read")
        return emergency_text()


def rate_limited_text(channel: str | None) -> str:
    """The reply to a message over a rate limit: wait, the clinic's phone,
    911 and 988 (a reviewed entry, read from the files, not the database)."""
    try:
        return _reviewed().for_trigger("rate_limited", channel).text
    except Exception:
        logger.exception("the rate-limit reply could not be read")
        return emergency_text()


_reviewed_answers: Answers | None = None


def _reviewed() -> Answers:
    global _reviewed_answers
    if _reviewed_answers is None:
        _reviewed_answers = Answers(ReviewedFiles())
    return _reviewed_answers


async def limited(sender_id: str, address: str | None, result: ScreenResult) -> int:
    """How far over its rate limits this message is (0: not limited). A
    message the screen flagged is never limited (and not counted)."""
    if result.flagged:
        return 0
    try:
        return await limits.default_limits().excess(sender_id, address)
    except Exception:
        logger.exception("the rate limits could not be checked")
        return 0


async def process(
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
    message: UserMessage,
    replied: Callable[[], bool],
    result: ScreenResult | None = None,
) -> str | None:
    """Hand the message to Rasa; the safe reply's text if the bot did not
    reply in time (Rasa goes on in the background: nothing is lost from the
    conversation), else None. ``result``: the screen's verdict on this text,
    if the channel has it already."""
    result = result or await screen_off_loop(message.text or "")
    config = settings.load()
    wait = config.crisis_reply_wait_s if result.level in URGENT else config.reply_wait_s
    handling = asyncio.ensure_future(on_new_message(message))
    try:
        await asyncio.wait_for(asyncio.shield(handling), wait)
    except asyncio.TimeoutError:
        logger.error(
            "no reply from the bot within %.0f s on the %s channel",
            wait,
            message.input_channel,
        )
    except Exception as error:
        # Never the message text: only that processing failed, and whether a
        # store that is not answering is why (one clear line per outage).
        logger.exception("processing a %s message failed", message.input_channel)
        dependencies.noticed(error)
    if replied():
        return None
    logger.error("no reply was produced for a %s message", message.input_channel)
    return await safe_reply(
        message.sender_id,
        message.input_channel or "unknown",
        message.text or "",
        message.message_id,
        result,
    )
