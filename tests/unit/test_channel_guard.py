"""The channels' guard around Rasa: a bounded wait, then a safe reply and the
handoff a crisis needs, whatever happened to the bot's own processing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot.channels import guard
from bot.content.answers import emergency_text, unavailable_text
from bot.safety.handoffs import HandoffQueue, handoff_id_for
from bot.safety.screen import Level, default_screen


@pytest.fixture(autouse=True)
def channel_database(bot_database, tmp_path, monkeypatch):
    monkeypatch.setenv("BOT_HANDOFF_SPOOL", str(tmp_path / "spool.jsonl"))
    monkeypatch.setenv("BOT_CRISIS_REPLY_WAIT_S", "0.5")
    monkeypatch.setenv("BOT_REPLY_WAIT_S", "1")


def message(text: str, sender: str = "patient-1") -> UserMessage:
    return UserMessage(text, CollectingOutputChannel(), sender, input_channel="rest")


def handled_by(bot):
    """Run the guard around ``bot`` (Rasa's on_new_message stand-in)."""
    incoming = message(bot.text)

    async def main():
        return await guard.process(bot, incoming, lambda: bool(bot.replies))

    return incoming, asyncio.run(main())


class Bot:
    def __init__(self, text: str, behaviour: str, delay: float = 0.0) -> None:
        self.text, self.behaviour, self.delay = text, behaviour, delay
        self.replies: list[str] = []
        self.finished = False

    async def __call__(self, incoming: UserMessage) -> None:
        await asyncio.sleep(self.delay)
        if self.behaviour == "fail":
            raise ConnectionRefusedError("the action server is down")
        if self.behaviour == "reply":
            self.replies.append("an answer")
        self.finished = True


def test_a_bot_that_replies_is_left_alone(engine):
    _, safe = handled_by(Bot("can i wax", "reply"))
    assert safe is None
    assert HandoffQueue(engine).list() == []


def test_a_crisis_with_the_action_server_down_gets_988_and_one_handoff(engine):
    incoming, safe = handled_by(Bot("i want to kill myself", "fail"))
    assert safe == emergency_text()
    (handoff,) = HandoffQueue(engine).list()
    assert handoff.level == "crisis"
    # The id the action server would have used: never two handoffs for one text.
    assert handoff.id == handoff_id_for("patient-1", incoming.message_id)


def test_a_crisis_with_a_slow_bot_gets_988_within_the_crisis_wait(engine):
    bot = Bot("i want to kill myself", "silent", delay=3.0)
    started = time.monotonic()
    _, safe = handled_by(bot)
    assert time.monotonic() - started < 2.0
    assert safe == emergency_text()
    assert [h.level for h in HandoffQueue(engine).list()] == ["crisis"]


def test_a_possible_risk_without_the_action_server_is_handed_off_as_a_crisis(engine):
    # Nobody could hold the direct question open: 988 now, urgent follow-up.
    _, safe = handled_by(Bot("what happens if you overdose on accutane", "fail"))
    assert safe == emergency_text()
    assert [h.level for h in HandoffQueue(engine).list()] == ["crisis"]


def test_a_crisis_in_spanish_without_the_action_server_gets_988s_spanish_line():
    _, safe = handled_by(Bot("ya no quiero vivir, quiero morir", "fail"))
    assert safe == emergency_text(spanish=True)
    assert "marca 2" in safe and "911" in safe


def test_an_ordinary_question_without_the_action_server_gets_the_clinics_phone(
    engine,
):
    _, safe = handled_by(Bot("can i wax my eyebrows", "fail"))
    assert safe == unavailable_text()
    assert HandoffQueue(engine).list() == []


def test_the_handoff_of_the_channel_and_of_the_action_server_are_one(engine):
    incoming, _ = handled_by(Bot("i want to kill myself", "fail"))
    queue = HandoffQueue(engine)
    queue.create(
        "patient-1", "rest", "crisis", "i want to kill myself",
        handoff_id_for("patient-1", incoming.message_id),
    )  # fmt: skip
    assert len(queue.list()) == 1


def test_the_screen_runs_off_the_event_loop_with_the_same_verdict(monkeypatch):
    # The channels screen in threads of their own, so that the sentence
    # vector (computed without Python's lock) leaves the event loop free.
    threads = []
    real = guard.screen

    def recording(text):
        threads.append(threading.current_thread().name)
        return real(text)

    async def main():
        loop_beats = 0
        stop = asyncio.Event()

        async def beat():
            nonlocal loop_beats
            while not stop.is_set():
                loop_beats += 1
                await asyncio.sleep(0)

        beating = asyncio.ensure_future(beat())
        texts = [f"i want to end my life {i}" for i in range(5)] + [
            f"can i get a tattoo {i}" for i in range(5)
        ]
        results = await asyncio.gather(*(guard.screen_off_loop(t) for t in texts))
        stop.set()
        await beating
        return texts, results, loop_beats

    monkeypatch.setattr(guard, "screen", recording)
    texts, results, beats = asyncio.run(main())
    assert all(name.startswith("safety-screen") for name in threads)
    assert len(threads) == len(texts)
    assert beats > 0  # the loop ran while the screen worked
    expected = [default_screen().screen(t) for t in texts]
    assert [r.level for r in results] == [e.level for e in expected]
    assert [r.level for r in results[:5]] == [Level.CRISIS] * 5
    assert [r.level for r in results[5:]] == [None] * 5
