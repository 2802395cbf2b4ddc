"""`make cluster` for real: two Rasa servers and two action servers behind
nginx, on the real PostgreSQL and Redis (``python -m bot.run.cluster``).

Nothing is lost: 50 conversations of 20 messages sent at once, each
conversation's messages alternating between the two Rasa servers, leave every
user message and every reply in the conversation store, in order, and one
crisis handoff for each crisis message; a Rasa server killed in the middle of
a run costs no accepted message, and the conversations go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from bot.content.answers import emergency_text
from bot.db import engine_for
from bot.run import services, training
from tests.integration.conftest import free_port, start_until_ready
from tests.integration.test_crisis_path import Widget

# Plain questions, no mood words: only the crisis message may make a handoff.
QUESTIONS = [
    "hi", "what is isotretinoin?", "how does it work", "do I need blood tests",
    "can I wax my eyebrows", "what about sunscreen", "my lips are so dry",
    "can i work out on it", "can I donate blood", "what is ipledge",
    "do I need birth control", "what happens at the first appointment",
    "what other treatments are there", "where is the clinic",
    "how do i book an appointment", "can i get laser hair removal",
    "what causes acne", "thanks", "how long is the treatment", "bye",
]  # fmt: skip
CRISIS = "i want to kill myself"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from tests.conftest import PostgresDatabase

    if not training.current_model().exists():
        pytest.fail("no trained model: run `make train` (make test does)")
    database = PostgresDatabase(f"bot_cluster_{uuid.uuid4().hex[:10]}")
    database.execute(f'CREATE DATABASE "{database.name}"')
    work = tmp_path_factory.mktemp("cluster")
    env = {
        **os.environ,
        "BOT_DATABASE_URL": database.url,
        "REDIS_URL": services.redis_url(),
        "LB_PORT": str(free_port()),
        "BOT_CLUSTER_DIR": str(work / "cluster"),
        "BOT_HANDOFF_SPOOL": str(work / "spool.jsonl"),
    }
    output: list[str] = []
    process = None
    try:
        process = start_until_ready("bot.run.cluster", env, "Cluster ready", output)
        yield Cluster(work / "cluster", database, output)
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        engine_for(database.url).dispose()
        database.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        database.admin.dispose()


class Cluster:
    def __init__(self, work: Path, database, output: list[str]) -> None:
        self.work = work
        self.database = database
        self.output = output

    @property
    def state(self) -> dict:
        return json.loads((self.work / "state.json").read_text())

    @property
    def lb_url(self) -> str:
        return self.state["lb_url"]

    def rasa_urls(self) -> list[str]:
        members = self.state["members"]
        return [members[name]["url"] for name in sorted(members) if "rasa" in name]

    def stored(self, sender: str) -> list[tuple[str, str | None]]:
        """The conversation's user and bot events, in the store's order."""
        with engine_for(self.database.url).connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT type_name, data FROM events WHERE sender_id = :sender "
                    "AND type_name IN ('user', 'bot') ORDER BY id"
                ),
                {"sender": sender},
            ).all()
        return [(kind, json.loads(data).get("text")) for kind, data in rows]

    def handoff_levels(self) -> dict[str, list[str]]:
        with engine_for(self.database.url).connect() as connection:
            rows = connection.execute(
                text("SELECT sender_id, level FROM handoffs")
            ).all()
        levels = defaultdict(list)
        for sender, level in rows:
            levels[sender].append(level)
        return levels


def post(url: str, sender: str, message: str) -> list[str]:
    response = requests.post(
        f"{url}/webhooks/rest/webhook",
        json={"sender": sender, "message": message},
        timeout=120,
    )
    response.raise_for_status()
    return [m.get("text") for m in response.json()]


def segments(stored: list[tuple[str, str | None]]) -> list[tuple[str, list]]:
    """The stored conversation as (user message, the bot's replies to it)."""
    result: list[tuple[str, list]] = []
    for kind, said in stored:
        if kind == "user":
            result.append((said, []))
        else:
            assert result, "a bot reply stored before any message"
            result[-1][1].append(said)
    return result


def assert_kept(stored, sent: list[str], replies: list[list[str]]) -> None:
    """Each message stored once, in order, followed by exactly the replies the
    client received. One exception: when the bot took longer than
    BOT_CRISIS_REPLY_WAIT_S (3 s) on a crisis, the channel itself sent 988
    and 911 (bot/channels/guard.py) and the bot's own crisis reply, stored,
    came too late to be sent."""
    kept = segments(stored)
    assert [message for message, _ in kept] == sent
    for (message, stored_replies), received in zip(kept, replies, strict=True):
        if received == [emergency_text()]:
            assert any("988" in (reply or "") for reply in stored_replies), message
        else:
            assert stored_replies == received, message


def test_the_load_balancer_serves_the_page_rest_and_sticky_socketio(cluster):
    page = requests.get(f"{cluster.lb_url}/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert post(cluster.lb_url, f"lb-{uuid.uuid4().hex[:8]}", "can I donate blood")
    # Polling is many HTTP requests: they must all reach the server that holds
    # the socket.io session (the cookie nginx sets).
    widget = Widget(cluster.lb_url, cluster.lb_url)
    try:
        for _ in range(3):
            replies = widget.say("can I donate blood while on accutane?")
            assert any("blood" in r.get("text", "").lower() for r in replies)
    finally:
        widget.close()


def test_50_conversations_alternating_between_servers_lose_nothing(cluster):
    servers = cluster.rasa_urls()
    assert len(servers) == 2
    conversations = {}
    for index in range(50):
        messages = list(QUESTIONS)
        if index % 5 == 0:  # ten conversations have a crisis in the middle
            messages[10] = CRISIS
        conversations[f"cluster-{index}-{uuid.uuid4().hex[:8]}"] = messages

    def converse(sender: str) -> list[list[str]]:
        return [
            post(servers[turn % 2], sender, message)
            for turn, message in enumerate(conversations[sender])
        ]

    with ThreadPoolExecutor(len(conversations)) as pool:
        replies = dict(
            zip(conversations, pool.map(converse, conversations), strict=True)
        )

    levels = cluster.handoff_levels()
    for sender, messages in conversations.items():
        assert all(replies[sender]), f"a message of {sender} got no reply"
        assert_kept(cluster.stored(sender), messages, replies[sender])
        expected = ["crisis"] if CRISIS in messages else []
        assert levels.get(sender, []) == expected, sender


def test_two_messages_at_once_on_two_servers_are_both_kept_whole(cluster):
    """The race Rasa's own RedisLockStore loses (rasa#9213): one conversation,
    rounds of two messages sent at the same moment, one to each server. Each
    message is stored once, followed by exactly its own replies."""
    servers = cluster.rasa_urls()
    senders = [f"pair-{i}-{uuid.uuid4().hex[:8]}" for i in range(10)]

    def converse(sender: str) -> dict[str, list[str]]:
        replies = {}
        with ThreadPoolExecutor(2) as pair:
            for first, second in zip(QUESTIONS[0::2], QUESTIONS[1::2], strict=True):
                both = [pair.submit(post, servers[i], sender, message)
                        for i, message in enumerate((first, second))]  # fmt: skip
                replies[first], replies[second] = (f.result() for f in both)
        return replies

    with ThreadPoolExecutor(len(senders)) as pool:
        results = dict(zip(senders, pool.map(converse, senders), strict=True))
    for sender, replies in results.items():
        stored = cluster.stored(sender)
        said = [message for kind, message in stored if kind == "user"]
        assert sorted(said) == sorted(QUESTIONS), sender
        assert_kept(stored, said, [replies[message] for message in said])


def test_a_killed_rasa_server_loses_no_accepted_message(cluster):
    """Messages go through the load balancer; one Rasa server is killed after
    a few rounds. A message that failed (its server died under it) is sent
    again, as the widget and Twilio do; every accepted one is stored once, in
    order, and every conversation finishes. The cluster starts the dead
    server again."""
    victim = "rasa-1"
    pid = cluster.state["members"][victim]["pid"]
    senders = [f"kill-{i}-{uuid.uuid4().hex[:8]}" for i in range(10)]
    messages = QUESTIONS[:10]
    sent_rounds = {sender: 0 for sender in senders}
    retried = defaultdict(int)

    def converse(sender: str) -> list[list[str]]:
        replies = []
        for message in messages:
            for _attempt in range(10):
                try:
                    replies.append(post(cluster.lb_url, sender, message))
                    break
                except requests.RequestException:
                    retried[sender] += 1
                    time.sleep(1)
            else:
                raise AssertionError(f"{sender}: not accepted after 10 tries")
            sent_rounds[sender] += 1
        return replies

    with ThreadPoolExecutor(len(senders)) as pool:
        futures = {sender: pool.submit(converse, sender) for sender in senders}
        deadline = time.monotonic() + 60
        while min(sent_rounds.values()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        at_kill = dict(sent_rounds)
        replies = {sender: future.result() for sender, future in futures.items()}

    # The server died in the middle of every conversation, not after them.
    assert all(3 <= rounds < len(messages) for rounds in at_kill.values()), at_kill

    for sender in senders:
        assert len(replies[sender]) == len(messages) and all(replies[sender])
        stored = cluster.stored(sender)
        said = [text for kind, text in stored if kind == "user"]
        if not retried[sender]:
            assert_kept(stored, messages, replies[sender])
        else:
            # A message whose server died after storing it, before answering,
            # may be stored twice (sent again); none is missing or reordered.
            deduplicated = [m for i, m in enumerate(said) if i == 0 or m != said[i - 1]]
            assert deduplicated == messages
    restarted = RunningCheck(cluster, victim)
    assert restarted.wait(), "the cluster did not start the killed server again"


class RunningCheck:
    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster, self.name = cluster, name

    def wait(self, timeout_s: float = 30) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.cluster.state["members"][self.name]["restarts"] >= 1:
                return True
            time.sleep(0.5)
        return False
