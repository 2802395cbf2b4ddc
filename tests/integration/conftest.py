"""The real bot: ``python -m bot.run.serve`` (action server + Rasa server) over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from twilio.request_validator import RequestValidator

from bot import settings
from bot.content.store import KnowledgeBase, load_knowledge
from bot.db import engine_for
from bot.run import training
from bot.safety.handoffs import HandoffQueue

READY_TIMEOUT_S = 300
# Where Twilio posts, as the clinic's proxy publishes it: the signature covers
# this URL, not the address the bot listens on.
SMS_WEBHOOK_URL = "https://chat.mod-dermatology.example/webhooks/sms/webhook"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_shutdown.py stops the session's bot: it runs after every other test,
    whatever the file names (a stable sort keeps the rest in order)."""
    items.sort(key=lambda item: item.path.name == "test_shutdown.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningBot:
    process: subprocess.Popen
    rasa_url: str
    actions_url: str
    database_url: str
    work: Path
    postgres: object
    webhook: object
    twilio: object = None
    sms_env: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    web_url: str = ""  # the chat page (bot/channels/web_page.py)

    @property
    def handoffs(self) -> HandoffQueue:
        return HandoffQueue(engine_for(self.database_url), self.work / "spool.jsonl")

    @property
    def env(self) -> dict[str, str]:
        """The environment staff commands need to see this bot's data."""
        return {
            **os.environ,
            "BOT_DATABASE_URL": self.database_url,
            "BOT_TRACKER_DB": str(self.work / "conversations.db"),
            "BOT_HANDOFF_SPOOL": str(self.work / "spool.jsonl"),
            "SMS_CONTACT_KEY": self.sms_env.get("SMS_CONTACT_KEY", ""),
        }

    @property
    def knowledge(self) -> KnowledgeBase:
        return KnowledgeBase(engine_for(self.database_url))

    def say(self, sender: str, message: object) -> list[dict]:
        self.sent.append(str(message))
        response = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def texts(self, sender: str, message: str) -> list[str]:
        return [m["text"] for m in self.say(sender, message) if "text" in m]

    def text_message(
        self,
        number: str,
        body: str | None,
        message_sid: str | None = None,
        signature: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> requests.Response:
        """POST an SMS as Twilio does: a signed form to the SMS webhook."""
        form = {
            "From": number,
            "To": self.sms_env["TWILIO_FROM_NUMBER"],
            "MessageSid": message_sid or f"SM{uuid.uuid4().hex}",
            "AccountSid": self.sms_env["TWILIO_ACCOUNT_SID"],
            "NumMedia": "0",
            **(extra or {}),
        }
        if body is not None:
            form["Body"] = body
            self.sent.append(body)  # checked against the logs at the end
        if signature is None:
            validator = RequestValidator(self.sms_env["TWILIO_AUTH_TOKEN"])
            signature = validator.compute_signature(SMS_WEBHOOK_URL, form)
        headers = {"X-Twilio-Signature": signature} if signature else {}
        return requests.post(
            f"{self.rasa_url}/webhooks/sms/webhook",
            data=form,
            headers=headers,
            timeout=60,
        )

    def staff(self, *args: str, env: dict[str, str] | None = None) -> str:
        """What `python -m bot.staff ARGS` prints for this bot's data."""
        return subprocess.run(
            [sys.executable, "-m", "bot.staff", *args],
            cwd=settings.PROJECT_ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout

    @staticmethod
    def wait_for(check, timeout_s: float = 30.0, every_s: float = 0.25):
        """Poll ``check`` until it returns something truthy (or fail)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(every_s)
        raise AssertionError(f"not true within {timeout_s} s: {check}")

    def web_text(self, entry_id: str) -> str:
        return self.entry_text(entry_id, "rest")

    def sms_text(self, entry_id: str) -> str:
        return self.entry_text(entry_id, "sms")

    def entry_text(self, entry_id: str, channel: str) -> str:
        """A knowledge-base entry as the bot renders it for ``channel``."""
        from bot.content.answers import render
        from bot.content.clinic import load_clinic

        entry = next(e for e in self.knowledge.entries() if e.id == entry_id)
        return render(entry, channel, load_clinic())

    def sms_sender_id(self, number: str) -> str:
        """The conversation id the SMS channel gives ``number``."""
        from bot.channels.sms.phone_numbers import SenderIds

        return SenderIds(self.sms_env["SMS_SENDER_KEY"]).sender_id(number)


def start_until_ready(
    module: str, env: dict[str, str], ready: str, output: list[str]
) -> subprocess.Popen:
    """``python -m MODULE`` in its own session, its output lines appended to
    ``output``; returns once a line starts with ``ready`` (or fails the test
    with the last lines, the process killed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=settings.PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    started = threading.Event()

    def read_output() -> None:
        for line in process.stdout:
            output.append(line)
            if line.startswith(ready):
                started.set()

    threading.Thread(target=read_output, daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not started.wait(1) and process.poll() is None:
        if time.monotonic() > deadline:
            break
    if not started.is_set():
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"{module} did not start:\n" + "".join(output[-60:]))
    return process


def sms_settings(twilio) -> dict[str, str]:
    """The SMS channel's settings, against the local stand-in for Twilio."""
    return {
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM_NUMBER": twilio.from_number,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "SMS_WEBHOOK_URL": SMS_WEBHOOK_URL,
        "SMS_SENDER_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "SMS_CONTACT_KEY": Fernet.generate_key().decode(),
    }


def bot_files(work: Path, database_url: str) -> dict[str, str]:
    """A bot's own database, conversation store and spool under ``work``."""
    return {
        "BOT_DATABASE_URL": database_url,
        "BOT_TRACKER_DB": str(work / "conversations.db"),
        "BOT_HANDOFF_SPOOL": str(work / "spool.jsonl"),
        "BOT_RUN_STATE": str(work / "run-state.json"),
    }


def own_bot(
    work: Path, webhook, twilio, settings_env: dict[str, str]
) -> Iterator[RunningBot]:
    """A bot of a test module's own, as `make run` starts it, on SQLite files
    under ``work``, with ``settings_env`` on top (a generator for a fixture:
    yields the running bot, then stops it)."""
    database_url = f"sqlite:///{work / 'bot.db'}"
    load_knowledge(engine_for(database_url))
    rasa_port, actions_port, web_port = free_port(), free_port(), free_port()
    sms_env = sms_settings(twilio)
    env = {
        **sms_env,
        **os.environ,
        **bot_files(work, database_url),
        "HANDOFF_WEBHOOK_URL": webhook.url,
        "RASA_PORT": str(rasa_port),
        "ACTIONS_PORT": str(actions_port),
        "WEB_PORT": str(web_port),
        "RASA_PUBLIC_URL": "",
        "WEB_PUBLIC_URL": "",
        **settings_env,
    }
    output: list[str] = []
    process = start_until_ready("bot.run.serve", env, "Bot ready", output)
    yield RunningBot(
        process, f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{actions_port}",
        database_url, work, None, webhook, twilio, sms_env,
        output=output, web_url=f"http://127.0.0.1:{web_port}",
    )  # fmt: skip
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise


def own_bot_fixture(name: str, **settings_env: str):
    """A module-scoped fixture of a bot of the module's own (``own_bot``)."""

    @pytest.fixture(scope="module")
    def running(
        tmp_path_factory, session_webhook, session_twilio_api
    ) -> Iterator[RunningBot]:
        yield from own_bot(
            tmp_path_factory.mktemp(name), session_webhook, session_twilio_api,
            settings_env,
        )  # fmt: skip

    return running


@pytest.fixture(scope="session")
def free_ports():
    """Hands out free local ports (for servers a test starts itself)."""
    return free_port


@pytest.fixture
def sender() -> str:
    """A new conversation id."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def bot(
    tmp_path_factory: pytest.TempPathFactory,
    session_postgres,
    session_webhook,
    session_twilio_api,
) -> Iterator[RunningBot]:
    """The bot as `make run` starts it, its own database on PostgreSQL (so a
    test can take it down) and staff alerts going to a real local webhook."""
    model = training.current_model()
    if not model.exists():
        pytest.fail(f"no trained model at {model}: run `make train` (make test does)")
    work: Path = tmp_path_factory.mktemp("bot")
    database_url = session_postgres.url
    load_knowledge(engine_for(database_url))
    rasa_port, actions_port = free_port(), free_port()
    web_port = free_port()
    sms_env = sms_settings(session_twilio_api)
    env = {
        **sms_env,
        **os.environ,
        **bot_files(work, database_url),
        "HANDOFF_WEBHOOK_URL": session_webhook.url,
        "HANDOFF_RETRY_INTERVAL_S": "1",
        "HANDOFF_RETRY_BASE_S": "1",
        "RASA_PORT": str(rasa_port),
        "ACTIONS_PORT": str(actions_port),
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(web_port),
        "RASA_PUBLIC_URL": "",
        "WEB_PUBLIC_URL": "",
    }
    output: list[str] = []
    process = start_until_ready("bot.run.serve", env, "Bot ready", output)
    running = RunningBot(
        process,
        f"http://127.0.0.1:{rasa_port}",
        f"http://127.0.0.1:{actions_port}",
        database_url,
        work,
        session_postgres,
        session_webhook,
        session_twilio_api,
        sms_env,
        output=output,
        web_url=f"http://127.0.0.1:{web_port}",
    )
    yield running
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
