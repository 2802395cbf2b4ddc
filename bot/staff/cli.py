"""Staff command line: handoffs, and what the bot could not answer.

    python -m bot.staff handoffs [--status open] [--json]
    python -m bot.staff show ID            the handoff and the conversation so far
                                           (and, for SMS, the number to call back)
    python -m bot.staff claim ID --by NAME
    python -m bot.staff resolve ID --by NAME [--note TEXT]
    python -m bot.staff sign-off ENTRY_ID... --by NAME
                                           a clinician's sign-off on entries
    python -m bot.staff sign-offs [--missing]
                                           which entries are signed off
    python -m bot.staff unanswered [--messages]
                                           what patients asked that fell back or
                                           went to the dermatologist, by day and
                                           topic (--messages: their text too)
    python -m bot.staff forget SENDER_ID   delete a conversation (the patient
                                           asked by phone or in person): its
                                           turns, SMS records and handoff texts

IDs may be shortened to a unique prefix of at least 6 characters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bot.channels.sms.phone_numbers import ContactCipher, PhoneNumberKeyError
from bot.channels.sms.store import SmsStore
from bot.privacy.erase import forget as forget_everything
from bot.safety.handoffs import STATUSES, Handoff, HandoffNotFound, HandoffQueue
from bot.staff.shown import shown
from bot.staff.unanswered import report as unanswered_report
from bot.staff.unanswered import unanswered as unanswered_messages


def _table(handoffs: list[Handoff]) -> str:
    if not handoffs:
        return "no handoffs"
    lines = [
        f"{'id':10} {'level':8} {'status':9} {'channel':9} {'created (UTC)':20} alerted"
    ]
    for h in handoffs:
        alerted = "yes" if h.notified_at else f"no ({h.notify_error or 'pending'})"
        status = "spooled" if h.spooled else h.status
        lines.append(
            f"{h.id[:10]:10} {h.level:8} {status:9} {h.channel[:9]:9} "
            f"{h.created_at:%Y-%m-%d %H:%M:%S}  {alerted}"
        )
    return "\n".join(lines)


def tracker_store():
    """The tracker store of the profile's endpoints file (as the servers use it)."""
    from bot.run.tracker_store import configured_store

    return configured_store()


async def all_conversations() -> list[tuple[str, list[dict[str, Any]]]]:
    """Every stored conversation's events, as Rasa stores them."""
    store = tracker_store()
    found = []
    for sender_id in await store.keys():
        tracker = await store.retrieve_full_tracker(sender_id)
        if tracker is not None:
            found.append((sender_id, [event.as_dict() for event in tracker.events]))
    return found


async def conversation(sender_id: str) -> list[dict[str, Any]]:
    """The sender's conversation from the tracker store configured in endpoints.yml."""
    tracker = await tracker_store().retrieve_full_tracker(sender_id)
    if tracker is None:
        return []
    turns = []
    for event in tracker.events:
        kind = event.as_dict().get("event")
        if kind in ("user", "bot") and getattr(event, "text", None):
            turns.append({"at": event.timestamp, "who": kind, "text": event.text})
    return turns


def call_back_number(queue: HandoffQueue, handoff: Handoff) -> str | None:
    """The SMS patient's number, decrypted with ``SMS_CONTACT_KEY`` for staff."""
    if handoff.channel != "sms":
        return None
    encrypted = SmsStore(queue.engine).contact(handoff.sender_id)
    if encrypted is None:
        return "unknown (no number stored for this conversation)"
    try:
        return ContactCipher.from_env().decrypt(encrypted)
    except PhoneNumberKeyError as error:
        return f"encrypted ({error})"


def _show(queue: HandoffQueue, handoff_id: str, as_json: bool) -> str:
    handoff = queue.get(handoff_id)
    turns = asyncio.run(conversation(handoff.sender_id))
    number = call_back_number(queue, handoff)
    if as_json:
        return json.dumps(
            {**handoff.summary(), "message": handoff.message, "note": handoff.note,
             "call_back": number, "conversation": turns},
            indent=2,
        )  # fmt: skip
    lines = [
        f"handoff {handoff.id}  [{handoff.level.upper()}]  {handoff.status}",
        f"created {handoff.created_at:%Y-%m-%d %H:%M:%S} UTC via {handoff.channel}, "
        f"conversation {shown(handoff.sender_id)}",
        # What a patient wrote is printed, never acted on by the terminal.
        f"message: {shown(handoff.message) if handoff.message else '(erased)'}",
    ]
    if number:
        lines.append(f"call back: {shown(number)}")
    if handoff.resolved_by:
        lines.append(
            f"resolved by {shown(handoff.resolved_by)}: {shown(handoff.note or '')}"
        )
    lines.append("conversation so far:" if turns else "conversation: none stored")
    for turn in turns:
        who = "patient" if turn["who"] == "user" else "bot    "
        lines.append(f"  {who} | {shown(turn['text'])}")
    return "\n".join(lines)


def _sign_offs(args: argparse.Namespace) -> int:
    from bot.content.signoff import SignOffs
    from bot.content.store import KnowledgeBase

    knowledge = KnowledgeBase()
    entries = knowledge.entries()
    store = SignOffs(knowledge.engine)
    if args.command == "sign-off":
        by_id = {entry.id: entry for entry in entries}
        unknown = [e for e in args.entries if e not in by_id]
        if unknown:
            print(f"no such entry: {', '.join(unknown)} (see `sign-offs`)",
                  file=sys.stderr)  # fmt: skip
            return 2
        for entry_id in args.entries:
            signed = store.record(by_id[entry_id], args.by)
            print(f"{entry_id}: signed off by {signed.clinician} on {signed.signed_on}")
        return 0
    found = store.of(entries)
    missing = 0
    for entry in entries:
        signed = found.get(entry.id)
        if signed and signed.current:
            state = f"signed off by {signed.clinician} on {signed.signed_on}"
        elif signed:
            state = f"CHANGED since {signed.clinician} signed it on {signed.signed_on}"
        else:
            state = "not signed off"
        if not (signed and signed.current):
            missing += 1
        elif args.missing:
            continue
        print(f"{entry.id:32} {state}")
    print(f"{len(entries) - missing} of {len(entries)} entries signed off")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.staff", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("handoffs", help="list handoffs")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--json", action="store_true")
    show = commands.add_parser("show", help="a handoff and its conversation")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    for name in ("claim", "resolve"):
        command = commands.add_parser(name, help=f"{name} a handoff")
        command.add_argument("id")
        command.add_argument("--by", required=True, help="your name")
        if name == "resolve":
            command.add_argument("--note")
    unanswered = commands.add_parser(
        "unanswered",
        help="what patients asked that fell back or went to the dermatologist",
    )
    unanswered.add_argument(
        "--messages", action="store_true", help="show each message's text too"
    )
    sign = commands.add_parser(
        "sign-off", help="record a clinician's sign-off on knowledge-base entries"
    )
    sign.add_argument("entries", nargs="+", metavar="ENTRY_ID")
    sign.add_argument("--by", required=True, help="the clinician's name")
    signoffs = commands.add_parser(
        "sign-offs", help="which entries a clinician has signed off, and which not"
    )
    signoffs.add_argument("--missing", action="store_true", help="only those not")
    forget = commands.add_parser(
        "forget",
        help="delete a conversation, its SMS records and its handoffs' message "
        "text (the patient asked; the handoffs' records stay)",
    )
    forget.add_argument("sender_id", help="the conversation id (see `show`)")
    args = parser.parse_args(argv)

    if args.command in ("sign-off", "sign-offs"):
        return _sign_offs(args)
    if args.command == "unanswered":
        rows = unanswered_messages(asyncio.run(all_conversations()))
        print(unanswered_report(rows, with_text=args.messages))
        return 0
    queue = HandoffQueue()
    queue.replay_spool()
    if args.command == "forget":
        print(
            f"conversation {shown(args.sender_id)}: {forget_everything(args.sender_id)}"
        )
        return 0
    try:
        if args.command == "handoffs":
            handoffs, error = queue.list_with_spooled(args.status)
            if error:
                print(
                    f"warning: the database could not be read ({error}); showing "
                    f"the handoffs spooled in {queue.spool} only",
                    file=sys.stderr,
                )
            if queue.corrupt_spool.exists():
                print(
                    f"warning: unreadable spool lines were set aside in "
                    f"{queue.corrupt_spool}; check them by hand",
                    file=sys.stderr,
                )
            if args.json:
                print(json.dumps([h.summary() for h in handoffs], indent=2))
            else:
                print(_table(handoffs))
        elif args.command == "show":
            print(_show(queue, args.id, args.json))
        elif args.command == "claim":
            handoff = queue.claim(args.id, args.by)
            print(f"handoff {handoff.id} is {handoff.status} by {handoff.claimed_by}")
        else:
            handoff = queue.resolve(args.id, args.by, args.note)
            print(f"handoff {handoff.id} resolved by {handoff.resolved_by}")
    except HandoffNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
