"""What a patient types is text, never a command to Rasa.

Rasa reads a message that starts with "/" as an intent given directly, with
entities as JSON: "/crisis" would raise a crisis handoff with no crisis words,
"/restart" or "/session_start" would wipe the conversation's crisis reminder,
and "/ask_sun_protection{"x": ...}" would set any entity. The chat widget and
SMS send only a few such payloads, all the bot's own: the widget's greeting
when it opens, the topic buttons (``bot.content.answers``: "/<topic intent>"
and "/ask_help") and, on SMS, the same buttons behind a numbered menu.

Every patient channel (REST, socket.io, SMS) passes the text through
``as_text`` before Rasa sees it: one of those payloads, exactly, passes as it
is (it does what tapping the button does); anything else starting with "/"
loses its leading slashes and is read as words ("/crisis" -> "crisis"),
screened like any other message.
"""

from __future__ import annotations

from functools import lru_cache

from bot.content.topics import topic_map

# Sent by the chat widget when it opens (web/chat.js: initPayload).
WIDGET_GREETING = "/greet"
# The "Something else" button under "Did you mean ...?".
MENU_BUTTON = "/ask_help"
# What is left of a message of slashes only: a fullwidth solidus, shown as a
# slash, that Rasa does not read as a command.
_SLASH_AS_TEXT = "\uff0f"


@lru_cache(maxsize=1)
def button_payloads() -> frozenset[str]:
    """Every payload the bot's own buttons and widget send."""
    topics = topic_map().topics
    return frozenset(
        {WIDGET_GREETING, MENU_BUTTON}
        | {f"/{t.intent}" for t in topics if t.intent and t.trigger is None}
    )


def as_text(text: str) -> str:
    """``text`` as Rasa should read it: a button's payload, or words."""
    stripped = text.strip()
    if not stripped.startswith("/") or stripped in button_payloads():
        return text
    words = stripped.lstrip("/").strip()
    return words or _SLASH_AS_TEXT * len(stripped)
