"""The handoff spool: an append-only file of handoffs the database could not
take, each line one handoff as JSON, fsynced before the reply goes out.

Every access holds an ``flock`` on the file, so the processes that write it
(the Rasa server's channels, the action server) and the one that replays it
(the alerts worker, ``bot.staff``) never see half a write. A line that is not
a handoff (torn by a crash, corrupted) is never in the way of the others:
``read`` returns it apart, and ``set_aside`` keeps it in ``<spool>.corrupt``
for staff. The file holds patients' words: it is readable by its owner only.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

# The handoff's fields that are times (ISO 8601 in the file).
TIME_FIELDS = ("created_at", "resolved_at", "notified_at", "next_notify_at")


class Spool:
    def __init__(self, path: Path, parse: Callable[[dict[str, Any]], Any]) -> None:
        """``parse`` makes a handoff of a decoded line, or raises ValueError,
        TypeError or KeyError for one that is not."""
        self.path = Path(path)
        self.parse = parse

    @property
    def corrupt_path(self) -> Path:
        return self.path.with_name(self.path.name + ".corrupt")

    def has_lines(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    @staticmethod
    def line(handoff: Any) -> str:
        record = asdict(handoff)
        record.pop("spooled", None)
        for name in TIME_FIELDS:
            if record.get(name) is not None:
                record[name] = record[name].isoformat()
        return json.dumps(record) + "\n"

    def append(self, handoff: Any) -> None:
        """Add the handoff at the end, fsynced."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as spool:
            fcntl.flock(spool, fcntl.LOCK_EX)
            # A line torn by a crash must not swallow this one.
            if spool.tell() > 0:
                with open(self.path, "rb") as tail:
                    tail.seek(-1, os.SEEK_END)
                    if tail.read(1) != b"\n":
                        spool.write("\n")
            spool.write(self.line(handoff))
            spool.flush()
            os.fsync(spool.fileno())
        os.chmod(self.path, 0o600)  # patients' words: staff only

    def _decode(self, text: str) -> tuple[list[Any], list[str]]:
        handoffs, corrupt = [], []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                record.pop("spooled", None)
                for name in TIME_FIELDS:
                    if record.get(name) is not None:
                        record[name] = dt.datetime.fromisoformat(record[name])
                handoffs.append(self.parse(record))
            except (ValueError, TypeError, KeyError, AttributeError):
                corrupt.append(line)
        return handoffs, corrupt

    def read(self) -> tuple[list[Any], list[str]]:
        """The spooled handoffs in order, and the lines that are not one."""
        if not self.path.exists():
            return [], []
        with open(self.path, encoding="utf-8", errors="replace") as spool:
            fcntl.flock(spool, fcntl.LOCK_SH)
            return self._decode(spool.read())

    @contextmanager
    def rewriting(self) -> Iterator[tuple[list[Any], list[str], Callable]]:
        """Hold the spool exclusively: yields its handoffs, its corrupt lines
        and ``rewrite(handoffs)``, which replaces the whole file (fsynced)."""
        with open(self.path, "r+", encoding="utf-8", errors="replace") as spool:
            fcntl.flock(spool, fcntl.LOCK_EX)
            handoffs, corrupt = self._decode(spool.read())
            yield handoffs, corrupt, lambda kept: self._rewrite(spool, kept)

    def _rewrite(self, spool: IO[str], handoffs: list[Any]) -> None:
        spool.seek(0)
        spool.truncate()
        spool.write("".join(self.line(h) for h in handoffs))
        spool.flush()
        os.fsync(spool.fileno())

    def set_aside(self, corrupt: list[str]) -> None:
        """Keep unreadable lines in ``<spool>.corrupt`` (fsynced) for staff."""
        with open(self.corrupt_path, "a", encoding="utf-8") as aside:
            aside.write("".join(line + "\n" for line in corrupt))
            aside.flush()
            os.fsync(aside.fileno())
        os.chmod(self.corrupt_path, 0o600)
