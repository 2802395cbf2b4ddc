"""`make shell` as staff use it: the action server and `rasa shell`, driven
through a pseudo-terminal, and the same question on all three channels."""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest
from chat_page import ChatPage, chromium

from bot import settings
from bot.content.store import KnowledgeBase, load_knowledge
from bot.db import engine_for
from bot.run import training

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")
STAFF_LINE = re.compile(r"\[staff\] entry ([^\n]*?) \| intent (\S+) ([01]\.\d\d)")
QUESTION = "can I donate blood while on accutane?"
# What every channel's answer to QUESTION must say, in its own words.
BLOOD_DONATION_FACTS = [
    r"(give|donate) blood",
    r"\b(1|one) month after your last dose",
    r"\bmen\b",
    r"pregnant",
]


@dataclass
class StaffShell:
    child: pexpect.spawn
    knowledge: KnowledgeBase
    port: int

    def ask(self, message: str) -> tuple[str, re.Match]:
        """Type ``message``; the bot's printed answer and its staff line."""
        self.child.send(message + "\r")
        self.child.expect(r"\[staff\][^\r\n]*\r?\n", timeout=120)
        printed = ANSI.sub("", self.child.before + self.child.after)
        match = STAFF_LINE.search(printed)
        assert match, f"no staff line in {printed!r}"
        return printed, match


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory, free_ports) -> Iterator[StaffShell]:
    model = training.current_model()
    if not model.exists():
        pytest.fail(f"no trained model at {model}: run `make train` (make test does)")
    work: Path = tmp_path_factory.mktemp("shell")
    database_url = f"sqlite:///{work / 'bot.db'}"
    load_knowledge(engine_for(database_url))
    env = {
        **os.environ,
        "BOT_DATABASE_URL": database_url,
        "BOT_TRACKER_DB": str(work / "conversations.db"),
        "BOT_HANDOFF_SPOOL": str(work / "spool.jsonl"),
        "HANDOFF_WEBHOOK_URL": "",
        "RASA_PORT": str(free_ports()),
        "ACTIONS_PORT": str(free_ports()),
        "TERM": "xterm",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "bot.run.serve", "--shell"],
        cwd=str(settings.PROJECT_ROOT),
        env=env,
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(40, 250),
        timeout=300,
    )
    child.logfile_read = open(work / "shell.log", "w")  # noqa: SIM115
    try:
        child.expect("Bot loaded. Type a message", timeout=300)
        yield StaffShell(
            child, KnowledgeBase(engine_for(database_url)), int(env["RASA_PORT"])
        )
    finally:
        if child.isalive():
            child.send("/stop\r")
            child.expect(pexpect.EOF, timeout=60)
        child.close(force=True)
        child.logfile_read.close()


@pytest.fixture
def browser_chat(bot, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Ask in the chat widget, in Chromium; the bot's answer as shown."""
    with chromium(tmp_path / "chromium-profile") as context:
        chat = ChatPage(context.new_page(), bot.web_url)
        chat.page.goto(bot.web_url)
        chat.open_widget()
        chat.wait_until(chat.responses, "no welcome")

        def ask(question: str) -> str:
            bot.sent.append(question)
            return " ".join(chat.ask(question))

        yield ask


def web_text(knowledge: KnowledgeBase, entry_id: str) -> str:
    from bot.content.answers import render
    from bot.content.clinic import load_clinic

    entry = next(e for e in knowledge.entries() if e.id == entry_id)
    return render(entry, "cmdline", load_clinic())


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_rasa_shell_answers_from_the_knowledge_base_with_a_staff_line(shell):
    printed, staff = shell.ask(QUESTION)
    assert one_line(web_text(shell.knowledge, "blood_donation")) in one_line(printed)
    entry = next(e for e in shell.knowledge.entries() if e.id == "blood_donation")
    assert (
        f"blood_donation (reviewed {entry.reviewed_on.isoformat()}; "
        "no clinician sign-off)" in staff[1]
    )
    assert staff[2] == "ask_blood_donation"
    assert 0.5 <= float(staff[3]) <= 1.0


def test_rasa_shell_shows_what_answered_a_follow_up(shell):
    printed, staff = shell.ask("and after I stop?")
    assert one_line(web_text(shell.knowledge, "blood_donation_after_treatment")) in (
        one_line(printed)
    )
    assert staff[1].startswith("blood_donation_after_treatment (reviewed ")


def test_the_same_question_carries_the_same_facts_on_all_three_channels(
    shell, bot, browser_chat
):
    """The shell (staff), the web widget (socket.io, in Chromium) and SMS."""
    shell_answer, _ = shell.ask(QUESTION)
    web_answer = browser_chat(QUESTION)
    number = f"+1402555{uuid.uuid4().int % 10000:04d}"
    bot.sent.append(QUESTION)
    response = bot.text_message(number, QUESTION)
    assert response.status_code == 200
    sms_answer = " ".join(bot.twilio.to(number))
    answers = {"shell": shell_answer, "web": web_answer, "sms": sms_answer}
    for channel, answer in answers.items():
        for fact in BLOOD_DONATION_FACTS:
            assert re.search(fact, one_line(answer), re.IGNORECASE), (
                f"{channel} answer lacks /{fact}/: {answer!r}"
            )
    assert "[staff]" in shell_answer
    assert "[staff]" not in web_answer and "[staff]" not in sms_answer


def listening_addresses(port: int) -> set[str]:
    """The local addresses listening on ``port`` (IPv4 and IPv6), in hex as
    /proc/net/tcp* gives them."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_shell_serves_this_machine_only(shell):
    """`rasa shell` also serves its REST webhook on the real conversation
    store: on 127.0.0.1, never on every interface."""
    addresses = listening_addresses(shell.port)
    assert addresses == {"0100007F"}, addresses  # 127.0.0.1, little-endian
