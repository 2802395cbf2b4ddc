"""Forget me and the retention period on the real bot: a patient asks on each
channel (REST, the widget's socket.io, SMS), confirms, and the databases are
read afterwards; staff forget by sender id; ``python -m bot.privacy purge``."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import select

from bot import settings
from bot.channels.sms.store import SmsContactRow, SmsMessageRow
from bot.db import engine_for
from bot.safety.handoffs import ERASED
from tests.integration.test_crisis_path import Widget, handoffs_of

pytestmark = pytest.mark.integration


def stored_events(bot, sender: str) -> int:
    with sqlite3.connect(bot.work / "conversations.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM events WHERE sender_id = ?", (sender,)
        ).fetchone()
    return count


def sms_rows(bot, sender: str) -> tuple[int, int]:
    engine = engine_for(bot.database_url)
    with engine.connect() as connection:
        return tuple(
            len(connection.execute(select(row).where(row.sender_id == sender)).all())
            for row in (SmsContactRow, SmsMessageRow)
        )


def test_forget_me_by_rest_deletes_the_conversation_after_a_yes(bot, sender):
    bot.texts(sender, "i have been feeling really down and crying a lot")
    (concern,) = handoffs_of(bot, sender)
    asked = bot.say(sender, "please delete my conversation")
    assert asked[-1]["text"] == bot.web_text("forget_request")
    assert [b["title"] for b in asked[-1]["buttons"]] == ["Yes", "No"]
    assert stored_events(bot, sender) > 0  # nothing deleted before the yes
    assert bot.texts(sender, "Yes") == [bot.web_text("forget_done")]
    assert stored_events(bot, sender) == 0
    (kept,) = handoffs_of(bot, sender)
    assert (kept.id, kept.level, kept.message) == (concern.id, "concern", ERASED)
    # The next message starts a new conversation.
    assert bot.texts(sender, "hi")[0] == bot.web_text("welcome")


def test_no_keeps_the_conversation(bot, sender):
    bot.texts(sender, "can i wax my eyebrows")
    bot.texts(sender, "forget me")
    assert bot.texts(sender, "no") == [bot.web_text("forget_kept")]
    assert stored_events(bot, sender) > 0


def test_forget_me_in_the_widget(bot):
    widget = Widget(bot.rasa_url, bot.web_url)
    try:
        widget.say("what is isotretinoin")
        asked = widget.say("can you delete this chat")
        assert asked[-1]["text"] == bot.web_text("forget_request")
        assert stored_events(bot, widget.session_id) > 0
        done = widget.say("Yes")
        assert [r["text"] for r in done] == [bot.web_text("forget_done")]
    finally:
        widget.close()
    assert stored_events(bot, widget.session_id) == 0


def test_forget_me_by_sms_deletes_the_number_too(bot):
    number = f"+1402555{uuid.uuid4().int % 10_000:04d}"
    sender = bot.sms_sender_id(number)
    bot.text_message(number, "does accutane make you sunburn")
    assert sms_rows(bot, sender) == (1, 1)
    bot.text_message(number, "delete my texts")
    assert bot.twilio.to(number)[-1].startswith(bot.sms_text("forget_request"))
    bot.text_message(number, "1")  # the numbered menu: 1 is Yes
    assert bot.twilio.to(number)[-1] == bot.sms_text("forget_done")
    assert stored_events(bot, sender) == 0
    assert sms_rows(bot, sender) == (0, 0)


def test_staff_forget_a_conversation_by_its_id(bot, sender):
    bot.texts(sender, "i feel so anxious since starting this")
    output = bot.staff("forget", sender)
    assert "1 conversation(s)" in output and "1 handoff message(s) erased" in output
    assert stored_events(bot, sender) == 0
    assert [h.message for h in handoffs_of(bot, sender)] == [ERASED]


def test_purge_deletes_conversations_older_than_the_retention(bot, sender):
    old, recent = f"{sender}-old", f"{sender}-recent"
    bot.texts(old, "i feel low all the time")
    bot.texts(recent, "can i drink alcohol")
    long_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31)).timestamp()
    with sqlite3.connect(bot.work / "conversations.db") as db:
        db.execute("UPDATE events SET timestamp = ? WHERE sender_id = ?",
                   (long_ago, old))  # fmt: skip
    purged = subprocess.run(
        [sys.executable, "-m", "bot.privacy", "purge"],
        cwd=settings.PROJECT_ROOT, env={**bot.env, "BOT_RETENTION_DAYS": "30"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert purged.returncode == 0, purged.stderr
    assert "older than 30 days" in purged.stdout
    assert stored_events(bot, old) == 0 and stored_events(bot, recent) > 0
