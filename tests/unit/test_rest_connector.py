"""The hardened REST channel's body checks."""

from __future__ import annotations

import json

import pytest

from bot.channels.rest import MAX_MESSAGE_CHARS, BadRequest, parse_body


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
