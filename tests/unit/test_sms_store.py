"""What the SMS channel remembers, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import pytest

from bot.channels.sms.store import CONTACT, OPT_OUT, SmsStateSpool, SmsStore
from bot.db import engine_for

BUTTONS = [{"title": "Side effects", "payload": "/ask_side_effects"}]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, database_url):
    if request.param == "postgres":
        return SmsStore(engine_for(request.getfixturevalue("postgres_url")))
    return SmsStore(engine_for(database_url))


def test_each_message_sid_is_claimed_once(store):
    assert store.claim_message("SM1", "sms-a") is True
    assert store.claim_message("SM1", "sms-a") is False
    store.finish_message("SM1", "answered")
    assert store.message_status("SM1") == "answered"


def test_a_released_message_can_be_processed_again(store):
    assert store.claim_message("SM2", "sms-a")
    store.release_message("SM2")
    assert store.message_status("SM2") is None
    assert store.claim_message("SM2", "sms-a")


def test_opting_out_is_recorded_and_changes_once(store):
    assert store.is_opted_out("sms-a") is False
    assert store.set_opted_out("sms-a", False) is False
    assert store.set_opted_out("sms-a", True) is True
    assert store.set_opted_out("sms-a", True) is False
    assert store.is_opted_out("sms-a") is True
    assert store.is_opted_out("sms-b") is False
    assert store.set_opted_out("sms-a", False) is True
    assert store.is_opted_out("sms-a") is False


def test_the_call_back_number_is_kept_as_given(store):
    assert store.contact("sms-a") is None
    store.save_contact("sms-a", "token-1")
    store.save_contact("sms-a", "token-2")
    assert store.contact("sms-a") == "token-2"


def test_the_latest_menu_replaces_the_last_and_an_empty_one_clears_it(store):
    store.save_menu("sms-a", BUTTONS)
    assert store.menu("sms-a") == BUTTONS
    store.save_menu("sms-a", [])
    assert store.menu("sms-a") == []
    store.save_menu("sms-a", [])
    assert store.menu("sms-b") == []


def test_two_first_messages_from_one_number_at_once_do_not_collide(store):
    import threading

    errors: list[BaseException] = []

    def save(token: str) -> None:
        try:
            store.save_contact("sms-new", token)
            store.save_menu("sms-new", [{"title": token, "payload": "/greet"}])
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=save, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.contact("sms-new") in {f"t{i}" for i in range(8)}


def test_spooled_changes_replay_in_order_and_wait_while_the_database_refuses(
    tmp_path, database_url
):
    spool = SmsStateSpool(tmp_path / "sms-spool.jsonl")
    spool.add(CONTACT, "sms-a", "encrypted-a")
    spool.add(OPT_OUT, "sms-a", True)
    spool.add(OPT_OUT, "sms-a", False)
    spool.add(OPT_OUT, "sms-b", True)
    # The newest spooled choice is the patient's, whatever the database says.
    assert spool.opted_out("sms-a") is False and spool.opted_out("sms-b") is True
    assert spool.opted_out("sms-c") is None
    # Nothing listens on port 1: the database refuses, nothing moves.
    down = SmsStore(engine_for("postgresql+psycopg2://nobody@127.0.0.1:1/x"))
    assert spool.replay(down) == 0
    assert len(spool.spool.read()[0]) == 4
    store = SmsStore(engine_for(database_url))
    assert spool.replay(store) == 4
    assert store.contact("sms-a") == "encrypted-a"
    assert store.is_opted_out("sms-a") is False and store.is_opted_out("sms-b") is True
    assert spool.opted_out("sms-b") is None  # nothing is left in the spool


def test_a_torn_spool_line_is_set_aside_and_forget_me_drops_spooled_numbers(
    tmp_path, database_url
):
    spool = SmsStateSpool(tmp_path / "sms-spool.jsonl")
    spool.add(CONTACT, "sms-a", "encrypted-a")
    with open(spool.spool.path, "a", encoding="utf-8") as file:
        file.write('{"kind": "opt_out", "sender')  # a crash mid-write
    spool.add(OPT_OUT, "sms-a", True)
    spool.add(CONTACT, "sms-b", "encrypted-b")
    assert spool.drop("sms-a") == 1  # the number goes, the STOP stays
    store = SmsStore(engine_for(database_url))
    assert spool.replay(store) == 2
    assert store.contact("sms-a") is None and store.is_opted_out("sms-a") is True
    assert store.contact("sms-b") == "encrypted-b"
    assert '"sender' in spool.spool.corrupt_path.read_text()
