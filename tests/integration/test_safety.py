"""The safety screen end to end: the real Rasa server, action server,
PostgreSQL database and a real local webhook standing in for Slack."""

from __future__ import annotations

import json

import pytest
import requests

pytestmark = pytest.mark.integration


def handoffs_of(bot, sender):
    return [h for h in bot.handoffs.list() if h.sender_id == sender]


def test_the_server_screens_with_both_layers(bot):
    # The learned classifier loads in the server (else it would screen on
    # phrases alone, and only a log line would say so).
    health = requests.get(f"{bot.rasa_url}/webhooks/rest/", timeout=10).json()
    assert health == {"status": "ok", "safety_screen": "phrases+classifier"}


def test_a_crisis_gets_911_and_988_first_and_a_handoff_before_the_reply(bot, sender):
    texts = bot.texts(sender, "honestly i dont want to be here anymore")
    assert texts == [bot.web_text("crisis")]  # no welcome, no small talk first
    assert "911" in texts[0] and "988" in texts[0]
    (handoff,) = handoffs_of(bot, sender)  # stored by the time the reply is back
    assert (handoff.level, handoff.channel, handoff.status) == (
        "crisis",
        "rest",
        "open",
    )
    assert handoff.message == "honestly i dont want to be here anymore"
    (alert,) = bot.wait_for(lambda: bot.webhook.alerts_for(handoff.id))
    assert alert["level"] == "crisis" and "here anymore" not in json.dumps(alert)


def test_after_a_crisis_later_answers_keep_the_resources(bot, sender):
    bot.texts(sender, "Feeling SUICIDAL")
    assert bot.texts(sender, "can i still get my eyebrows waxed") == [
        bot.web_text("waxing"),
        bot.web_text("crisis_reminder"),
    ]


def test_a_greeting_with_a_crisis_gets_only_the_crisis_reply(bot, sender):
    assert bot.texts(sender, "hi there! i keep cutting myself") == [
        bot.web_text("crisis")
    ]


def test_a_mood_question_gets_the_answer_a_follow_up_promise_and_a_handoff(bot, sender):
    texts = bot.texts(sender, "can accutane cause depression?")
    assert texts == [
        bot.web_text("welcome"),
        bot.web_text("mood"),
        bot.web_text("concern_follow_up"),
    ]
    (handoff,) = handoffs_of(bot, sender)
    assert handoff.level == "concern"


@pytest.mark.parametrize(
    "idiom",
    [
        "my skin is killing me",
        "I'm dying to know if I can wax",
        "i killed myself laughing",
    ],
)
def test_an_idiom_is_not_a_crisis(bot, sender, idiom):
    texts = bot.texts(sender, idiom)
    assert bot.web_text("crisis") not in texts
    assert [h.level for h in handoffs_of(bot, sender)] in ([], ["concern"])


def test_with_the_webhook_down_the_handoff_is_kept_and_the_failure_recorded(
    bot, sender
):
    bot.webhook.status = 500
    try:
        bot.texts(sender, "i want to kill myself")
        (handoff,) = handoffs_of(bot, sender)
        failed = bot.wait_for(lambda: bot.handoffs.get(handoff.id).notify_error)
        assert failed == "HTTP 500"
        assert bot.handoffs.get(handoff.id).status == "open"
    finally:
        bot.webhook.status = 200
    bot.wait_for(lambda: bot.handoffs.get(handoff.id).notified_at)  # retried


def test_with_the_database_down_the_reply_goes_out_and_the_spool_keeps_it(bot, sender):
    crisis_reply = bot.web_text("crisis")
    bot.postgres.go_down()
    try:
        texts = bot.texts(sender, "i'm going to overdose on my pills tonight")
        assert texts == [crisis_reply]  # answered from the reviewed files
        spool = bot.work / "spool.jsonl"
        assert sender in spool.read_text()
    finally:
        bot.postgres.come_back()
    (handoff,) = bot.wait_for(lambda: handoffs_of(bot, sender))  # replayed
    assert handoff.level == "crisis"
    bot.wait_for(lambda: bot.webhook.alerts_for(handoff.id))


def test_staff_list_show_and_resolve_a_handoff(bot, sender):
    bot.texts(sender, "what is accutane")
    bot.texts(sender, "i've been feeling so hopeless")
    (handoff,) = handoffs_of(bot, sender)
    listed = json.loads(bot.staff("handoffs", "--status", "open", "--json"))
    assert handoff.id in {h["id"] for h in listed}
    shown = bot.staff("show", handoff.id)
    assert "i've been feeling so hopeless" in shown
    assert "patient | what is accutane" in shown
    assert bot.web_text("what_is").splitlines()[0] in shown
    bot.staff("resolve", handoff.id, "--by", "Nurse Ann", "--note", "called back")
    resolved = bot.handoffs.get(handoff.id)
    assert (resolved.status, resolved.resolved_by) == ("resolved", "Nurse Ann")
