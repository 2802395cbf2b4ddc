"""Round-trip time of a patient's question on each channel, on the real bot.

Starts the bot as `make run` does (``python -m bot.run.serve``: Rasa server, action
server, chat page) on free ports with its own SQLite files, with the SMS
channel configured against a local stand-in for Twilio's REST API, then asks
the same questions over:

- REST (``/webhooks/rest/webhook``): request to JSON reply;
- socket.io, the widget's protocol (python-socketio client, Engine.IO 4):
  ``user_uttered`` to the last ``bot_uttered``;
- SMS: Twilio's signed webhook to the webhook's answer, by which time every
  reply has been accepted by the Twilio stand-in (sent through its REST API).

Prints the median and 95th percentile per channel (first message of each
conversation excluded: it also carries the welcome).

    .venv/bin/python bench/channels.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
import socketio
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import settings  # noqa: E402
from bot.content.store import load_knowledge  # noqa: E402
from bot.db import engine_for  # noqa: E402
from bot.run import training
from tests.conftest import FakeTwilio  # noqa: E402
from tests.integration.conftest import (  # noqa: E402
    SMS_WEBHOOK_URL,
    bot_files,
    free_port,
    sms_settings,
)

QUESTIONS = [
    "can I donate blood while on accutane?",
    "do I need blood tests every month",
    "how long does a course of isotretinoin last",
    "my lips are so dry what can i use",
    "can i get my eyebrows waxed",
    "what is ipledge",
    "is it ok to go to the gym on accutane",
    "what sunscreen should i wear",
]


def start_bot(
    work: Path, twilio: FakeTwilio, **settings_env: str
) -> tuple[subprocess.Popen, dict]:
    """The bot as `make run` starts it, ``settings_env`` on top."""
    database_url = f"sqlite:///{work / 'bot.db'}"
    load_knowledge(engine_for(database_url))
    env = {
        **os.environ,
        **bot_files(work, database_url),
        **sms_settings(twilio),
        "HANDOFF_WEBHOOK_URL": "",
        "RASA_PORT": str(free_port()),
        # Every message comes from 127.0.0.1, hundreds a minute: no limits.
        "BOT_RATE_PER_SENDER": "0",
        "BOT_RATE_PER_ADDRESS": "0",
        "ACTIONS_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
        **settings_env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.run.serve"],
        cwd=settings.PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in process.stdout:
        if line.startswith("Bot ready"):
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, env
    raise SystemExit("the bot did not start")


def rest_round_trip(rasa: str, sender: str, question: str) -> float:
    start = time.perf_counter()
    response = requests.post(
        f"{rasa}/webhooks/rest/webhook",
        json={"sender": sender, "message": question},
        timeout=60,
    )
    response.raise_for_status()
    return time.perf_counter() - start


def sms_round_trip(rasa: str, env: dict, number: str, question: str) -> float:
    form = {"From": number, "Body": question, "MessageSid": f"SM{uuid.uuid4().hex}"}
    signature = RequestValidator(env["TWILIO_AUTH_TOKEN"]).compute_signature(
        SMS_WEBHOOK_URL, form
    )
    start = time.perf_counter()
    response = requests.post(
        f"{rasa}/webhooks/sms/webhook",
        data=form,
        headers={"X-Twilio-Signature": signature},
        timeout=60,
    )
    response.raise_for_status()
    return time.perf_counter() - start


class SocketChat:
    """The widget's side of socket.io: a session, then questions and answers."""

    def __init__(self, rasa: str, origin: str) -> None:
        self.client = socketio.Client()
        self.answers: list[tuple[float, str]] = []
        self.client.on("bot_uttered", self._answer)
        self.session_id = uuid.uuid4().hex
        self.client.connect(rasa, headers={"Origin": origin})
        self.client.emit("session_request", {"session_id": self.session_id})

    def _answer(self, message: dict) -> None:
        self.answers.append((time.perf_counter(), message.get("text", "")))

    def round_trip(self, question: str, settle_s: float = 0.5) -> float:
        before = len(self.answers)
        start = time.perf_counter()
        self.client.emit(
            "user_uttered",
            {
                "message": question,
                "session_id": self.session_id,
                "customData": {"language": "en"},
            },
        )
        deadline = start + 60
        while time.perf_counter() < deadline:
            time.sleep(0.01)
            if len(self.answers) > before and (
                time.perf_counter() - self.answers[-1][0] > settle_s
            ):
                return self.answers[-1][0] - start
        raise SystemExit(f"no socket.io answer to {question!r}")

    def close(self) -> None:
        self.client.disconnect()


def summary(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return (
        f"{name:10} n={len(ms):3}  median {statistics.median(ms):7.1f} ms  "
        f"p95 {p95:7.1f} ms  max {ms[-1]:7.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = training.current_model()
    if not model.exists():
        raise SystemExit(f"no trained model at {model}: run `make train`")
    twilio = FakeTwilio()
    with tempfile.TemporaryDirectory() as tmp:
        process, env = start_bot(Path(tmp), twilio)
        rasa = f"http://127.0.0.1:{env['RASA_PORT']}"
        origin = f"http://127.0.0.1:{env['WEB_PORT']}"
        times: dict[str, list[float]] = {"REST": [], "socket.io": [], "SMS": []}
        try:
            for round_ in range(args.rounds):
                sender = f"bench-{uuid.uuid4().hex[:8]}"
                number = f"+1402555{round_:04d}"
                chat = SocketChat(rasa, origin)
                for i, question in enumerate(QUESTIONS):
                    rest = rest_round_trip(rasa, sender, question)
                    sock = chat.round_trip(question)
                    sms = sms_round_trip(rasa, env, number, question)
                    if i:  # the first reply also carries the welcome
                        times["REST"].append(rest)
                        times["socket.io"].append(sock)
                        times["SMS"].append(sms)
                chat.close()
        finally:
            process.terminate()
            process.wait(timeout=60)
            twilio.close()
    print(f"model {model.name}; {args.rounds} conversations per channel")
    for name, values in times.items():
        print(summary(name, values))
    print(
        "(socket.io: to the last message of the reply; SMS: to the webhook answer,\n"
        " when every reply message has been accepted by the Twilio stand-in)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
