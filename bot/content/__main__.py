"""``python -m bot.content check|load|review-packet``: check the knowledge-base
files, load them into the database (``make kb``), or write the printable
review packet for the clinic's dermatologist (``make review-packet``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot import settings
from bot.content.entries import KnowledgeBaseError, read_knowledge
from bot.content.store import load_knowledge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.content",
        description="Check or load the curated knowledge base.",
    )
    parser.add_argument("command", choices=["check", "load", "review-packet"])
    parser.add_argument("--dir", type=Path, default=settings.KNOWLEDGE_DIR)
    parser.add_argument(
        "--out", type=Path, default=settings.VAR_DIR / "review-packet.html",
        help="where review-packet writes its HTML",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.command == "review-packet":
            from bot.content.review_packet import write_packet

            entries, signed = write_packet(args.out, args.dir)
            print(f"review packet: {entries} entries, {signed} signed off: {args.out}")
        elif args.command == "check":
            print(f"knowledge base: {len(read_knowledge(args.dir))} entries are valid")
        else:
            print(load_knowledge(directory=args.dir))
    except KnowledgeBaseError as error:
        print("The knowledge base was not loaded:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
