"""The action server's actions: thin wrappers that read the tracker, ask
``bot.answers`` for the reply and return events."""

from __future__ import annotations

import logging
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

from bot.answers import Answers, Reply, unavailable_text
from bot.knowledge import KnowledgeBaseUnavailable

logger = logging.getLogger(__name__)

_answers: Answers | None = None


def answers() -> Answers:
    """One ``Answers`` for the action server's life (its engine is pooled)."""
    global _answers
    if _answers is None:
        _answers = Answers()
    return _answers


def input_channel(tracker: Tracker) -> str | None:
    """The channel of the latest message; at session start, from its metadata."""
    channel = tracker.get_latest_input_channel()
    if channel:
        return channel
    metadata = tracker.get_slot("session_started_metadata") or {}
    return metadata.get("input_channel") if isinstance(metadata, dict) else None


def send(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    dispatcher.utter_message(text=reply.text, buttons=reply.buttons or None)


def remember_topic(reply: Reply) -> list[EventType]:
    """Keep the topic for follow-ups, unless the reply was not a topic's answer."""
    topic = answers().topics.topic(reply.topic)
    return [SlotSet("topic", reply.topic)] if topic and topic.intent else []


def send_unavailable(dispatcher: CollectingDispatcher, action: str) -> None:
    # The message text is never logged: only which action could not answer.
    logger.error("knowledge base unavailable in %s", action)
    dispatcher.utter_message(text=unavailable_text())


class ActionSessionStart(Action):
    """Starts every conversation by saying what the bot is (and is not)."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        try:
            send(
                dispatcher,
                answers().for_trigger("session_start", input_channel(tracker)),
            )
        except (KnowledgeBaseUnavailable, LookupError):
            send_unavailable(dispatcher, self.name())
        return [SessionStarted(), ActionExecuted("action_listen")]


class ActionAnswerTopic(Action):
    """Answers a topic intent from the knowledge base."""

    def name(self) -> str:
        return "action_answer_topic"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        facet = next(tracker.get_latest_entity_values("facet"), None)
        try:
            reply = answers().for_intent(intent, facet, input_channel(tracker))
            if reply is None:  # not a topic intent: never guess an answer
                reply = answers().for_trigger("fallback", input_channel(tracker))
        except (KnowledgeBaseUnavailable, LookupError):
            send_unavailable(dispatcher, self.name())
            return []
        send(dispatcher, reply)
        return remember_topic(reply)


class ActionAnswerFollowUp(Action):
    """Answers "and after I stop?" in the context of the last topic."""

    def name(self) -> str:
        return "action_answer_follow_up"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        facet = next(tracker.get_latest_entity_values("facet"), None)
        try:
            reply = answers().for_follow_up(
                tracker.get_slot("topic"), facet, input_channel(tracker)
            )
        except (KnowledgeBaseUnavailable, LookupError):
            send_unavailable(dispatcher, self.name())
            return []
        send(dispatcher, reply)
        return remember_topic(reply)


class ActionAnswerFallback(Action):
    """Low confidence: offer the main topics and the clinic's contact."""

    def name(self) -> str:
        return "action_answer_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        try:
            send(dispatcher, answers().for_trigger("fallback", input_channel(tracker)))
        except (KnowledgeBaseUnavailable, LookupError):
            send_unavailable(dispatcher, self.name())
        # Forget the misunderstood message so the conversation's topic stays.
        return [UserUtteranceReverted()]
