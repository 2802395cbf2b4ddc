"""The action server's actions: thin wrappers that read the tracker, ask
``bot/`` for the reply (and, for crisis or concern, store a handoff first) and
return events.

Every reply goes through ``respond``: the first reply of a conversation starts
with the welcome (what the bot is), except a crisis reply, which starts with
911 and 988; once a conversation has had a crisis, every later answer ends
with a short reminder of 911 and 988.

Safety: the NLU pipeline's screen (``bot.safety.screen``) puts its outcome in the
parse data; the actions re-screen the raw text when it is missing (``/intent``
payloads skip NLU). A crisis gets the crisis reply; a possible risk the direct
safety question, with a concern handoff stored first; the patient's next
message answers it: yes (or anything but no) makes the handoff a crisis, no
returns to the conversation with the mood information.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    EventType,
    SlotSet,
    UserUtteranceReverted,
)
from rasa_sdk.executor import CollectingDispatcher

from bot.content.answers import (
    Answers,
    Reply,
    ReviewedFiles,
)
from bot.content.entries import KnowledgeBaseError
from bot.content.replies import (
    Turn,
    close_intents,
    messages,
    when_content_fails,
    with_welcome_and_reminder,
)
from bot.content.store import KnowledgeBaseUnavailable
from bot.privacy.erase import forget_patient_data
from bot.run.tracker_store import FORGOTTEN_SLOT
from bot.safety.handoffs import Handoff, HandoffQueue, handoff_id_for
from bot.safety.screen import Level, ScreenResult, default_screen
from bot.safety.text import answer_to_question, is_question

logger = logging.getLogger(__name__)

_CONTENT_ERRORS = (KnowledgeBaseUnavailable, KnowledgeBaseError, LookupError, OSError)

_answers: Answers | None = None
_handoffs: HandoffQueue | None = None


def answers() -> Answers:
    """One ``Answers`` for the action server's life (its engine is pooled)."""
    global _answers
    if _answers is None:
        _answers = Answers()
    return _answers


_safety_answers: Answers | None = None


def safety_answers() -> Answers:
    """The safety replies, from the reviewed files: never waiting on the
    database (see ``bot.content.answers.ReviewedFiles``)."""
    global _safety_answers
    if _safety_answers is None:
        _safety_answers = Answers(ReviewedFiles())
    return _safety_answers


def handoff_queue() -> HandoffQueue:
    global _handoffs
    if _handoffs is None:
        _handoffs = HandoffQueue()
    return _handoffs


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


# The id of the concern handoff whose direct safety question awaits an answer.
SAFETY_QUESTION_SLOT = "safety_question"
# The patient asked to delete this conversation; the next message confirms.
FORGET_SLOT = "forget_request"
# Whether the conversation is in Spanish, as the screen last judged it.
SPANISH_SLOT = "spanish"


def screen_of(tracker: Tracker) -> ScreenResult:
    """The screen's outcome for the latest message: from the NLU pipeline's
    parse data, or screened here (a ``/intent`` payload skips NLU)."""
    data = tracker.latest_message.get("safety")
    if isinstance(data, dict):
        return ScreenResult.from_dict(data)
    return default_screen().screen(latest_text(tracker))


def language(tracker: Tracker, result: ScreenResult | None = None) -> str:
    spanish = result.spanish if result else tracker.get_slot(SPANISH_SLOT)
    return "es" if spanish else "en"


def turn_of(tracker: Tracker, remind: bool = False) -> Turn:
    return Turn(
        channel=input_channel(tracker),
        welcomed=bool(tracker.get_slot("welcomed")),
        after_crisis=bool(tracker.get_slot("crisis_active")) or remind,
        intent=latest_intent(tracker),
        confidence=latest_confidence(tracker),
    )


async def respond(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    build: Callable[[Answers, str | None], list[Reply]],
    crisis: bool = False,
    remind: bool = False,
    safety: bool = False,
) -> list[EventType]:
    """Send the replies ``build`` makes, composed for the turn
    (``bot.content.replies``).

    ``crisis``: this is the crisis reply (nothing before it); ``remind``: end
    with the 911/988 reminder even if the conversation had no crisis yet;
    ``safety``: a safety reply, composed from the reviewed files."""
    turn = turn_of(tracker, remind)
    bot = safety_answers() if safety or crisis else answers()

    def compose() -> list[Reply]:
        made = build(bot, turn.channel)
        return with_welcome_and_reminder(bot, made, turn, crisis=crisis)

    try:
        sent = messages(await asyncio.to_thread(compose), turn)
    except _CONTENT_ERRORS:
        # Never the message text: only that the content could not be read.
        logger.error("no reviewed content could be read for this reply")
        sent = when_content_fails(crisis) + messages([], turn)
    for message in sent:
        dispatcher.utter_message(**message)
    return [SlotSet("welcomed", True)]


def remembered_topic(reply: Reply) -> list[EventType]:
    """Keep the topic for follow-ups ("and after I stop?") where it makes sense."""
    topic = answers().topics.topic(reply.topic)
    keep = topic is not None and topic.intent is not None and topic.follow_ups
    return [SlotSet("topic", reply.topic)] if keep else []


def new_handoff(tracker: Tracker, level: str) -> Handoff:
    """The handoff for the latest message (the same id wherever it is made)."""
    return HandoffQueue.new(
        tracker.sender_id,
        input_channel(tracker) or "unknown",
        level,
        latest_text(tracker),
        handoff_id_for(tracker.sender_id, tracker.latest_message.get("message_id")),
    )


async def store_handoff(handoff: Handoff) -> Handoff:
    """Commit (or spool) the handoff before the reply, within 2 seconds; a
    failure never stops the reply."""
    try:
        stored = await handoff_queue().store_promptly(handoff)
        logger.info("%s handoff %s stored", stored.level, stored.id)
        return stored
    except Exception:
        logger.exception("a %s handoff could not be stored", handoff.level)
        return handoff


async def escalate(handoff_id: str, tracker: Tracker, answer: str) -> None:
    """The safety question's answer was yes, or not an answer: a crisis now.

    A crisis record under the concern's id escalates its row (or is spooled,
    and escalates it on replay), within the same 2-second bound."""
    await store_handoff(replace(new_handoff(tracker, "crisis"), id=handoff_id))
    logger.warning("handoff %s escalated to crisis (%s)", handoff_id, answer)
    in_background(handoff_queue().question_answered, handoff_id, answer)


_background: set[asyncio.Task] = set()


def in_background(call: Callable[..., Any], *args: Any) -> None:
    """Run a database write off the reply's path; a failure is logged."""

    async def run() -> None:
        try:
            await asyncio.to_thread(call, *args)
        except Exception:
            logger.exception("a background safety record failed")

    task = asyncio.ensure_future(run())
    _background.add(task)  # keep a reference until it is done
    task.add_done_callback(_background.discard)


def record_question(handoff: Handoff) -> None:
    """Record the asked question, so that silence escalates it in time. With
    the database down nothing can time the answer: the handoff becomes a
    crisis at once (spooled like any handoff), and staff call."""
    queue = handoff_queue()
    if not handoff.spooled:
        try:
            queue.question_asked(handoff)
            return
        except Exception as error:
            logger.error(
                "the safety question of handoff %s was not recorded (%s)",
                handoff.id,
                type(error).__name__,
            )
    escalated = queue.escalate(handoff)
    logger.warning("handoff %s escalated to crisis: its answer cannot be timed",
                   escalated.id)  # fmt: skip


def crisis_reply(spanish: bool) -> Callable[[Answers, str | None], list[Reply]]:
    lang = "es" if spanish else "en"
    return lambda bot, channel: [bot.for_trigger("crisis", channel, lang)]


async def handle_crisis(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    result: ScreenResult | None = None,
) -> list[EventType]:
    """911 and 988 at once; the urgent handoff stored first. A pending safety
    question's concern becomes this crisis (one handoff, escalated)."""
    result = result or screen_of(tracker)
    pending = tracker.get_slot(SAFETY_QUESTION_SLOT)
    if pending:
        await escalate(pending, tracker, "yes")
    else:
        await store_handoff(new_handoff(tracker, "crisis"))
    events = await respond(
        dispatcher, tracker, crisis_reply(result.spanish), crisis=True, safety=True
    )
    return [
        *events,
        SlotSet("crisis_active", True),
        SlotSet(SAFETY_QUESTION_SLOT, None),
        SlotSet(SPANISH_SLOT, result.spanish),
    ]


async def ask_safety_question(
    dispatcher: CollectingDispatcher, tracker: Tracker, result: ScreenResult
) -> list[EventType]:
    """A possible risk: a concern handoff first, then the direct question
    (with 988), after the mood facts when the patient asked about them."""
    handoff = await store_handoff(new_handoff(tracker, "concern"))
    # Recording the question (for the no-answer escalation) must not hold
    # back the question itself.
    in_background(record_question, handoff)
    lang = language(tracker, result)
    informational = result.informational or (
        lang == "en" and is_question(latest_text(tracker))
        and result.source != "classifier"
    )  # fmt: skip

    def build(bot: Answers, channel: str | None) -> list[Reply]:
        question = bot.for_trigger("possible_risk", channel, lang)
        if informational:
            return [bot.for_intent("mental_health_concern", None, channel), question]
        return [question]

    events = await respond(dispatcher, tracker, build, safety=True)
    return [
        *events,
        SlotSet(SAFETY_QUESTION_SLOT, handoff.id),
        SlotSet(SPANISH_SLOT, result.spanish),
        SlotSet("topic", "mood"),
    ]


async def handle_concern(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    result: ScreenResult | None = None,
) -> list[EventType]:
    """A mood concern: a handoff first, then the mood answer for a question,
    or the label's advice and support for a disclosure, and a follow-up."""
    result = result or screen_of(tracker)
    if result.level is Level.POSSIBLE:
        return await ask_safety_question(dispatcher, tracker, result)
    if result.level is Level.CRISIS:
        return await handle_crisis(dispatcher, tracker, result)
    await store_handoff(new_handoff(tracker, "concern"))
    asked = is_question(latest_text(tracker))

    def build(bot: Answers, channel: str | None) -> list[Reply]:
        follow_up = bot.for_trigger("concern", channel)
        if asked:
            return [bot.for_intent("mental_health_concern", None, channel), follow_up]
        return [bot.for_trigger("concern_disclosure", channel), follow_up]

    events = await respond(dispatcher, tracker, build, safety=True)
    return [*events, SlotSet("topic", "mood")]


async def answer_safety_question(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    handoff_id: str,
    otherwise: Callable[[], Any],
) -> list[EventType]:
    """The patient's reply to the direct safety question.

    Yes (or a crisis): the concern becomes a crisis, with the crisis reply.
    No: thanks, the mood information, back to the conversation. Anything
    else is no answer: the handoff becomes a crisis, the message is answered
    as usual, and 911/988 stay at the end of every answer.
    """
    result = screen_of(tracker)
    answer = answer_to_question(latest_text(tracker))
    if result.level is Level.CRISIS or answer == "yes":
        return await handle_crisis(dispatcher, tracker, result)
    if answer == "no":
        in_background(handoff_queue().question_answered, handoff_id, "no")
        lang = language(tracker)

        def build(bot: Answers, channel: str | None) -> list[Reply]:
            thanks = bot.for_trigger("safety_answer_no", channel, lang)
            if lang == "es":
                return [thanks]
            return [thanks, bot.for_intent("mental_health_concern", None, channel)]

        events = await respond(dispatcher, tracker, build, safety=True)
        return [*events, SlotSet(SAFETY_QUESTION_SLOT, None)]
    await escalate(handoff_id, tracker, "other")
    events = await otherwise()
    return [
        *events,
        SlotSet(SAFETY_QUESTION_SLOT, None),
        SlotSet("crisis_active", True),
    ]


async def answer_forget_request(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    otherwise: Callable[[], Any],
) -> list[EventType]:
    """The patient's reply to "Do you want me to delete this conversation?".

    Yes: the bot's own records of it go first (handoff texts, SMS records),
    then the conversation store deletes the whole conversation as it saves
    this turn (the ``conversation_forgotten`` slot). No: nothing is deleted.
    Anything else is another question: answered as usual, nothing deleted.
    """
    answer = answer_to_question(latest_text(tracker))
    if answer is None:  # cleared first: asking again sets it again
        return [SlotSet(FORGET_SLOT, None), *await otherwise()]
    if answer == "no":
        events = await respond(
            dispatcher,
            tracker,
            lambda bot, channel: [bot.for_trigger("forget_kept", channel)],
        )
        return [*events, SlotSet(FORGET_SLOT, None)]
    try:
        await asyncio.to_thread(forget_patient_data, tracker.sender_id)
    except Exception as error:
        # Nothing deleted (the conversation neither): the patient is told so.
        logger.error("a conversation could not be forgotten (%s)", type(error).__name__)
        events = await respond(
            dispatcher, tracker,
            lambda bot, channel: [bot.for_trigger("forget_failed", channel)],
        )  # fmt: skip
        return [*events, SlotSet(FORGET_SLOT, None)]
    logger.info("a patient asked to be forgotten: their records are erased")
    await respond(
        dispatcher,
        tracker,
        lambda bot, channel: [bot.for_trigger("forget_done", channel)],
    )
    return [SlotSet(FORGET_SLOT, None), SlotSet(FORGOTTEN_SLOT, True)]


class ScreenedAction(Action, ABC):
    """An answer that first checks the safety screen and a pending question.

    The NLU pipeline's safety component routes crisis and concern messages to
    their own actions; this catches any message that reached an ordinary
    answer without going through it (``/intent`` payloads skip NLU), and the
    patient's reply to the direct safety question, whatever intent it got.
    """

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        pending = tracker.get_slot(SAFETY_QUESTION_SLOT)
        if pending:
            return await answer_safety_question(
                dispatcher,
                tracker,
                pending,
                lambda: self.answer(dispatcher, tracker, remind=True),
            )
        result = screen_of(tracker)
        if result.level is Level.CRISIS:
            return await handle_crisis(dispatcher, tracker, result)
        if result.level is not None:
            return await handle_concern(dispatcher, tracker, result)
        if tracker.get_slot(FORGET_SLOT):
            return await answer_forget_request(
                dispatcher, tracker, lambda: self.answer(dispatcher, tracker)
            )
        return await self.answer(dispatcher, tracker)

    @abstractmethod
    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, remind: bool = False
    ) -> list[EventType]:
        """The action's own answer, for a message the screen did not flag."""


class ActionHandleCrisis(Action):
    """911 and 988 at once, and an urgent handoff stored before the reply."""

    def name(self) -> str:
        return "action_handle_crisis"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return await handle_crisis(dispatcher, tracker)


# The menu's "Mood and mental health" button (bot.content.answers: a topic's
# button sends "/<its intent>").
MOOD_BUTTON = "/mental_health_concern"


async def read_about_mood(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType]:
    """The mood topic for a patient who tapped its button: the label's facts,
    the warning signs and 988, and no handoff (they asked to read, and said
    nothing of themselves)."""

    def build(bot: Answers, channel: str | None) -> list[Reply]:
        return [bot.for_intent("mental_health_concern", None, channel)]

    events = await respond(dispatcher, tracker, build, safety=True)
    return [*events, SlotSet("topic", "mood")]


class ActionHandleConcern(Action):
    """The mood answer (for a question), a staff follow-up and the clinic's contact."""

    def name(self) -> str:
        return "action_handle_concern"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        pending = tracker.get_slot(SAFETY_QUESTION_SLOT)
        if pending:
            # "no, but I still feel awful": the answer first, then the concern.
            return await answer_safety_question(
                dispatcher, tracker, pending,
                lambda: handle_concern(dispatcher, tracker),
            )  # fmt: skip
        if latest_text(tracker).strip() == MOOD_BUTTON:
            return await read_about_mood(dispatcher, tracker)
        return await handle_concern(dispatcher, tracker)


class ActionAnswerTopic(ScreenedAction):
    """Answers a topic intent from the knowledge base."""

    def name(self) -> str:
        return "action_answer_topic"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, remind: bool = False
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

        events = await respond(dispatcher, tracker, build, remind=remind)
        return events + (remembered_topic(chosen[0]) if chosen else [])


class ActionForgetConversation(ScreenedAction):
    """ "Delete my conversation": asks to confirm first (bot.privacy)."""

    def name(self) -> str:
        return "action_forget_conversation"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, remind: bool = False
    ) -> list[EventType]:
        def build(bot: Answers, channel: str | None) -> list[Reply]:
            return [bot.for_intent("forget_me", None, channel)]

        events = await respond(dispatcher, tracker, build, remind=remind)
        return [*events, SlotSet(FORGET_SLOT, True)]


class ActionAnswerFollowUp(ScreenedAction):
    """Answers "and after I stop?" in the context of the last topic."""

    def name(self) -> str:
        return "action_answer_follow_up"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, remind: bool = False
    ) -> list[EventType]:
        last_topic, facet = tracker.get_slot("topic"), latest_facet(tracker)
        chosen: list[Reply] = []

        def build(bot: Answers, channel: str | None) -> list[Reply]:
            chosen.append(bot.for_follow_up(last_topic, facet, channel))
            return chosen

        events = await respond(dispatcher, tracker, build, remind=remind)
        return events + (remembered_topic(chosen[0]) if chosen else [])


class ActionAnswerFallback(ScreenedAction):
    """Low confidence: when two topics are close, "Did you mean...?" with the
    two; otherwise the main topics and the clinic's contact."""

    def name(self) -> str:
        return "action_answer_fallback"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, remind: bool = False
    ) -> list[EventType]:
        close = close_intents(tracker.latest_message.get("intent_ranking") or [])

        def build(bot: Answers, channel: str | None) -> list[Reply]:
            return [
                bot.did_you_mean(close, channel) or bot.for_trigger("fallback", channel)
            ]

        events = await respond(dispatcher, tracker, build, remind=remind)
        if remind:  # the reply to the safety question stays in the transcript
            return events
        # Forget the misunderstood message (the topic stays for follow-ups);
        # the revert comes first so that it does not undo the slot events.
        return [UserUtteranceReverted(), *events]
