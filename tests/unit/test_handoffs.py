"""The handoff queue: stored before the reply, spooled when the database is down,
replayed when it is back, alerted to staff through a real webhook."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import SQLAlchemyError

from bot.db import engine_for
from bot.safety.alerts import StaffNotifier, alert_payload
from bot.safety.handoffs import HandoffNotFound, HandoffQueue
from bot.staff.cli import main as staff


@pytest.fixture
def queue(engine, tmp_path):
    return HandoffQueue(engine, tmp_path / "spool.jsonl")


def test_a_handoff_is_committed_with_everything_staff_need(queue, engine):
    handoff = queue.create("patient-7", "rest", "crisis", "i want to die")
    assert not handoff.spooled
    (stored,) = HandoffQueue(engine, queue.spool).list()
    assert stored.id == handoff.id
    assert (stored.sender_id, stored.channel, stored.level) == (
        "patient-7",
        "rest",
        "crisis",
    )
    assert stored.message == "i want to die"
    assert stored.status == "open" and stored.created_at.tzinfo is not None


def test_staff_claim_and_resolve_by_a_short_id(queue):
    handoff = queue.create("patient-7", "rest", "concern", "feeling low")
    assert queue.claim(handoff.id[:8], "Nurse Ann").status == "claimed"
    resolved = queue.resolve(handoff.id[:8], "Nurse Ann", "called, doing ok")
    assert (resolved.status, resolved.resolved_by, resolved.note) == (
        "resolved",
        "Nurse Ann",
        "called, doing ok",
    )
    assert queue.list("open") == [] and len(queue.list("resolved")) == 1
    with pytest.raises(HandoffNotFound):
        queue.get("abc")


@pytest.mark.postgres
def test_with_the_database_down_the_spool_keeps_the_handoff_and_replays_it(
    postgres, tmp_path
):
    queue = HandoffQueue(engine_for(postgres.url), tmp_path / "spool.jsonl")
    first = queue.create("patient-1", "sms", "concern", "so sad lately")
    postgres.go_down()
    spooled = queue.create("patient-2", "rest", "crisis", "i want to kill myself")
    assert spooled.spooled
    assert "i want to kill myself" in queue.spool.read_text()
    assert queue.replay_spool() == 0  # still down: kept
    postgres.come_back()
    assert queue.replay_spool() == 1
    assert queue.replay_spool() == 0  # once only
    assert {h.id for h in queue.list()} == {first.id, spooled.id}
    assert queue.get(spooled.id).message == "i want to kill myself"
    assert queue.spool.read_text() == ""


def test_a_replay_never_duplicates_a_handoff(queue):
    handoff = queue.create("patient-1", "rest", "crisis", "kms")
    queue._append_to_spool(handoff)  # as if the insert had been retried
    assert queue.replay_spool() == 1
    assert [h.id for h in queue.list()] == [handoff.id]


def test_staff_are_alerted_without_the_patients_words(queue, webhook):
    handoff = queue.create("patient-1", "sms", "crisis", "i want to end it all")
    notifier = StaffNotifier(queue, webhook.url, quick_retry_delays=())
    assert notifier.notify_due() == 1
    (alert,) = webhook.received
    assert alert["handoff_id"] == handoff.id and alert["level"] == "crisis"
    assert f"python -m bot.staff show {handoff.id}" in alert["text"]
    assert "end it all" not in json.dumps(alert)
    stored = queue.get(handoff.id)
    assert stored.notified_at is not None and stored.notify_attempts == 1
    assert notifier.notify_due() == 0  # delivered once


def test_a_failed_alert_is_recorded_and_retried_until_delivered(queue, webhook):
    handoff = queue.create("patient-1", "rest", "crisis", "kms")
    webhook.status = 500
    notifier = StaffNotifier(queue, webhook.url, quick_retry_delays=(0.01, 0.01))
    assert notifier.notify_due() == 0
    assert len(webhook.received) == 3  # tried three times with backoff
    failed = queue.get(handoff.id)
    assert failed.notified_at is None and failed.notify_error == "HTTP 500"
    assert failed.notify_attempts == 1 and failed.next_notify_at is not None
    assert notifier.notify_due() == 0  # not due yet: waits for its retry time
    queue.record_notification(handoff.id, "HTTP 500", retry_in=-1)  # due now
    webhook.status = 200
    assert notifier.notify_due() == 1
    assert queue.get(handoff.id).notified_at is not None


def test_an_unreachable_webhook_keeps_the_handoff_and_records_why(queue):
    handoff = queue.create("patient-1", "rest", "concern", "feeling low")
    notifier = StaffNotifier(queue, "http://127.0.0.1:9/hook", quick_retry_delays=())
    assert notifier.notify_due() == 0
    stored = queue.get(handoff.id)
    assert stored.status == "open" and stored.notify_error == "ConnectionError"


def test_the_alert_payload_has_no_message_text(queue):
    handoff = queue.create("p", "rest", "concern", "secret words")
    assert "secret words" not in json.dumps(alert_payload(handoff))


def test_the_staff_command_lists_and_resolves(queue, bot_database, capsys, tmp_path,
                                              monkeypatch):  # fmt: skip
    monkeypatch.setenv("BOT_HANDOFF_SPOOL", str(queue.spool))
    monkeypatch.setenv("BOT_TRACKER_DB", str(tmp_path / "conversations.db"))
    handoff = queue.create("patient-9", "rest", "crisis", "i want to die")
    assert staff(["handoffs", "--status", "open", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert {"id", "sender_id", "channel", "level", "status", "created_at"} <= set(
        listed
    )
    assert listed["id"] == handoff.id and "message" not in listed
    assert staff(["show", handoff.id[:8]]) == 0
    shown = capsys.readouterr().out
    assert "i want to die" in shown and "conversation: none stored" in shown
    assert staff(["resolve", handoff.id[:8], "--by", "Dr Lee", "--note", "called"]) == 0
    assert queue.get(handoff.id).resolved_by == "Dr Lee"
    assert staff(["resolve", "zzzzzzzz", "--by", "Dr Lee"]) == 1


def test_the_staff_command_prints_a_patients_control_codes_as_text(
    queue, bot_database, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("BOT_HANDOFF_SPOOL", str(queue.spool))
    monkeypatch.setenv("BOT_TRACKER_DB", str(tmp_path / "conversations.db"))
    hostile = "\x1b[2J\x1b]0;owned\x07help\ncall back: +1 402 555 0100\u202e"
    handoff = queue.create("patient\x1b[31m", "rest", "crisis", hostile)
    assert staff(["show", handoff.id[:8]]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\x07" not in printed and "\u202e" not in printed
    assert not any(line.startswith("call back") for line in printed.splitlines())
    assert "help \u23ce call back: +1 402 555 0100" in printed  # shown, on its line


def test_a_torn_or_corrupt_spool_line_is_set_aside_and_the_rest_replays(queue):
    good = queue.new("patient-1", "rest", "crisis", "kms")
    queue._append_to_spool(good)
    with open(queue.spool, "a") as spool:  # a crash mid-write, then garbage
        spool.write('{"id": "abc", "sender_id": "patient-2", "lev')
    later = queue.new("patient-3", "sms", "concern", "so low")
    queue._append_to_spool(later)  # starts on its own line despite the tear
    with open(queue.spool, "ab") as spool:
        spool.write(b"\xff\xfe not json\n")
    assert queue.replay_spool() == 2
    assert {h.id for h in queue.list()} == {good.id, later.id}
    aside = queue.corrupt_spool.read_text()
    assert '"lev' in aside and "not json" in aside
    assert queue.spool.read_text() == ""


@pytest.mark.postgres
def test_with_the_database_down_staff_still_see_and_get_alerted_to_spooled_handoffs(
    postgres, tmp_path, webhook, monkeypatch, capsys
):
    engine = engine_for(postgres.url)
    queue = HandoffQueue(engine, tmp_path / "spool.jsonl")
    notifier = StaffNotifier(queue, webhook.url, quick_retry_delays=())
    queue.create("patient-0", "rest", "concern", "warm-up")  # tables exist
    assert notifier.notify_due() == 1
    webhook.received.clear()
    postgres.go_down()
    spooled = queue.create("patient-1", "sms", "crisis", "i want to die")
    assert spooled.spooled
    # The staff list shows it, marked as spooled, with a warning.
    monkeypatch.setenv("BOT_DATABASE_URL", postgres.url)
    monkeypatch.setenv("BOT_HANDOFF_SPOOL", str(queue.spool))
    assert staff(["handoffs"]) == 0
    out = capsys.readouterr()
    assert spooled.id[:10] in out.out and "spooled" in out.out
    assert "could not be read" in out.err
    # The alert goes out now, not when the database is back.
    assert notifier.notify_due() == 1
    (alert,) = webhook.received
    assert (alert["handoff_id"], alert["level"]) == (spooled.id, "crisis")
    postgres.come_back()
    assert notifier.notify_due() == 0  # replayed, and not alerted twice
    assert queue.get(spooled.id).notified_at is not None
    assert len(webhook.received) == 1


@pytest.mark.postgres
def test_an_escalation_made_while_the_database_is_down_reaches_the_row(
    postgres, tmp_path
):
    queue = HandoffQueue(engine_for(postgres.url), tmp_path / "spool.jsonl")
    concern = queue.create("patient-1", "rest", "concern", "what's the point")
    postgres.go_down()
    escalated = queue.escalate(queue.new("patient-1", "rest", "crisis", "yes",
                                         handoff_id=concern.id))  # fmt: skip
    assert escalated.spooled
    postgres.come_back()
    assert queue.replay_spool() == 1
    (row,) = queue.list()
    assert (row.id, row.level, row.message) == (
        concern.id,
        "crisis",
        "what's the point",
    )


@pytest.mark.postgres
def test_a_hung_database_delays_a_handoff_by_at_most_two_seconds(postgres, tmp_path):
    import asyncio
    import time

    from sqlalchemy import text

    engine = engine_for(postgres.url)
    queue = HandoffQueue(engine, tmp_path / "spool.jsonl")
    queue.create("patient-0", "rest", "concern", "warm-up")  # tables exist
    with engine.connect() as blocker:  # every write to handoffs now waits
        blocker.execute(text("LOCK TABLE handoffs IN ACCESS EXCLUSIVE MODE"))
        handoff = queue.new("patient-1", "rest", "crisis", "i want to die")
        # A server's event loop runs on; asyncio.run would wait for the
        # blocked worker thread at shutdown.
        loop = asyncio.new_event_loop()
        started = time.monotonic()
        stored = loop.run_until_complete(queue.store_promptly(handoff, timeout_s=2.0))
        waited = time.monotonic() - started
        assert stored.spooled and stored.id == handoff.id
        assert waited < 2.5
        blocker.rollback()  # the database answers again
    loop.close()
    time.sleep(0.5)  # the first attempt's insert may now land
    queue.replay_spool()
    assert [h.id for h in queue.list() if h.sender_id == "patient-1"] == [handoff.id]


@pytest.mark.postgres
def test_a_hung_database_and_a_locked_spool_hold_the_reply_back_4_s_at_most(
    postgres, tmp_path
):
    # The spool's lock held by another process (a replay stuck on the same
    # hung database): the reply must not wait for it, and the handoff must
    # still reach the spool once the lock is free.
    import asyncio
    import fcntl
    import time

    from sqlalchemy import text

    engine = engine_for(postgres.url)
    queue = HandoffQueue(engine, tmp_path / "spool.jsonl")
    queue.create("patient-0", "rest", "concern", "warm-up")
    queue.spool.touch()
    with engine.connect() as blocker, open(queue.spool, "a") as other:
        blocker.execute(text("LOCK TABLE handoffs IN ACCESS EXCLUSIVE MODE"))
        fcntl.flock(other, fcntl.LOCK_EX)
        handoff = queue.new("patient-2", "rest", "crisis", "i want to die")
        loop = asyncio.new_event_loop()
        started = time.monotonic()
        returned = loop.run_until_complete(queue.store_promptly(handoff, 2.0))
        assert time.monotonic() - started < 4.5
        assert returned.id == handoff.id and not returned.spooled
        fcntl.flock(other, fcntl.LOCK_UN)  # the other process lets go
        deadline = time.monotonic() + 5
        while handoff.id not in queue.spool.read_text():
            assert time.monotonic() < deadline, "never spooled"
            time.sleep(0.05)
        blocker.rollback()
    loop.close()
    time.sleep(0.5)
    queue.replay_spool()
    assert [h.id for h in queue.list() if h.sender_id == "patient-2"] == [handoff.id]


def test_an_escalation_while_the_concern_alert_is_being_sent_gets_its_own_alert(
    queue, webhook
):
    """The alerts worker reserves and sends the concern's alert; the patient
    answers yes meanwhile: the crisis alert must still go out."""
    concern = queue.create("patient-9", "rest", "concern", "is there a point")
    notifier = StaffNotifier(queue, url=webhook.url, quick_retry_delays=())
    (due,) = queue.due_for_notification()
    assert queue.reserve_notification(due.id, 60)  # the worker took it
    queue.escalate(queue.new("patient-9", "rest", "crisis", "yes",
                             handoff_id=concern.id))  # fmt: skip
    assert notifier.send(due) is None  # the concern's alert arrives
    queue.record_notification(due.id, None, level=due.level)
    assert notifier.notify_due() == 1  # and then the urgent one
    levels = [a["level"] for a in webhook.alerts_for(concern.id)]
    assert levels == ["concern", "crisis"]
    assert queue.get(concern.id).notified_at is not None


def test_an_escalation_just_before_the_concern_alerts_reservation_is_not_held_back(
    queue, webhook
):
    """The worker reads the concern as due, the patient answers yes, then the
    worker reserves it (the escalation's reset comes before the reservation)
    and sends the concern's alert: the urgent alert is due at once, not after
    the reservation's 60 s."""
    concern = queue.create("patient-10", "rest", "concern", "is there a point")
    notifier = StaffNotifier(queue, url=webhook.url, quick_retry_delays=())
    (due,) = queue.due_for_notification()
    queue.escalate(queue.new("patient-10", "rest", "crisis", "yes",
                             handoff_id=concern.id))  # fmt: skip
    assert queue.reserve_notification(due.id, 60)
    assert notifier.send(due) is None  # says "concern": the level it read
    queue.record_notification(due.id, None, level=due.level)
    assert notifier.notify_due() == 1  # the urgent one, now
    levels = [a["level"] for a in webhook.alerts_for(concern.id)]
    assert levels == ["concern", "crisis"]


def test_a_database_error_does_not_quote_the_patients_words(queue, engine):
    """Errors are logged with their text: it must not hold the message."""
    queue.list()  # the tables exist
    with engine.begin() as connection:  # the INSERT itself fails
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON handoffs "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    with pytest.raises(SQLAlchemyError) as failed:
        queue._insert([queue.new("patient-1", "rest", "crisis", "my secret words")])
    assert "INSERT INTO handoffs" in str(failed.value)
    assert "secret" not in str(failed.value)
