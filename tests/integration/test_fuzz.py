"""Every endpoint the bot exposes, fuzzed with Hypothesis on the running bot
(bounded, derandomised: the same cases every run): REST, the SMS webhook
(forged and signed), the widget's socket.io, the chat page and the health
checks answer malformed or oversized input with a 4xx, never a 5xx, and keep
answering afterwards."""

from __future__ import annotations

import json
import string

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tests.integration.conftest import SMS_WEBHOOK_URL
from tests.integration.test_crisis_path import Widget

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=60,
    derandomize=True,  # a fixed seed: CI sees the same cases every time
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40)
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Just over the webhooks' 64 KB body limit.
oversized = st.integers(65_000, 70_000).map(
    lambda n: b'{"sender": "a", "message": "' + b"x" * n + b'"}'
)
# Bodies a client may send: raw bytes, broken JSON, JSON of any shape, and
# REST-shaped objects whose fields have the wrong types or sizes.
rest_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"sender": json_values | st.text(min_size=0, max_size=200),
         "message": json_values | st.text(max_size=2500)},
        optional={"metadata": json_values, "input_channel": json_values},
    ).map(lambda v: json.dumps(v).encode()),
    oversized,
)  # fmt: skip


def never_a_server_error(response: requests.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:200])


@FUZZ
@given(
    body=rest_bodies,
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
    ),
)
def test_rest_webhook(bot, body, content_type):
    response = requests.post(
        f"{bot.rasa_url}/webhooks/rest/webhook", data=body,
        headers={"Content-Type": content_type} if content_type else {}, timeout=60,
    )  # fmt: skip
    never_a_server_error(response)
    if response.status_code == 200:  # a well-formed message: a reply list
        assert isinstance(response.json(), list)
    else:
        assert 400 <= response.status_code < 500 and "error" in response.json()


form_fields = st.dictionaries(
    st.sampled_from(["From", "To", "Body", "MessageSid", "AccountSid", "NumMedia",
                     "MediaUrl0", "X"]),
    st.text(max_size=60) | st.text(string.digits + "+", max_size=20),
    max_size=8,
)  # fmt: skip


@FUZZ
@given(
    form=form_fields,
    signed=st.booleans(),
    # What a header can carry (a client cannot send the rest).
    forged=st.text(string.ascii_letters + string.digits + "+/=", max_size=40),
)
def test_sms_webhook(bot, form, signed, forged):
    """Forged signatures get a 403; signed but malformed forms a 4xx; a
    signed well-formed text a 200. Never a 5xx."""
    if signed:
        validator = RequestValidator(bot.sms_env["TWILIO_AUTH_TOKEN"])
        signature = validator.compute_signature(SMS_WEBHOOK_URL, form)
    else:
        signature = forged
    response = requests.post(
        f"{bot.rasa_url}/webhooks/sms/webhook", data=form,
        headers={"X-Twilio-Signature": signature}, timeout=60,
    )  # fmt: skip
    never_a_server_error(response)
    if not signed:
        assert response.status_code in (400, 403)


@FUZZ
@given(
    path=st.text(string.printable, max_size=80),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
)
def test_chat_page(bot, path, method):
    url = f"{bot.web_url}/{requests.utils.quote(path, safe='/?=&%')}"
    response = requests.request(method, url, timeout=30, allow_redirects=False)
    never_a_server_error(response)


@FUZZ
@given(
    query=st.text(max_size=60),
    header=st.text(
        string.ascii_letters + string.digits + string.punctuation + " ", max_size=60
    ),
)
def test_health_checks(bot, query, header):
    for url in (f"{bot.rasa_url}/webhooks/rest/", f"{bot.rasa_url}/webhooks/sms/",
                f"{bot.rasa_url}/webhooks/rest/health",
                f"{bot.actions_url}/health"):  # fmt: skip
        response = requests.get(
            url, params={"q": query}, headers={"X-Fuzz": header.strip()}, timeout=30
        )
        assert response.status_code == 200, url


@pytest.fixture(scope="module")
def widget(bot):
    client = Widget(bot.rasa_url, bot.web_url)
    yield client
    client.close()


# Stands for the widget's own conversation id (its replies come to it).
OWN_SESSION = "own-session"


@FUZZ
@given(
    data=json_values
    | st.fixed_dictionaries(
        {
            "message": json_values | st.text(max_size=2500),
            "session_id": st.just(OWN_SESSION) | json_values | st.text(max_size=200),
        },
        optional={"customData": json_values | st.text(max_size=40)},
    )
)
def test_socketio_messages(bot, widget, data):
    """Each bad packet gets an error reply (or the bot's answer), and the
    connection stays up."""
    session = data.get("session_id") if isinstance(data, dict) else None
    if session != OWN_SESSION and isinstance(session, str) and session.strip():
        data = {**data, "session_id": OWN_SESSION}  # a reply elsewhere is unseen
    if isinstance(data, dict) and data.get("session_id") == OWN_SESSION:
        data = {**data, "session_id": widget.session_id}
    replies = widget.send(data, wait_s=15)
    assert replies, "no reply at all"
    assert widget.client.connected
