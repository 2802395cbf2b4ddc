"""The crisis path against the real processes: the three outcomes over REST,
the widget's socket.io channel (limits, and the safe reply when the action
server is slow or down), and SMS with its database failing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
import socketio

from bot import settings
from bot.content.answers import emergency_text, unavailable_text
from bot.content.store import load_knowledge
from bot.db import engine_for
from bot.run import training
from bot.run.serve import child_env, rasa_command
from tests.integration.conftest import (
    RunningBot,
    bot_files,
    free_port,
    sms_settings,
)

pytestmark = pytest.mark.integration

QUESTION = "Are you thinking about ending your life or hurting yourself?"


def handoffs_of(bot, sender):
    return [h for h in bot.handoffs.list() if h.sender_id == sender]


# -- the three outcomes over REST, on the full bot --------------------------


def test_a_possible_risk_gets_the_direct_question_and_yes_makes_it_a_crisis(
    bot, sender
):
    replies = bot.say(sender, "what happens if you overdose on accutane")
    question = next(r for r in replies if QUESTION in r.get("text", ""))
    assert "988" in question["text"]
    assert [b["title"] for b in question["buttons"]] == ["Yes", "No"]
    (handoff,) = handoffs_of(bot, sender)  # stored before the question went out
    assert handoff.level == "concern"
    assert bot.texts(sender, "Yes") == [bot.web_text("crisis")]
    (escalated,) = handoffs_of(bot, sender)
    assert (escalated.id, escalated.level) == (handoff.id, "crisis")
    alerts = bot.wait_for(
        lambda: [
            a for a in bot.webhook.alerts_for(handoff.id) if a["level"] == "crisis"
        ]
    )
    assert alerts


def test_no_to_the_direct_question_returns_to_the_conversation(bot, sender):
    bot.texts(sender, "what happens if you overdose on accutane")
    assert bot.texts(sender, "no") == [
        bot.web_text("safety_answer_no"),
        bot.web_text("mood"),
    ]
    assert [h.level for h in handoffs_of(bot, sender)] == ["concern"]
    assert bot.texts(sender, "can i get my eyebrows waxed") == [bot.web_text("waxing")]


def test_an_informational_question_gets_the_facts_and_the_question_not_sympathy(
    bot, sender
):
    texts = bot.texts(sender, "does isotretinoin cause suicidal thoughts?")
    assert bot.web_text("mood") in texts
    assert any(QUESTION in t for t in texts)
    assert bot.web_text("crisis") not in texts
    assert [h.level for h in handoffs_of(bot, sender)] == ["concern"]


def test_a_crisis_in_spanish_gets_988s_spanish_line(bot, sender):
    texts = bot.texts(sender, "ya no quiero vivir, quiero morir")
    assert texts == [bot.web_text("crisis_es")]
    assert [h.level for h in handoffs_of(bot, sender)] == ["crisis"]


def test_a_mood_disclosure_gets_the_labels_advice_and_a_follow_up(bot, sender):
    texts = bot.texts(sender, "i cry every day since i started")
    assert bot.web_text("mood_disclosure") in texts
    assert bot.web_text("concern_follow_up") in texts
    assert [h.level for h in handoffs_of(bot, sender)] == ["concern"]


@pytest.mark.parametrize(
    "spelled",
    ["i want to  kill\u00a0myself", "i want to k\u200bill myself", "ｋｍｓ",
     "su1c1dal thoughts tonight"],
)  # fmt: skip
def test_a_crisis_is_caught_however_it_is_spelled_or_spaced(bot, sender, spelled):
    assert bot.texts(sender, spelled) == [bot.web_text("crisis")]


# -- socket.io on the full bot ----------------------------------------------


class Widget:
    """The widget's protocol (python-socketio, Engine.IO 4) from the page's
    origin, as rasa-webchat speaks it."""

    def __init__(self, rasa_url: str, origin: str) -> None:
        self.client = socketio.Client(reconnection=False)
        self.replies: list[dict] = []
        self.session_id = uuid.uuid4().hex
        self.client.on("bot_uttered", self.replies.append)
        confirmed = threading.Event()
        self.client.on("session_confirm", lambda *_: confirmed.set())
        self.client.connect(
            rasa_url, headers={"Origin": origin}, transports=["polling"]
        )
        self.client.emit("session_request", {"session_id": self.session_id})
        assert confirmed.wait(10)

    def send(self, data: object, wait_s: float = 10.0, count: int = 1) -> list[dict]:
        before = len(self.replies)
        self.client.emit("user_uttered", data)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and len(self.replies) < before + count:
            time.sleep(0.05)
        time.sleep(0.3)  # a reply may come in several messages
        return self.replies[before:]

    def say(self, text: str, **kwargs) -> list[dict]:
        return self.send({"message": text, "session_id": self.session_id}, **kwargs)

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def widget(bot) -> Iterator[Widget]:
    client = Widget(bot.rasa_url, bot.web_url)
    yield client
    client.close()


def test_the_widget_gets_the_crisis_reply_and_a_handoff(bot, widget):
    replies = widget.say("i want to end my life")
    assert [r["text"] for r in replies] == [bot.web_text("crisis")]
    assert [h.level for h in handoffs_of(bot, widget.session_id)] == ["crisis"]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"message": "x" * 2001}, "longer than 2000"),
        ({"message": ""}, "empty"),
        ({"message": {"text": "hi"}}, "must be text"),
        ("just a string", "must be an object"),
        ({"message": "hi", "customData": "{not json"}, "not valid JSON"),
        ({"message": "hi", "customData": [1, 2]}, "must be an object"),
    ],
)
def test_the_widget_channel_refuses_what_rest_refuses_and_keeps_answering(
    bot, widget, data, says
):
    if isinstance(data, dict):
        data = {"session_id": widget.session_id, **data}
    (error,) = widget.send(data)
    assert says in error["text"]
    answer = widget.say("can I donate blood while on accutane?")
    assert any("blood" in r["text"].lower() for r in answer)


def test_a_socketio_packet_over_64_kb_is_dropped_not_processed(bot, widget):
    # A crisis text that every other check accepts, in a packet made too big
    # by its metadata: only the packet limit can keep it from a handoff.
    packet = {
        "message": "i want to kill myself",
        "session_id": widget.session_id,
        "customData": {"padding": "y" * 70_000},
    }
    widget.send(packet, wait_s=2)
    assert handoffs_of(bot, widget.session_id) == []
    # The server closed that connection; a new one still gets answers.
    fresh = Widget(bot.rasa_url, bot.web_url)
    try:
        assert fresh.say("what is ipledge")
    finally:
        fresh.close()


# -- the Rasa server with an action server that hangs, then is gone --------


class HungActionServer:
    """Accepts connections on a port and never answers, as a stuck action
    server would; ``close`` makes the port refuse connections instead."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = self.socket.getsockname()[1]
        self.held: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.open = False
        self.socket.close()
        for connection in self.held:
            connection.close()


@pytest.fixture(scope="module")
def stranded(tmp_path_factory, session_webhook, session_twilio_api):
    """The Rasa server alone, its action server hung: every channel must
    still answer a crisis with 988 and store its handoff."""
    hung = HungActionServer()
    work = tmp_path_factory.mktemp("stranded")
    database_url = f"sqlite:///{work / 'bot.db'}"
    load_knowledge(engine_for(database_url))
    sms_env = sms_settings(session_twilio_api)
    env = {
        **child_env(),
        **sms_env,
        **bot_files(work, database_url),
        "HANDOFF_WEBHOOK_URL": "",
        "RASA_PORT": str(free_port()),
        "ACTIONS_PORT": str(hung.port),
        "BOT_REPLY_WAIT_S": "3",
        "WEB_PUBLIC_URL": "http://127.0.0.1:8080",
    }
    process = subprocess.Popen(
        rasa_command("run", training.current_model(), env),
        cwd=settings.PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    rasa_url = f"http://127.0.0.1:{env['RASA_PORT']}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, "the Rasa server exited"
        try:
            if requests.get(f"{rasa_url}/webhooks/rest/", timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(1)
    running = RunningBot(
        process, rasa_url, f"http://127.0.0.1:{hung.port}", database_url, work,
        None, session_webhook, session_twilio_api, sms_env,
        web_url="http://127.0.0.1:8080",
    )  # fmt: skip
    running.hung = hung
    yield running
    hung.close()
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_rest_with_a_hung_action_server_answers_a_crisis_within_seconds(
    stranded, sender
):
    texts, took = timed(lambda: stranded.texts(sender, "i want to kill myself"))
    assert texts == [emergency_text()]
    assert took < 5
    assert [h.level for h in handoffs_of(stranded, sender)] == ["crisis"]


def test_the_widget_with_a_hung_action_server_gets_988_and_a_handoff(stranded):
    widget = Widget(stranded.rasa_url, stranded.web_url)
    try:
        replies, took = timed(lambda: widget.say("i want to kill myself"))
        assert [r["text"] for r in replies] == [emergency_text()]
        assert took < 5
        (handoff,) = handoffs_of(stranded, widget.session_id)
        assert (handoff.level, handoff.channel) == ("crisis", "socketio")
        ordinary = widget.say("can i wax", wait_s=8)
        assert [r["text"] for r in ordinary] == [unavailable_text()]
    finally:
        widget.close()


def test_sms_with_a_hung_action_server_texts_988_and_stores_the_handoff(stranded):
    number = "+14025550123"
    response, took = timed(
        lambda: stranded.text_message(number, "i want to die tonight")
    )
    assert response.status_code == 200 and took < 6
    assert stranded.twilio.to(number)[-1] == emergency_text()
    sender_id = stranded.sms_sender_id(number)
    assert [h.level for h in handoffs_of(stranded, sender_id)] == ["crisis"]


def test_with_the_action_server_gone_every_channel_still_answers_a_crisis(stranded):
    stranded.hung.close()  # connection refused from now on
    sender = f"test-{uuid.uuid4().hex[:8]}"
    assert stranded.texts(sender, "i want to end it all") == [emergency_text()]
    widget = Widget(stranded.rasa_url, stranded.web_url)
    try:
        replies = widget.say("kms")
        assert [r["text"] for r in replies] == [emergency_text()]
    finally:
        widget.close()
    assert [h.level for h in handoffs_of(stranded, sender)] == ["crisis"]
    assert [h.level for h in handoffs_of(stranded, widget.session_id)] == ["crisis"]


# -- SMS with the bot's database down ---------------------------------------


def test_a_crisis_by_sms_with_the_database_down_is_answered_and_spooled(bot):
    number = f"+1402555{uuid.uuid4().int % 10_000:04d}"
    sender_id = bot.sms_sender_id(number)
    bot.postgres.go_down()
    try:
        response = bot.text_message(number, "i took all my pills an hour ago")
        assert response.status_code == 200  # never a 500
        texts = bot.wait_for(lambda: bot.twilio.to(number))
        assert "988" in " ".join(texts) and "911" in " ".join(texts)
        assert sender_id in (bot.work / "spool.jsonl").read_text()
    finally:
        bot.postgres.come_back()
    (handoff,) = bot.wait_for(lambda: handoffs_of(bot, sender_id))  # replayed
    assert (handoff.level, handoff.channel) == ("crisis", "sms")


def test_a_hung_database_delays_the_crisis_reply_by_at_most_two_seconds(bot):
    from sqlalchemy import create_engine, text

    first, second = (f"test-{uuid.uuid4().hex[:8]}" for _ in range(2))
    _, usual = timed(lambda: bot.texts(first, "i want to kill myself"))
    locker = create_engine(bot.database_url, future=True)
    with locker.connect() as connection:  # every handoff write now waits
        connection.execute(text("LOCK TABLE handoffs IN ACCESS EXCLUSIVE MODE"))
        texts, took = timed(lambda: bot.texts(second, "i want to kill myself"))
        assert texts == [bot.web_text("crisis")]
        assert took < usual + 2.0 + 1.0  # the 2-second bound, and some slack
        assert second in (bot.work / "spool.jsonl").read_text()
        connection.rollback()
    locker.dispose()
    (handoff,) = bot.wait_for(lambda: handoffs_of(bot, second))
    assert handoff.level == "crisis"


def test_the_direct_question_by_sms_is_numbered_and_1_means_yes(bot):
    number = f"+1402555{uuid.uuid4().int % 10_000:04d}"
    assert bot.text_message(number, "what happens if you overdose on accutane").ok
    asked = " ".join(bot.wait_for(lambda: bot.twilio.to(number)))
    assert "ending your life or hurting yourself" in asked
    assert "Reply 1 for Yes" in asked and "2 for No" in asked and "988" in asked
    sender_id = bot.sms_sender_id(number)
    (handoff,) = handoffs_of(bot, sender_id)
    assert handoff.level == "concern"
    sent = len(bot.twilio.to(number))
    assert bot.text_message(number, "1").ok
    reply = bot.wait_for(lambda: bot.twilio.to(number)[sent:])
    assert reply[0] == bot.sms_text("crisis")
    assert bot.handoffs.get(handoff.id).level == "crisis"
