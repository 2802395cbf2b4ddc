"""The hardened REST channel's body checks."""

from __future__ import annotations

import json

import pytest

from bot.connectors.rest import MAX_MESSAGE_CHARS, BadRequest, parse_body


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_a_good_body_gives_sender_text_and_metadata():
    incoming = parse_body(body(sender="p1", message="  hi  ", metadata={"a": 1}))
    assert (incoming.sender, incoming.text, incoming.metadata) == ("p1", "hi", {"a": 1})


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        (b"", 400, "empty"),
        (b"   ", 400, "empty"),
        (b"{not json", 400, "not valid UTF-8 JSON"),
        (bytes(range(256)), 400, "not valid UTF-8 JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (body(message="hi"), 400, "'sender' is required"),
        (body(sender="x" * 500, message="hi"), 400, "'sender' is longer"),
        (body(sender="p1"), 400, "'message' is required"),
        (body(sender="p1", message=12), 400, "'message' is required"),
        (body(sender="p1", message=" \x00 "), 400, "'message' is empty"),
        (body(sender="p1", message="a" * (MAX_MESSAGE_CHARS + 1)), 413, "shorter"),
        (body(sender="p1", message="a" * 70_000), 413, "larger than"),
        (body(sender="p1", message="hi", metadata=[1]), 400, "'metadata'"),
    ],
)
def test_bad_bodies_get_a_clear_error(raw, status, says):
    with pytest.raises(BadRequest) as raised:
        parse_body(raw)
    assert raised.value.status == status
    assert says in str(raised.value)


def test_without_an_action_server_a_crisis_still_gets_988_and_a_handoff(
    bot_database, engine, tmp_path, monkeypatch
):
    from bot.answers import emergency_text, unavailable_text
    from bot.connectors.rest import IncomingMessage, reply_without_action_server
    from bot.handoffs import HandoffQueue

    monkeypatch.setenv("BOT_HANDOFF_SPOOL", str(tmp_path / "spool.jsonl"))
    crisis = IncomingMessage("p1", "i want to kill myself", None)
    assert reply_without_action_server(crisis, "rest") == emergency_text()
    ordinary = IncomingMessage("p2", "can i wax", None)
    assert reply_without_action_server(ordinary, "rest") == unavailable_text()
    (handoff,) = HandoffQueue(engine, tmp_path / "spool.jsonl").list()
    assert (handoff.sender_id, handoff.level) == ("p1", "crisis")
