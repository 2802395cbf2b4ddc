"""What the patient is sent: choosing the knowledge-base entry and rendering it.

Actions hand this module what NLU understood (intent, facet entity) and what
the conversation holds (the last topic); it returns a ``Reply`` whose text fits
the channel: the short plain-text SMS version for SMS, the web text elsewhere.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace

from bot.content.clinic import Clinic, load_clinic
from bot.content.entries import Entry, fill_placeholders, read_knowledge
from bot.content.store import KnowledgeBase, KnowledgeBaseUnavailable
from bot.content.topics import TopicMap, topic_map

logger = logging.getLogger(__name__)

SMS_CHANNELS = frozenset({"sms", "twilio"})
# rasa shell's channel: only clinic staff use it, and they see a staff line.
STAFF_CHANNELS = frozenset({"cmdline"})
STAFF_LINE_PREFIX = "[staff]"


@dataclass(frozen=True)
class Reply:
    text: str
    topic: str
    entry_id: str
    reviewed_on: dt.date
    buttons: list[dict[str, str]] = field(default_factory=list)
    # For staff only (rasa shell): "Dr. Lee, 2026-12-10", or None when no
    # clinician has signed off today's wording. Not looked up for patients.
    signed_off: str | None = None


def is_sms(channel: str | None) -> bool:
    return (channel or "").lower() in SMS_CHANNELS


def is_staff(channel: str | None) -> bool:
    return (channel or "").lower() in STAFF_CHANNELS


def staff_line(
    replies: list[Reply], intent: str | None, confidence: float | None
) -> str:
    """What answered, for staff checking answers in rasa shell: each entry's
    id and review date, and the intent with its confidence."""

    def state(reply: Reply) -> str:
        signed = reply.signed_off
        return f"signed off by {signed}" if signed else "no clinician sign-off"

    entries = "; ".join(
        f"{r.entry_id} (reviewed {r.reviewed_on.isoformat()}; {state(r)})"
        for r in replies
    )
    understood = (
        f"intent {intent} {confidence:.2f}"
        if intent and confidence is not None
        else f"intent {intent or 'none'}"
    )
    return f"{STAFF_LINE_PREFIX} entry {entries or 'none'} | {understood}"


def render(entry: Entry, channel: str | None, clinic: Clinic) -> str:
    """The entry's text for ``channel``, with the clinic's details filled in."""
    return fill_placeholders(entry.sms if is_sms(channel) else entry.answer, clinic)


class ReviewedFiles:
    """The knowledge base as the reviewed files hold it, read once per process.

    The safety replies (crisis, the safety question, the mood answers) come
    from here, never from the database: a crisis reply must not wait on a
    database that is down or hung. The files are what ``make kb`` loads, so
    the texts are the same; a wording change reaches them at the next restart.
    """

    def __init__(self, directory=None) -> None:
        self.directory = directory
        self._entries: dict[tuple[str, str | None], Entry] | None = None

    def find(self, topic: str, facet: str | None = None) -> Entry | None:
        if self._entries is None:
            self._entries = {
                (e.topic, e.facet): e for e in read_knowledge(self.directory)
            }
        return self._entries.get((topic, facet))


class Answers:
    """Picks and renders entries; one instance serves the action server."""

    def __init__(
        self, knowledge: KnowledgeBase | None = None, topics: TopicMap | None = None
    ) -> None:
        self.knowledge = knowledge or KnowledgeBase()
        self.topics = topics or topic_map()
        self._files = ReviewedFiles()
        self._signoffs = None  # created at the first staff answer

    def find(self, topic: str, facet: str | None) -> Entry | None:
        """The entry from the database, or from the reviewed files if it is down."""
        try:
            return self.knowledge.find(topic, facet)
        except KnowledgeBaseUnavailable:
            logger.error("knowledge-base database unavailable: answering from files")
            return self._files.find(topic, facet)

    def menu_buttons(self) -> list[dict[str, str]]:
        """The main topics as buttons whose payload asks the topic's intent."""
        return [_button(t) for t in self.topics.menu()]

    def _buttons(self, topic) -> list[dict[str, str]]:
        if topic is None:
            return []
        if topic.buttons:
            return self.menu_buttons()
        # An answer to a question ("Yes", "No") is sent as the patient's text.
        return [{"title": choice, "payload": choice} for choice in topic.choices]

    def for_intent(
        self, intent: str | None, facet: str | None, channel: str | None
    ) -> Reply | None:
        """The answer to a topic intent, narrowed by a facet where one exists."""
        topic = self.topics.for_intent(intent)
        if topic is None:
            return None
        return self._reply(topic.id, facet, channel)

    def for_follow_up(
        self, last_topic: str | None, facet: str | None, channel: str | None
    ) -> Reply:
        """The answer to "and after I stop?" / "what about the lips?".

        Tries the last topic with the facet, then the facet's own topic (lips:
        dryness), then the last topic's main entry; with neither a topic nor a
        facet that has a topic of its own, asks which topic the patient means.
        """
        candidates: list[tuple[str, str | None]] = []
        facet_info = self.topics.facet(facet)
        if last_topic and facet_info:
            candidates.append((last_topic, facet_info.id))
        if facet_info and facet_info.default_topic:
            candidates += [
                (facet_info.default_topic, facet_info.id),
                (facet_info.default_topic, None),
            ]
        if last_topic:
            candidates.append((last_topic, None))
        for topic_id, facet_id in candidates:
            if self.find(topic_id, facet_id) is not None:
                return self._reply(topic_id, facet_id, channel)
        return self.for_trigger("follow_up_without_topic", channel)

    def did_you_mean(self, intents: list[str], channel: str | None) -> Reply | None:
        """ "Did you mean...?" with a button for each topic the intents ask
        (and one for the full menu), or None when fewer than two are topics
        a patient can pick."""
        topics = [self.topics.for_intent(intent) for intent in intents]
        choices = [t for t in topics if t is not None and t.trigger is None]
        if len(choices) < 2:
            return None
        reply = self.for_trigger("close_topics", channel)
        something_else = {"title": "Something else", "payload": "/ask_help"}
        return replace(reply, buttons=[*map(_button, choices), something_else])

    def for_trigger(
        self, trigger: str, channel: str | None, language: str = "en"
    ) -> Reply:
        """The entry reached without an intent (welcome, fallback, ...), in
        ``language`` where the knowledge base has it."""
        topic = self.topics.for_trigger(trigger, language)
        return self._reply(topic.id, None, channel)

    def _reply(self, topic_id: str, facet: str | None, channel: str | None) -> Reply:
        entry = None
        if facet is not None:
            entry = self.find(topic_id, facet)
        entry = entry or self.find(topic_id, None)
        if entry is None:
            raise LookupError(f"no knowledge-base entry for topic {topic_id!r}")
        topic = self.topics.topic(topic_id)
        return Reply(
            text=render(entry, channel, load_clinic()),
            topic=topic_id,
            entry_id=entry.id,
            reviewed_on=entry.reviewed_on,
            buttons=self._buttons(topic),
            signed_off=self._signed_off(entry) if is_staff(channel) else None,
        )

    def _signed_off(self, entry: Entry) -> str | None:
        from bot.content.signoff import SignOffs

        engine = getattr(self.knowledge, "engine", None)
        if engine is None:  # answering from the files: no database to ask
            return None
        try:
            if self._signoffs is None:
                self._signoffs = SignOffs(engine)
            found = self._signoffs.current(entry)
        except Exception:  # the staff line only; never fail an answer over it
            logger.warning("clinician sign-offs could not be read")
            return None
        return f"{found.clinician}, {found.signed_on.isoformat()}" if found else None


def _button(topic) -> dict[str, str]:
    """A button that asks the topic's intent (sent as the intent's payload)."""
    return {"title": topic.label, "payload": f"/{topic.intent}"}


def unavailable_text(clinic: Clinic | None = None) -> str:
    """What to say when neither the database nor the reviewed files can be read."""
    clinic = clinic or load_clinic()
    return (
        f"Sorry, I can't look that up right now. Please call {clinic.name} at "
        f"{clinic.phone}. In an emergency, call 911."
    )


def emergency_text(spanish: bool = False) -> str:
    """The crisis reply of last resort, when no reviewed content can be read
    (it depends on nothing: no database, no file)."""
    english = (
        "If you or someone else is in danger right now, call 911. Call or text 988 "
        "to reach the Suicide & Crisis Lifeline, any time, day or night."
    )
    if not spanish:
        return english
    return (
        "Si tú u otra persona están en peligro ahora mismo, llama al 911. Llama al "
        "988 y marca 2 para español, o envía AYUDA por texto al 988, a cualquier "
        "hora. " + english
    )
