"""Faults injected into the bot as `make run` runs it (``python -m bot.run.serve``,
its own SQLite files): each server killed in turn is started again, and while
the action server is away patients on every channel get a safe reply within
3 seconds, a crisis with 988, 911 and a stored handoff."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
import uuid

import pytest
import requests

from bot.content.answers import emergency_text, unavailable_text
from tests.integration.conftest import RunningBot, own_bot_fixture
from tests.integration.test_crisis_path import Widget, handoffs_of

pytestmark = pytest.mark.integration

SAFE_REPLY_S = 3.0


# A bot of its own, as `make run` starts it, whose servers the tests kill.
supervised = own_bot_fixture("supervised", HANDOFF_RETRY_INTERVAL_S="1")


def members(bot: RunningBot) -> dict:
    return json.loads((bot.work / "run-state.json").read_text())["members"]


def kill(bot: RunningBot, name: str) -> int:
    """SIGKILL the server ``name``; its old process id."""
    pid = members(bot)[name]["pid"]
    assert pid, f"{name} is not running"
    os.kill(pid, signal.SIGKILL)
    return pid


def started_again(bot: RunningBot, name: str, old_pid: int, timeout_s=30.0) -> int:
    """Wait until the supervisor has started ``name`` again; its new pid."""

    def new_pid():
        member = members(bot)[name]
        return member["pid"] not in (None, old_pid) and member["pid"]

    pid = bot.wait_for(new_pid, timeout_s=timeout_s)
    assert any(f"{name} exited (code -9); starting it again" in line
               for line in bot.output)  # fmt: skip
    return pid


def answers(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def new_sender() -> str:
    return f"fault-{uuid.uuid4().hex[:10]}"


def test_a_killed_action_server_is_started_again_and_no_patient_waits(supervised):
    bot = supervised
    wax = bot.texts(new_sender(), "can i get my eyebrows waxed")
    assert wax and wax != [unavailable_text()]
    old = kill(bot, "actions")
    # At once, before the supervisor has it back: every channel still answers.
    crisis_sender = new_sender()
    texts, took = timed(lambda: bot.texts(crisis_sender, "i want to kill myself"))
    assert texts == [emergency_text()] and took < SAFE_REPLY_S
    number = f"+1402555{uuid.uuid4().int % 10_000:04d}"
    response, took = timed(lambda: bot.text_message(number, "i want to end my life"))
    assert response.status_code == 200 and took < SAFE_REPLY_S
    # By now the action server may be back: its crisis reply or the channel's.
    assert "988" in bot.twilio.to(number)[-1]
    widget = Widget(bot.rasa_url, bot.web_url)
    try:
        replies, took = timed(lambda: widget.say("kms"))
        assert replies and "988" in replies[0]["text"]
        assert took < SAFE_REPLY_S + 0.5  # the widget helper waits 0.3 s more
    finally:
        widget.close()
    for sender in (crisis_sender, bot.sms_sender_id(number), widget.session_id):
        assert "crisis" in [h.level for h in handoffs_of(bot, sender)], sender
    # The action server back: answers from the knowledge base again.
    started_again(bot, "actions", old)
    assert answers(f"{bot.actions_url}/health", 60)
    assert bot.texts(new_sender(), "can i get my eyebrows waxed") == wax
    assert members(bot)["actions"]["restarts"] == 1


def test_an_ordinary_question_with_the_action_server_away_gets_the_clinics_phone(
    supervised,
):
    """Hold the action server away (stopped, then killed: the port refuses)
    long enough to see the safe reply itself, not the restarted server's."""
    bot = supervised
    pid = members(bot)["actions"]["pid"]
    os.kill(pid, signal.SIGSTOP)  # hung: accepts, never answers
    try:
        crisis, took = timed(lambda: bot.texts(new_sender(), "im going to end it"))
        assert crisis == [emergency_text()] and took < SAFE_REPLY_S + 1
    finally:
        os.kill(pid, signal.SIGKILL)  # killed: the port refuses, fast
    texts, took = timed(lambda: bot.texts(new_sender(), "how do i book a visit"))
    # Answered at once: the restarted server, or the clinic's phone before it.
    assert texts and took < SAFE_REPLY_S
    started_again(bot, "actions", pid)
    assert answers(f"{bot.actions_url}/health", 60)


def test_a_killed_chat_page_server_is_started_again(supervised):
    bot = supervised
    old = kill(bot, "web")
    started_again(bot, "web", old)
    assert answers(f"{bot.web_url}/", 60)


def test_a_killed_alerts_worker_is_started_again_and_still_alerts(supervised):
    bot = supervised
    old = kill(bot, "alerts")
    started_again(bot, "alerts", old)
    sender = new_sender()
    assert bot.texts(sender, "i want to die tonight") == [bot.web_text("crisis")]
    (handoff,) = [h for h in handoffs_of(bot, sender) if h.level == "crisis"]
    assert bot.wait_for(lambda: bot.webhook.alerts_for(handoff.id), timeout_s=60)


def test_a_killed_rasa_server_is_started_again_with_its_conversations(supervised):
    bot = supervised
    sender = new_sender()
    bot.texts(sender, "hi")
    tracker_db = bot.work / "conversations.db"

    def events() -> int:
        with sqlite3.connect(tracker_db) as db:
            (count,) = db.execute(
                "SELECT count(*) FROM events WHERE sender_id = ?", (sender,)
            ).fetchone()
        return count

    before = events()
    assert before > 0
    old = kill(bot, "rasa")
    started_again(bot, "rasa", old)
    assert answers(f"{bot.rasa_url}/webhooks/rest/", 300)
    assert bot.texts(sender, "what is isotretinoin") not in ([], [unavailable_text()])
    assert events() > before  # the same conversation, carried on
    assert members(bot)["rasa"]["restarts"] == 1


def test_no_log_line_holds_a_message_a_number_or_a_tracker(supervised):
    """Last here: a conversation on every channel, with "/" commands and with
    the action server failing; then every process's log (this bot's output,
    at Rasa's default INFO level) is read."""
    bot = supervised
    widget_sent = ["my widget secret about isotretinoin", "kms i mean it tonight"]
    number = "+14025550199"
    commands = ['/ask_waxing{"facet": "my secret entity value"}', "/restart please now"]
    sender = new_sender()
    for text in ["hello there, what is isotretinoin?", *commands]:
        bot.say(sender, text)
    widget = Widget(bot.rasa_url, bot.web_url)
    try:
        for text in widget_sent:
            widget.say(text)
        pid = members(bot)["actions"]["pid"]
        os.kill(pid, signal.SIGSTOP)  # failing actions: timed out ...
        try:
            bot.say(sender, "i am going to end my life tonight, failing")
            widget.say("my widget secret while actions hang")
            widget_sent.append("my widget secret while actions hang")
        finally:
            os.kill(pid, signal.SIGKILL)  # ... then refused
        bot.say(sender, "how long is a course of accutane, refused")
        bot.text_message(number, "my sms secret question about sunburn")
        started_again(bot, "actions", pid)
    finally:
        widget.close()
    bot.text_message(number, "another sms secret about lips")
    log = "".join(bot.output)
    assert "Failed to run custom action" in log  # the failures were logged
    sent = [m for m in (*bot.sent, *widget_sent) if len(m) > 12]
    assert [m for m in sent if m in log] == []
    assert "my secret entity value" not in log
    assert number not in log and number[2:] not in log
    for tracker_part in ('"event": "user"', '"parse_data"', "latest_message"):
        assert tracker_part not in log
