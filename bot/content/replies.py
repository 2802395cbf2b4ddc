"""What a patient is sent for one turn: the answers, with the welcome first in
a new conversation, the 911/988 reminder last once a conversation has had a
crisis, and, for staff in ``rasa shell``, a line saying what answered.

Plain functions of what the action knows about the turn, so that they can be
tested without a tracker; the actions read the tracker, call these, and send
what they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.content.answers import (
    Answers,
    Reply,
    emergency_text,
    is_staff,
    staff_line,
    unavailable_text,
)


@dataclass(frozen=True)
class Turn:
    """What the conversation says about the reply being made."""

    channel: str | None
    welcomed: bool  # the welcome was said earlier in this conversation
    after_crisis: bool  # the conversation had a crisis, or a reminder is due
    intent: str | None = None
    confidence: float | None = None


# Intents never offered as "Did you mean...?": not a topic a patient picks.
NOT_OFFERED = frozenset({
    "nlu_fallback", "crisis", "mental_health_concern", "out_of_scope", "greet",
    "goodbye", "thank", "bot_challenge", "ask_help", "ask_follow_up",
    "request_human",
})  # fmt: skip
# The intent model splits its belief between two topics: each has at least
# CLOSE_EACH, and the two together at least CLOSE_TOGETHER. Below that the
# message is unclear, not ambiguous, and gets the full menu.
CLOSE_EACH = 0.2
CLOSE_TOGETHER = 0.5


def close_intents(ranking: list[dict[str, Any]]) -> list[str]:
    """The two topic intents to offer as "Did you mean...?" for a message the
    NLU fell back on, or [] (then the topic menu). ``ranking`` is Rasa's
    ``intent_ranking``: names and confidences, best first."""
    ranked = [r for r in ranking if r.get("name") not in NOT_OFFERED]
    top = ranked[:2]
    if len(top) < 2:
        return []
    confidences = [float(r.get("confidence") or 0.0) for r in top]
    if min(confidences) < CLOSE_EACH or sum(confidences) < CLOSE_TOGETHER:
        return []
    return [str(r["name"]) for r in top]


def with_welcome_and_reminder(
    bot: Answers, replies: list[Reply], turn: Turn, crisis: bool = False
) -> list[Reply]:
    """``replies`` with the welcome before them (first reply of a conversation)
    and the crisis reminder after them. The crisis reply itself comes alone:
    nothing may stand before 911 and 988."""
    if crisis:
        return replies
    if not turn.welcomed:
        replies = [bot.for_trigger("session_start", turn.channel), *replies]
    if turn.after_crisis:
        replies = [*replies, bot.for_trigger("after_crisis", turn.channel)]
    return replies


def messages(replies: list[Reply], turn: Turn) -> list[dict[str, Any]]:
    """The messages to send: each reply with its buttons, and the staff line
    last when staff are asking (rasa shell)."""
    sent = [{"text": r.text, "buttons": r.buttons or None} for r in replies]
    if is_staff(turn.channel):
        sent.append(
            {"text": staff_line(replies, turn.intent, turn.confidence), "buttons": None}
        )
    return sent


def when_content_fails(crisis: bool) -> list[dict[str, Any]]:
    """The message when no reviewed content can be read at all: the crisis
    reply of last resort (911, 988), or the clinic's phone."""
    return [
        {"text": emergency_text() if crisis else unavailable_text(), "buttons": None}
    ]
