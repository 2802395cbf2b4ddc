"""The action server's actions: thin wrappers that read the tracker, ask
``bot/`` for the reply (and, for crisis or concern, store a handoff first) and
return events.

Every reply goes through ``respond``: the first reply of a conversation starts
with the welcome (what the bot is), except a crisis reply, which starts with
911 and 988; once a conversation has had a crisis, every later answer ends
with a short reminder of 911 and 988.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    EventType,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
)
from rasa_sdk.executor import CollectingDispatcher

from bot.answers import (
    Answers,
    Reply,
    emergency_text,
    is_staff,
    staff_line,
    unavailable_text,
)
from bot.handoffs import HandoffQueue
from bot.knowledge import KnowledgeBaseError, KnowledgeBaseUnavailable
from bot.safety import Level, default_screen
from bot.staff_alerts import AlertWorker, StaffNotifier

logger = logging.getLogger(__name__)

_QUESTION = re.compile(
    r"\?|^\s*(can|could|does|do|did|is|are|am|will|would|should|what|how|why|when"
    r"|which|who|any)\b",
    re.IGNORECASE,
)
_CONTENT_ERRORS = (KnowledgeBaseUnavailable, KnowledgeBaseError, LookupError, OSError)

_answers: Answers | None = None
_handoffs: HandoffQueue | None = None
_alerts: AlertWorker | None = None


def answers() -> Answers:
    """One ``Answers`` for the action server's life (its engine is pooled)."""
    global _answers
    if _answers is None:
        _answers = Answers()
    return _answers


def handoff_queue() -> HandoffQueue:
    global _handoffs
    if _handoffs is None:
        _handoffs = HandoffQueue()
    return _handoffs


def alert_worker() -> AlertWorker:
    """The background sender of staff alerts (started on first use)."""
    global _alerts
    if _alerts is None:
        _alerts = AlertWorker(
            StaffNotifier(handoff_queue()),
            interval_s=float(os.environ.get("HANDOFF_RETRY_INTERVAL_S", "10")),
        )
        _alerts.start()
    return _alerts


def input_channel(tracker: Tracker) -> str | None:
    """The channel of the latest message; at session start, from its metadata."""
    channel = tracker.get_latest_input_channel()
    if channel:
        return channel
    metadata = tracker.get_slot("session_started_metadata") or {}
    return metadata.get("input_channel") if isinstance(metadata, dict) else None


def latest_text(tracker: Tracker) -> str:
    return tracker.latest_message.get("text") or ""


def latest_intent(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def latest_confidence(tracker: Tracker) -> float | None:
    confidence = (tracker.latest_message.get("intent") or {}).get("confidence")
    return float(confidence) if isinstance(confidence, (int, float)) else None


def latest_facet(tracker: Tracker) -> str | None:
    return next(tracker.get_latest_entity_values("facet"), None)


async def respond(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    build: Callable[[Answers, str | None], list[Reply]],
    crisis: bool = False,
) -> list[EventType]:
    """Send the replies ``build`` makes, with the welcome and crisis reminder;
    in rasa shell (staff only), end with a staff line saying what answered."""
    channel = input_channel(tracker)
    first = not tracker.get_slot("welcomed")
    after_crisis = bool(tracker.get_slot("crisis_active")) and not crisis

    def compose() -> list[Reply]:
        bot = answers()
        replies = build(bot, channel)
        if first and not crisis:
            replies = [bot.for_trigger("session_start", channel), *replies]
        if after_crisis:
            replies = [*replies, bot.for_trigger("after_crisis", channel)]
        return replies

    try:
        replies = await asyncio.to_thread(compose)
    except _CONTENT_ERRORS:
        # Never the message text: only that the content could not be read.
        logger.error("no reviewed content could be read for this reply")
        dispatcher.utter_message(
            text=emergency_text() if crisis else unavailable_text()
        )
        replies = []
    for reply in replies:
        dispatcher.utter_message(text=reply.text, buttons=reply.buttons or None)
    if is_staff(channel):
        dispatcher.utter_message(
            text=staff_line(replies, latest_intent(tracker), latest_confidence(tracker))
        )
    return [SlotSet("welcomed", True)]


def remembered_topic(reply: Reply) -> list[EventType]:
    """Keep the topic for follow-ups ("and after I stop?") where it makes sense."""
    topic = answers().topics.topic(reply.topic)
    keep = topic is not None and topic.intent is not None and topic.follow_ups
    return [SlotSet("topic", reply.topic)] if keep else []


async def store_handoff(tracker: Tracker, level: str) -> None:
    """Commit (or spool) the handoff before the reply; a failure never stops it."""
    try:
        handoff = await asyncio.to_thread(
            handoff_queue().create,
            tracker.sender_id,
            input_channel(tracker) or "unknown",
            level,
            latest_text(tracker),
        )
        logger.info("%s handoff %s stored", level, handoff.id)
        alert_worker().wake()
    except Exception:
        logger.exception("a %s handoff could not be stored", level)


async def handle_crisis(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType]:
    await store_handoff(tracker, "crisis")
    events = await respond(
        dispatcher,
        tracker,
        lambda bot, channel: [bot.for_intent("crisis", None, channel)],
        crisis=True,
    )
    return [*events, SlotSet("crisis_active", True)]


async def handle_concern(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType]:
    await store_handoff(tracker, "concern")
    asked = bool(_QUESTION.search(latest_text(tracker)))

    def build(bot: Answers, channel: str | None) -> list[Reply]:
        follow_up = bot.for_trigger("concern", channel)
        if not asked:
            return [follow_up]
        return [bot.for_intent("mental_health_concern", None, channel), follow_up]

    events = await respond(dispatcher, tracker, build)
    return [*events, SlotSet("topic", "mood")]


class ScreenedAction(Action, ABC):
    """An answer that first re-screens the raw text.

    The NLU pipeline's safety component routes crisis and concern messages to
    their own actions; this catches any message that reached an ordinary
    answer without going through it (``/intent`` payloads skip NLU).
    """

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        level = default_screen().screen(latest_text(tracker)).level
        if level is Level.CRISIS:
            return await handle_crisis(dispatcher, tracker)
        if level is Level.CONCERN:
            return await handle_concern(dispatcher, tracker)
        return await self.answer(dispatcher, tracker)

    @abstractmethod
    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[EventType]:
        """The action's own answer, for a message the screen did not flag."""


class ActionSessionStart(Action):
    """Starts a session; the welcome comes with the first reply (see respond)."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return [SessionStarted(), ActionExecuted("action_listen")]


class ActionHandleCrisis(Action):
    """911 and 988 at once, and an urgent handoff stored before the reply."""

    def name(self) -> str:
        return "action_handle_crisis"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return await handle_crisis(dispatcher, tracker)


class ActionHandleConcern(Action):
    """The mood answer (for a question), a staff follow-up and the clinic's contact."""

    def name(self) -> str:
        return "action_handle_concern"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return await handle_concern(dispatcher, tracker)


class ActionAnswerTopic(ScreenedAction):
    """Answers a topic intent from the knowledge base."""

    def name(self) -> str:
        return "action_answer_topic"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[EventType]:
        intent, facet = latest_intent(tracker), latest_facet(tracker)
        first = not tracker.get_slot("welcomed")
        chosen: list[Reply] = []

        def build(bot: Answers, channel: str | None) -> list[Reply]:
            reply = bot.for_intent(intent, facet, channel)
            if reply is None:  # not a topic intent: never guess an answer
                reply = bot.for_trigger("fallback", channel)
            chosen.append(reply)
            if first and intent == "greet":
                return []  # the welcome already says hello
            return [reply]

        events = await respond(dispatcher, tracker, build)
        return events + (remembered_topic(chosen[0]) if chosen else [])


class ActionAnswerFollowUp(ScreenedAction):
    """Answers "and after I stop?" in the context of the last topic."""

    def name(self) -> str:
        return "action_answer_follow_up"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[EventType]:
        last_topic, facet = tracker.get_slot("topic"), latest_facet(tracker)
        chosen: list[Reply] = []

        def build(bot: Answers, channel: str | None) -> list[Reply]:
            chosen.append(bot.for_follow_up(last_topic, facet, channel))
            return chosen

        events = await respond(dispatcher, tracker, build)
        return events + (remembered_topic(chosen[0]) if chosen else [])


class ActionAnswerFallback(ScreenedAction):
    """Low confidence: offer the main topics and the clinic's contact."""

    def name(self) -> str:
        return "action_answer_fallback"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[EventType]:
        events = await respond(
            dispatcher, tracker, lambda bot, ch: [bot.for_trigger("fallback", ch)]
        )
        # Forget the misunderstood message (the topic stays for follow-ups);
        # the revert comes first so that it does not undo the slot events.
        return [UserUtteranceReverted(), *events]


if os.environ.get("BOT_ALERT_WORKER") == "on":
    # In the action server: deliver alerts left over from before a restart.
    alert_worker()
