"""The SMS channel end to end: Twilio's signed webhook into the real Rasa
server and action server, replies out through a real local HTTP server
standing in for Twilio's REST API."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import uuid

import pytest

from bot.channels.sms.format import MAX_PARTS, PART_CHARS

pytestmark = pytest.mark.integration


@pytest.fixture
def number() -> str:
    """A new patient's phone number (555-01xx numbers reach nobody)."""
    return f"+1402{random.randint(2000000, 9999999)}"


def sent(bot, number: str) -> list[str]:
    return bot.twilio.to(number)


def text(bot, number: str, body: str, **kwargs) -> list[str]:
    """Text the bot; the new messages it sent back, in order."""
    before = len(sent(bot, number))
    response = bot.text_message(number, body, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/xml")
    assert "<Response></Response>" in response.text  # replies go by REST
    return sent(bot, number)[before:]


def words(text: str) -> str:
    return " ".join(text.split())


def tracker_senders(bot) -> set[str]:
    with sqlite3.connect(bot.work / "conversations.db") as db:
        return {row[0] for row in db.execute("SELECT DISTINCT sender_id FROM events")}


def test_a_question_by_text_gets_the_knowledge_base_sms_text(bot, number):
    replies = text(bot, number, "can I donate blood while on accutane?")
    assert words(" ".join(replies)) == words(
        bot.sms_text("welcome") + " " + bot.sms_text("blood_donation")
    )
    assert all(len(part) <= PART_CHARS for part in replies)
    assert bot.sms_sender_id(number) in tracker_senders(bot)


def test_a_missing_or_wrong_signature_is_refused_and_touches_nothing(bot, number):
    for signature in ("", "d3Jvbmcgc2lnbmF0dXJl"):
        response = bot.text_message(number, "hello", signature=signature)
        assert response.status_code == 403
    forged = bot.text_message(number, "hello", extra={"Body": "hello"}, signature="x")
    assert forged.status_code == 403
    assert sent(bot, number) == []
    assert bot.sms_sender_id(number) not in tracker_senders(bot)


def test_a_signature_for_other_fields_is_refused(bot, number):
    from twilio.request_validator import RequestValidator

    from tests.integration.conftest import SMS_WEBHOOK_URL

    signed_for = {"From": number, "Body": "hello", "MessageSid": "SM1"}
    signature = RequestValidator(bot.sms_env["TWILIO_AUTH_TOKEN"]).compute_signature(
        SMS_WEBHOOK_URL, signed_for
    )
    response = bot.text_message(number, "i want to stop", signature=signature)
    assert response.status_code == 403
    assert sent(bot, number) == []


def test_bad_requests_get_a_clear_error_not_a_crash(bot, number):
    import requests

    no_body = bot.text_message(number, None)
    assert no_body.status_code == 400 and "Body" in no_body.json()["error"]
    url = f"{bot.rasa_url}/webhooks/sms/webhook"
    binary = requests.post(url, data=b"\xff\xfe\x00garbage", timeout=30)
    assert binary.status_code == 400
    huge = requests.post(url, data=b"Body=" + b"a" * 70_000, timeout=30)
    assert huge.status_code == 413
    assert sent(bot, number) == []
    # and the channel still works
    assert text(bot, number, "what is isotretinoin")


def test_a_picture_without_text_gets_the_topics_not_an_error(bot, number):
    replies = text(bot, number, "", extra={"NumMedia": "1"})
    reply = "\n".join(replies)
    assert words(bot.sms_text("fallback")) in words(reply)
    assert "Reply 1 for" in reply
    assert bot.sms_sender_id(number) not in tracker_senders(bot)


def test_a_retried_webhook_is_answered_once(bot, number):
    sid = f"SM{uuid.uuid4().hex}"
    first = text(
        bot, number, "does accutane make you sensitive to the sun", message_sid=sid
    )
    assert first
    assert (
        text(
            bot, number, "does accutane make you sensitive to the sun", message_sid=sid
        )
        == []
    )
    # two deliveries at the same moment: still one answer
    sid = f"SM{uuid.uuid4().hex}"
    before = len(sent(bot, number))
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                bot.text_message(number, "can i get waxed", message_sid=sid)
            )
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [200, 200]
    assert sent(bot, number)[before:] == [bot.sms_text("waxing")]


def test_buttons_become_a_numbered_list_and_a_number_picks_one(bot, number):
    text(bot, number, "hello")
    replies = text(bot, number, "help")  # the keyword: clinic, phone, STOP, topics
    reply = "\n".join(replies)
    assert words(bot.sms_text("sms_help")) in words(reply)
    assert "Reply STOP to opt out" in reply
    assert "Reply 1 for What isotretinoin is" in reply
    assert "/ask_" not in reply and "payload" not in reply
    assert text(bot, number, "1") == [bot.sms_text("what_is")]
    # the menu is gone once a reply without buttons was sent
    assert text(bot, number, "1") != [bot.sms_text("what_is")]


def test_a_long_first_reply_is_cut_into_at_most_three_messages_in_order(bot, number):
    replies = text(bot, number, "qwzx blorf vrrm")  # the fallback and its menu
    assert 1 < len(replies) <= MAX_PARTS
    assert all(len(part) <= PART_CHARS for part in replies)
    assert replies[0].startswith(bot.sms_text("welcome")[:40])
    assert words(bot.sms_text("fallback")) in words(" ".join(replies))
    assert replies[-1].splitlines()[-1].startswith("Reply ")  # the menu comes last
    menu = [
        line for r in replies for line in r.splitlines() if line.startswith("Reply")
    ]
    assert [int(line.split()[1]) for line in menu] == list(range(1, len(menu) + 1))
    assert len(menu) >= 5
    assert not any("/ask_" in part for part in replies)


def test_stop_is_confirmed_once_and_nothing_is_sent_after_until_start(bot, number):
    text(bot, number, "hi")
    assert text(bot, number, "STOP") == [bot.sms_text("sms_opted_out")]
    assert text(bot, number, "stop") == []
    assert text(bot, number, "what is isotretinoin") == []
    assert text(bot, number, "help") == []
    assert text(bot, number, "Start") == [bot.sms_text("sms_opted_in")]
    assert text(bot, number, "can i go tanning") == [bot.sms_text("sun_protection")]


@pytest.mark.parametrize("word", ["UNSUBSCRIBE", "cancel", "End", "quit", "STOPALL"])
def test_every_opt_out_word_opts_out_and_yes_opts_back_in(bot, number, word):
    assert text(bot, number, word) == [bot.sms_text("sms_opted_out")]
    assert text(bot, number, "what is accutane") == []
    assert text(bot, number, "YES") == [bot.sms_text("sms_opted_in")]


def test_yes_from_a_subscribed_number_is_an_ordinary_answer(bot, number):
    replies = text(bot, number, "yes")
    assert replies and bot.sms_text("sms_opted_in") not in replies


def test_a_crisis_from_an_opted_out_number_still_reaches_staff(bot, number):
    text(bot, number, "STOP")
    assert text(bot, number, "i want to end my life") == []
    sender_id = bot.sms_sender_id(number)
    (handoff,) = [h for h in bot.handoffs.list() if h.sender_id == sender_id]
    assert (handoff.level, handoff.channel) == ("crisis", "sms")
    shown = bot.staff("show", handoff.id)
    assert f"call back: {number[1:]}" in shown.replace("+", "")


def test_a_crisis_by_text_gets_988_and_911_first_and_staff_can_call_back(bot, number):
    replies = text(bot, number, "i keep thinking about killing myself")
    assert replies[0].startswith(bot.sms_text("crisis")[:60])
    assert "988" in replies[0] and "911" in replies[0]
    sender_id = bot.sms_sender_id(number)
    (handoff,) = [h for h in bot.handoffs.list() if h.sender_id == sender_id]
    assert (handoff.level, handoff.channel) == ("crisis", "sms")
    shown = json.loads(bot.staff("show", handoff.id, "--json"))
    assert shown["call_back"] == number
    without_key = bot.staff("show", handoff.id, env={"SMS_CONTACT_KEY": ""})
    assert number not in without_key and "encrypted" in without_key


def test_a_failed_send_to_twilio_is_retried(bot, number):
    requests_before = bot.twilio.requests
    bot.twilio.fail_next = 1
    replies = text(bot, number, "can i work out on accutane")
    assert words(" ".join(replies)) == words(
        bot.sms_text("welcome") + " " + bot.sms_text("exercise")
    )
    assert bot.twilio.requests == requests_before + len(replies) + 1


def test_no_phone_number_is_in_the_logs_or_the_tracker_store(bot, number):
    text(bot, number, "i feel really down lately")
    text(bot, number, "STOP")
    digits = number[2:]
    assert not any(digits in line for line in bot.output)
    raw = (bot.work / "conversations.db").read_bytes()
    assert digits.encode() not in raw
    assert bot.sms_sender_id(number) in tracker_senders(bot)


def test_a_stop_sent_while_the_database_is_down_is_kept_and_honoured(bot, number):
    from bot.channels.sms.store import SmsStore
    from bot.db import engine_for

    sender_id = bot.sms_sender_id(number)
    opted_out, opted_in = bot.sms_text("sms_opted_out"), bot.sms_text("sms_opted_in")
    spool = bot.work / "sms-spool.jsonl"
    bot.postgres.go_down()
    try:
        assert text(bot, number, "STOP") == [opted_out]
        # Honoured from the spool while the database is still down.
        assert text(bot, number, "what is isotretinoin") == []
        assert sender_id in spool.read_text() and number not in spool.read_text()
    finally:
        bot.postgres.come_back()
    # The next text that finds the database up moves the spool into it.
    assert text(bot, number, "what is isotretinoin") == []
    store = SmsStore(engine_for(bot.database_url))
    assert store.is_opted_out(sender_id) is True
    assert store.contact(sender_id) is not None  # the call-back number too
    assert not spool.read_text().strip()
    assert text(bot, number, "Start") == [opted_in]
