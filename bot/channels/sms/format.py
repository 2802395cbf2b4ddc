"""Turning the bot's replies into text messages.

A text message has no buttons and no markup: buttons become a numbered list
("Reply 1 for Side effects"), whose payloads stay on the server; markup is
removed; and one reply that is too long for one message is cut at sentence
boundaries into at most ``MAX_PARTS`` messages, sent in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# 3 concatenated GSM segments (3 x 153 characters) per message.
PART_CHARS = 459
MAX_PARTS = 3

_TAG = re.compile(r"<[^>]{0,200}>")
_LINK = re.compile(r"\[([^\]]{1,200})\]\((https?://[^)\s]{1,500})\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CHOICE = re.compile(r"^\s*#?\s*(\d{1,2})\s*[.)]?\s*$")


@dataclass(frozen=True)
class SmsReply:
    """The text to send and the buttons behind its numbered list."""

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)


def plain(text: str) -> str:
    """The text without HTML tags or markdown emphasis; links keep their URL."""
    text = _LINK.sub(r"\1 (\2)", text)
    text = _TAG.sub("", text)
    text = _EMPHASIS.sub("", text)
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()


def compose(messages: list[dict[str, Any]]) -> SmsReply:
    """One SMS reply from the bot's messages, in the order the bot sent them."""
    paragraphs: list[str] = []
    buttons: list[dict[str, str]] = []
    for message in messages:
        text = plain(str(message.get("text") or ""))
        if text:
            paragraphs.append(text)
        for button in message.get("buttons") or []:
            title = plain(str(button.get("title") or ""))
            payload = str(button.get("payload") or "")
            if title and payload:
                buttons.append({"title": title, "payload": payload})
    if buttons:
        paragraphs.append(
            "\n".join(f"Reply {n} for {b['title']}" for n, b in enumerate(buttons, 1))
        )
    return SmsReply("\n\n".join(paragraphs), buttons)


def choice(text: str, buttons: list[dict[str, str]]) -> str | None:
    """The payload a reply of "1", "2." or "#3" selects, if it names a button."""
    match = _CHOICE.match(text)
    if not match:
        return None
    number = int(match.group(1))
    return buttons[number - 1]["payload"] if 1 <= number <= len(buttons) else None


def _pieces(text: str, limit: int) -> list[str]:
    """Sentences and lines, each cut at words if it alone is over ``limit``."""
    pieces: list[str] = []
    for paragraph in text.split("\n"):
        for sentence in _SENTENCE_END.split(paragraph):
            while len(sentence) > limit:
                cut = sentence.rfind(" ", 0, limit)
                cut = cut if cut > 0 else limit
                pieces.append(sentence[:cut])
                sentence = sentence[cut:].lstrip()
            pieces.append(sentence)
        pieces.append("\n")  # the paragraph or line ends here
    return pieces[:-1]


def split(text: str, limit: int = PART_CHARS, max_parts: int = MAX_PARTS) -> list[str]:
    """``text`` as at most ``max_parts`` messages, cut between sentences.

    What does not fit in ``max_parts`` messages is left out, whole sentences
    at a time; the replies that matter most (a crisis reply) come first.
    """
    parts: list[str] = []
    current = ""
    for piece in _pieces(text.strip(), limit):
        if piece == "\n":
            current = current.rstrip(" ") + "\n" if current else current
            continue
        joiner = "" if not current or current.endswith("\n") else " "
        if len(current) + len(joiner) + len(piece) <= limit:
            current += joiner + piece
            continue
        if current.strip():
            parts.append(current.strip())
        current = piece
    if current.strip():
        parts.append(current.strip())
    return parts[:max_parts]
