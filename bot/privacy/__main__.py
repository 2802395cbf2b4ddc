"""``python -m bot.privacy purge [--days N]``: delete what is past the
retention period (``make purge``; run it daily from cron, see the README)."""

from __future__ import annotations

import argparse
import logging
import sys

from sqlalchemy.exc import SQLAlchemyError

from bot import settings
from bot.privacy.erase import purge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.privacy")
    commands = parser.add_subparsers(dest="command", required=True)
    purging = commands.add_parser(
        "purge", help="delete conversations and records older than the retention"
    )
    purging.add_argument(
        "--days", type=int, help="default BOT_RETENTION_DAYS "
        f"({settings.load().retention_days})",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        erased = purge(args.days)
    except (ValueError, settings.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SQLAlchemyError as error:  # its text may quote stored values
        print(f"error: purge failed in the database ({type(error).__name__})",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"purged what was older than {args.days or settings.load().retention_days} "
          f"days: {erased}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
