"""The SMS channel's settings come from the environment, and fail closed."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.channels.rest import BadRequest
from bot.channels.sms.connector import SmsInput, parse_form, parse_inbound
from bot.channels.sms.twilio import REQUIRED_ENV, SmsConfig, SmsConfigError
from bot.settings import load

GOOD_ENV = {
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_FROM_NUMBER": "+14025550100",
    "SMS_WEBHOOK_URL": "https://chat.example/webhooks/sms/webhook",
    "SMS_SENDER_KEY": "k" * 32,
    "SMS_CONTACT_KEY": Fernet.generate_key().decode(),
}


def test_a_complete_environment_configures_the_channel():
    config = SmsConfig.from_settings(load(GOOD_ENV))
    assert config.webhook_url == GOOD_ENV["SMS_WEBHOOK_URL"]
    assert config.api_base_url is None


@pytest.mark.parametrize("missing", REQUIRED_ENV)
def test_each_missing_setting_is_named(missing):
    env = {k: v for k, v in GOOD_ENV.items() if k != missing}
    with pytest.raises(SmsConfigError, match=missing):
        SmsConfig.from_settings(load(env))


def test_a_bad_contact_key_is_a_configuration_error():
    with pytest.raises(SmsConfigError, match="SMS_CONTACT_KEY"):
        SmsConfig.from_settings(load({**GOOD_ENV, "SMS_CONTACT_KEY": "nope"}))


def test_without_settings_the_channel_is_off_and_refuses_everything(monkeypatch):
    for name in REQUIRED_ENV:
        monkeypatch.delenv(name, raising=False)
    channel = SmsInput.from_credentials(None)
    assert channel.config is None
    assert channel.name() == "sms"
    assert (
        channel.signed_by_twilio({"Body": "hi"}, {"X-Twilio-Signature": "x"}) is False
    )


def test_a_form_is_parsed_and_a_bad_one_is_a_clear_error():
    form = parse_form(b"From=%2B14025550123&Body=can+I+wax%3F&MessageSid=SM1")
    assert form == {"From": "+14025550123", "Body": "can I wax?", "MessageSid": "SM1"}
    with pytest.raises(BadRequest, match="URL-encoded"):
        parse_form(b"\xff\xfe")
    with pytest.raises(BadRequest) as too_big:
        parse_form(b"Body=" + b"a" * 70_000)
    assert too_big.value.status == 413


def test_an_sms_without_body_sender_or_id_is_a_400():
    good = {"From": "+14025550123", "Body": " hi ", "MessageSid": "SM1"}
    assert parse_inbound(good).text == "hi"
    for field in good:
        with pytest.raises(BadRequest, match=field):
            parse_inbound({k: v for k, v in good.items() if k != field})


def test_a_very_long_sms_is_cut_not_refused():
    inbound = parse_inbound({"From": "+1", "Body": "a" * 5000, "MessageSid": "SM1"})
    assert len(inbound.text) == 2000
