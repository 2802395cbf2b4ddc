"""The production profile's stores going away and coming back, for real.

A bot as `python -m bot.run.serve` starts it with BOT_PROFILE=production
reaches the machine's PostgreSQL and Redis through TCP forwarders of this
module's own (tcp_forwarder.py): killing a forwarder takes the store away from
this bot only, SIGSTOP makes it hang, starting it again on the same port
brings it back. Each test checks what patients got meanwhile, what the log
and the health check said, and that the bot recovered without a restart.
Rasa's HTTP API, which this bot has on with a token, is checked here too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import text

from bot.content.clinic import load_clinic
from bot.content.store import load_knowledge
from bot.db import engine_for
from bot.run import services, training
from tests.integration.conftest import RunningBot, free_port, start_until_ready

FORWARDER = Path(__file__).with_name("tcp_forwarder.py")
API_TOKEN = "outage-test-" + uuid.uuid4().hex
SUN = "how do i protect my skin from the sun on this medicine?"


class Forwarder:
    """One store's forwarder; ``down`` / ``up`` / ``hang`` / ``resume``."""

    def __init__(self, target: str) -> None:
        host, target_port = target.rsplit(":", 1)
        self.command = [sys.executable, str(FORWARDER), "", host, target_port]
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.up()

    def up(self) -> None:
        self.command[2] = str(self.port)
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "forwarding"

    def down(self) -> None:
        self.process.kill()
        self.process.wait()

    def hang(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture(scope="module")
def outage_bot(tmp_path_factory):
    from tests.conftest import PostgresDatabase

    model = training.current_model()
    if not model.exists():
        pytest.fail(f"no trained model at {model}: run `make train` (make test does)")
    database = PostgresDatabase(f"bot_outage_{uuid.uuid4().hex[:10]}")
    database.execute(f'CREATE DATABASE "{database.name}"')
    redis_url = urlsplit(services.redis_url())
    postgres_url = urlsplit(database.url)
    postgres = Forwarder(f"{postgres_url.hostname}:{postgres_url.port or 5432}")
    redis_ = Forwarder(f"{redis_url.hostname}:{redis_url.port or 6379}")
    through_forwarder = database.url.replace(
        f"@{postgres_url.hostname}:{postgres_url.port or 5432}/",
        f"@127.0.0.1:{postgres.port}/",
    )
    assert through_forwarder != database.url
    work = tmp_path_factory.mktemp("outages")
    rasa_port = free_port()
    env = {
        **os.environ,
        "BOT_PROFILE": "production",
        "BOT_DATABASE_URL": through_forwarder,
        "REDIS_URL": f"redis://127.0.0.1:{redis_.port}{redis_url.path or '/0'}",
        "BOT_HANDOFF_SPOOL": str(work / "spool.jsonl"),
        "BOT_RUN_STATE": str(work / "run-state.json"),
        "BOT_DEPENDENCY_CHECK_S": "1",
        # An ordinary message stuck on a hung store gets the clinic's phone
        # after this long (30 s in service).
        "BOT_REPLY_WAIT_S": "6",
        "HANDOFF_WEBHOOK_URL": "",
        "HANDOFF_RETRY_INTERVAL_S": "1",
        "RASA_API_TOKEN": API_TOKEN,
        "RASA_PORT": str(rasa_port),
        "ACTIONS_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
    }
    load_knowledge(engine_for(database.url))
    output: list[str] = []
    process = start_until_ready("bot.run.serve", env, "Bot ready", output)
    try:
        yield {
            "url": f"http://127.0.0.1:{rasa_port}",
            "database": database,
            "postgres": postgres,
            "redis": redis_,
            "work": work,
            "output": output,
            "process": process,
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for forwarder in (postgres, redis_):
            forwarder.resume()
            forwarder.down()
        engine_for(database.url).dispose()
        database.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        database.admin.dispose()


def say(bot, sender: str, message: str) -> tuple[list[str], float]:
    started = time.monotonic()
    response = requests.post(
        f"{bot['url']}/webhooks/rest/webhook",
        json={"sender": sender, "message": message},
        timeout=60,
    )
    response.raise_for_status()
    return [m.get("text", "") for m in response.json()], time.monotonic() - started


def health(bot) -> tuple[int, dict]:
    response = requests.get(f"{bot['url']}/webhooks/rest/health", timeout=10)
    return response.status_code, response.json()


def wait_for_health(bot, expected_status: int) -> dict:
    """The health check's body once it answers ``expected_status``."""
    answer = RunningBot.wait_for(
        lambda: (answer := health(bot))[0] == expected_status and answer
    )
    return answer[1]


def rasa_restarts(bot) -> int:
    state = json.loads((bot["work"] / "run-state.json").read_text())
    return state["members"]["rasa"]["restarts"]


def log_since(bot, start: int) -> str:
    return "".join(bot["output"][start:])


def wait_for_log(bot, start: int, words: str) -> None:
    RunningBot.wait_for(lambda: words in log_since(bot, start))


def user_messages(bot, sender: str) -> list[str]:
    with engine_for(bot["database"].url).connect() as connection:
        rows = connection.execute(
            text("SELECT data FROM events WHERE sender_id = :sender "
                 "AND type_name = 'user' ORDER BY id"),
            {"sender": sender},
        ).scalars()  # fmt: skip
        return [json.loads(row)["text"] for row in rows]


def handoff_levels(bot, sender: str) -> list[str]:
    with engine_for(bot["database"].url).connect() as connection:
        return list(
            connection.execute(
                text("SELECT level FROM handoffs WHERE sender_id = :sender"),
                {"sender": sender},
            ).scalars()
        )


def test_with_every_store_up_the_health_check_says_ok(outage_bot):
    status, body = health(outage_bot)
    assert status == 200, body
    assert body == {
        "status": "ok", "conversation_store": "ok", "lock_store": "ok",
        "database": "ok",
    }  # fmt: skip


def test_rasa_http_api_answers_only_with_its_token(outage_bot):
    url = f"{outage_bot['url']}/status"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"token": "x" * 40}, timeout=10).status_code == 401
    answer = requests.get(url, params={"token": API_TOKEN}, timeout=10)
    assert answer.status_code == 200 and answer.json()["model_file"]
    # The token is not in anything the bot logged.
    assert API_TOKEN not in "".join(outage_bot["output"])


def test_rasa_http_api_is_off_without_a_token(bot):
    assert requests.get(f"{bot.rasa_url}/status", timeout=10).status_code == 404
    assert requests.get(f"{bot.rasa_url}/version", timeout=10).status_code == 404


def test_redis_down_patients_still_get_answers_and_it_recovers_by_itself(
    outage_bot,
):
    bot = outage_bot
    before, _ = say(bot, f"out-{uuid.uuid4().hex[:8]}", SUN)
    start = len(bot["output"])
    bot["redis"].down()
    try:
        body = wait_for_health(bot, 503)
        assert body["lock_store"] != "ok" and body["conversation_store"] == "ok"
        sender = f"out-{uuid.uuid4().hex[:8]}"
        replies, took = say(bot, sender, SUN)
        # The full answer, not the safe reply: the lock is this replica's own.
        assert replies == before and took < 5
        crisis, took = say(bot, sender, "i am going to kill myself tonight")
        assert any("988" in r for r in crisis) and took < 5
        assert handoff_levels(bot, sender) == ["crisis"]
        assert user_messages(bot, sender) == [SUN, "i am going to kill myself tonight"]
        wait_for_log(bot, start, "the lock store is not answering")
    finally:
        bot["redis"].up()
    wait_for_health(bot, 200)
    wait_for_log(bot, start, "the lock store answers again")
    sender = f"out-{uuid.uuid4().hex[:8]}"
    assert say(bot, sender, SUN)[0] == before
    assert rasa_restarts(bot) == 0


def test_postgresql_down_a_crisis_gets_988_and_its_handoff_is_replayed(
    outage_bot,
):
    bot = outage_bot
    before, _ = say(bot, f"out-{uuid.uuid4().hex[:8]}", SUN)
    start = len(bot["output"])
    bot["postgres"].down()
    crisis_sender = f"out-{uuid.uuid4().hex[:8]}"
    try:
        body = wait_for_health(bot, 503)
        assert body["conversation_store"] != "ok" and body["database"] != "ok"
        assert body["lock_store"] == "ok"
        # Rasa's fail-safe store answers from a fresh conversation in memory
        # (the welcome, then the answer); the action server from its copy of
        # the knowledge base.
        replies, took = say(bot, f"out-{uuid.uuid4().hex[:8]}", SUN)
        assert replies[-1] == before[-1] and took < 10
        replies, took = say(bot, crisis_sender, "i took all my pills, i want to die")
        assert "988" in replies[0] and "911" in replies[0] and took < 10
        spool = (bot["work"] / "spool.jsonl").read_text()
        assert crisis_sender in spool
        wait_for_log(bot, start, "the conversation store is not answering")
    finally:
        bot["postgres"].up()
    wait_for_health(bot, 200)
    wait_for_log(bot, start, "the conversation store answers again")
    # The alerts worker replays the spool into the database, once.
    RunningBot.wait_for(lambda: handoff_levels(bot, crisis_sender) == ["crisis"])
    sender = f"out-{uuid.uuid4().hex[:8]}"
    assert say(bot, sender, SUN)[0] == before
    assert user_messages(bot, sender) == [SUN]
    assert rasa_restarts(bot) == 0


def test_postgresql_hung_a_crisis_still_gets_988_within_seconds(outage_bot):
    bot = outage_bot
    clinic = load_clinic()
    before, _ = say(bot, f"out-{uuid.uuid4().hex[:8]}", SUN)
    bot["postgres"].hang()
    crisis_sender = f"out-{uuid.uuid4().hex[:8]}"
    try:
        body = wait_for_health(bot, 503)
        assert body["conversation_store"].startswith("no answer within")
        replies, took = say(bot, crisis_sender, "i want to end my life")
        # 3 s for the bot, at most 2 s for the database, then the spool.
        assert "988" in replies[0] and took < 6.5
        assert crisis_sender in (bot["work"] / "spool.jsonl").read_text()
        replies, took = say(bot, f"out-{uuid.uuid4().hex[:8]}", SUN)
        assert len(replies) == 1 and clinic.phone in replies[0] and took < 10
    finally:
        bot["postgres"].resume()
    wait_for_health(bot, 200)
    RunningBot.wait_for(lambda: handoff_levels(bot, crisis_sender) == ["crisis"])
    assert say(bot, f"out-{uuid.uuid4().hex[:8]}", SUN)[0] == before
    assert rasa_restarts(bot) == 0


def test_no_outage_put_a_patients_words_in_the_log(outage_bot):
    log = "".join(outage_bot["output"])
    for words in ("kill myself tonight", "took all my pills", "end my life",
                  "protect my skin"):  # fmt: skip
        assert words not in log
