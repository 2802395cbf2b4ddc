"""The supervisor's restarts, with real child processes and a clock of the
test's own."""

from __future__ import annotations

import json
import sys

from bot.run.supervision import (
    MAX_BACKOFF_S,
    Member,
    backoff_s,
    restart_dead,
    write_state,
)


def dying(code: int) -> Member:
    return Member("actions", [sys.executable, "-c", f"raise SystemExit({code})"],
                  {}, None, None)  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_death_is_started_again_at_once_then_the_pause_grows():
    assert [backoff_s(n) for n in range(1, 8)] == [0, 1, 2, 4, 8, 16, 30]
    assert backoff_s(50) == MAX_BACKOFF_S


def test_a_dead_server_is_started_again_and_told(tmp_path):
    clock, said = Clock(), []
    member = dying(3)
    member.start()
    member.started_at = clock.now
    member.process.wait()
    clock.now += 120  # it had run long enough: at once
    assert restart_dead([member], said.append, clock)
    assert member.restarts == 1 and member.process.pid
    assert said[0] == "actions exited (code 3); starting it again"
    assert said[1].startswith("actions started again (pid ")
    member.process.wait()


def test_a_server_that_keeps_dying_waits_longer_each_time():
    clock, said = Clock(), []
    member = dying(1)
    member.start()
    member.started_at = clock.now
    member.process.wait()
    restart_dead([member], said.append, clock)  # 1st quick death: at once
    assert member.restarts == 1
    member.started_at = clock.now
    member.process.wait()
    assert restart_dead([member], said.append, clock)  # 2nd: 1 s
    assert member.restarts == 1 and said[-1].endswith("starting it again in 1 s")
    assert not restart_dead([member], said.append, clock)  # nothing new yet
    clock.now += 1
    assert restart_dead([member], said.append, clock)
    assert member.restarts == 2
    member.process.wait()


def test_a_living_server_is_left_alone():
    member = Member("web", [sys.executable, "-c", "import time; time.sleep(30)"],
                    {}, None, None)  # fmt: skip
    member.start()
    try:
        assert not restart_dead([member], lambda line: None)
        assert member.restarts == 0 and member.alive
    finally:
        member.process.kill()
        member.process.wait()


def test_the_state_file_is_replaced_whole_and_private(tmp_path):
    path = tmp_path / "run" / "state.json"
    write_state(path, {"members": {"rasa": {"pid": 1}}})
    assert json.loads(path.read_text()) == {"members": {"rasa": {"pid": 1}}}
    assert (path.parent.stat().st_mode & 0o777) == 0o700
