"""Supervised servers: one that dies is started again, so that one crashed
part never takes the whole bot down (`make run` and `make cluster` alike).

A server that keeps dying is started again after a growing pause (1 s, 2 s,
4 s ... at most ``MAX_BACKOFF_S``), so a broken setting does not spin the
machine's two cores; once it has run ``STABLE_S`` seconds the pause starts
from the beginning again. While the action server is away the Rasa server
answers patients itself (``bot.channels.guard``): the clinic's phone number,
and for a crisis 988, 911 and a stored or spooled handoff.

Each start and death is one line on standard output (server names, process
ids and exit codes only) and the members' process ids and restart counts are
in a JSON state file, for staff and for the fault-injection tests.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot import settings

STABLE_S = 60.0
MAX_BACKOFF_S = 30.0


@dataclass
class Member:
    """One supervised process."""

    name: str
    command: list[str]
    env: dict[str, str]
    url: str | None  # where it answers
    health_url: str | None
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    quick_deaths: int = 0  # deaths in a row, each before STABLE_S
    restart_at: float | None = None  # when it is to be started again

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, cwd=settings.PROJECT_ROOT, env=self.env
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def state(self) -> dict:
        return {
            "pid": self.process.pid if self.alive else None,
            "url": self.url,
            "restarts": self.restarts,
        }


def backoff_s(quick_deaths: int) -> float:
    """The pause before starting again a server that died ``quick_deaths``
    times in a row without running ``STABLE_S`` seconds (0: at once)."""
    if quick_deaths <= 1:
        return 0.0
    return min(MAX_BACKOFF_S, 2.0 ** (quick_deaths - 2))


def restart_dead(
    members: list[Member],
    say: Callable[[str], None] = lambda line: print(line, flush=True),
    now: Callable[[], float] = time.monotonic,
) -> bool:
    """Start again each member that died (after its back-off); True when any
    member died or started, so that the caller writes its state anew."""
    changed = False
    for member in members:
        if member.alive:
            continue
        if member.restart_at is None:  # it has just died
            ran_s = now() - member.started_at
            member.quick_deaths = member.quick_deaths + 1 if ran_s < STABLE_S else 1
            pause = backoff_s(member.quick_deaths)
            member.restart_at = now() + pause
            code = member.process.returncode if member.process else None
            say(
                f"{member.name} exited (code {code}); "
                + (
                    f"starting it again in {pause:g} s"
                    if pause
                    else "starting it again"
                )
            )
            changed = True
        if now() >= member.restart_at:
            member.restarts += 1
            member.start()
            member.started_at = now()
            say(f"{member.name} started again (pid {member.process.pid})")
            changed = True
    return changed


def write_state(path: Path, state: dict) -> None:
    """``state`` as JSON at ``path``, replaced whole (readers never see half)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)
