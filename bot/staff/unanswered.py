"""What patients asked that the bot could not answer: the messages that fell
back (the topic menu, or "Did you mean...?") or were sent to the
dermatologist (a question about one's own dose or care), so that the clinic
knows which content to add.

Read from the tracker store, never copied elsewhere: a message leaves this
list when its conversation is purged or forgotten. The text is shown only
here, to staff at the clinic's own command line; logs never carry it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.staff.shown import shown

# Intents whose message the bot did not answer from the knowledge base.
FELL_BACK = "nlu_fallback"
TO_DERMATOLOGIST = "ask_medical_decision"
KINDS = {FELL_BACK: "fell back", TO_DERMATOLOGIST: "to dermatologist"}
# Not a topic: never the "nearest topic" of a message.
NOT_TOPICS = frozenset({FELL_BACK, "crisis", "mental_health_concern", "out_of_scope"})


@dataclass(frozen=True)
class Unanswered:
    day: dt.date
    kind: str  # "fell back" or "to dermatologist"
    nearest: str  # the topic intent the model found closest, or "-"
    text: str
    sender_id: str


def unanswered(events_by_sender: Iterable[tuple[str, list[dict[str, Any]]]]):
    """Each unanswered patient message in the given conversations (their
    events as Rasa stores them), oldest first."""
    found = []
    for sender_id, events in events_by_sender:
        for event in events:
            if event.get("event") != "user" or not event.get("text"):
                continue
            parse = event.get("parse_data") or {}
            intent = (parse.get("intent") or {}).get("name")
            if intent not in KINDS:
                continue
            ranking = parse.get("intent_ranking") or []
            nearest = next(
                (r["name"] for r in ranking if r.get("name") not in NOT_TOPICS), "-"
            )
            if intent == TO_DERMATOLOGIST:
                nearest = TO_DERMATOLOGIST
            day = dt.datetime.fromtimestamp(
                event.get("timestamp") or 0, dt.timezone.utc
            )
            found.append(
                Unanswered(day.date(), KINDS[intent], nearest, event["text"], sender_id)
            )
    return sorted(found, key=lambda u: (u.day, u.kind, u.nearest))


def report(rows: list[Unanswered], with_text: bool) -> str:
    """Counts by day, by kind and nearest topic; with ``with_text`` each message."""
    if not rows:
        return "no unanswered messages in the stored conversations"
    lines = [f"{len(rows)} unanswered messages", "", "by day:"]
    for day, n in sorted(Counter(r.day for r in rows).items()):
        lines.append(f"  {day:%Y-%m-%d}  {n}")
    lines += ["", "by kind and nearest topic:"]
    for (kind, nearest), n in Counter((r.kind, r.nearest) for r in rows).most_common():
        lines.append(f"  {n:4d}  {kind:17} {nearest}")
    if with_text:
        lines += ["", "messages (staff only; removed with their conversation):"]
        for r in rows:
            lines.append(
                f"  {r.day:%Y-%m-%d} {r.kind:17} {r.nearest:28} "
                f"{shown(r.sender_id[:10]):10} | {shown(r.text)}"
            )
    return "\n".join(lines)
