"""``python -m bot.content check|load``: check the knowledge-base files, or load
them into the database (``make kb``).
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
    parser.add_argument("command", choices=["check", "load"])
    parser.add_argument("--dir", type=Path, default=settings.KNOWLEDGE_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
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
