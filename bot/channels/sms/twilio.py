"""The Twilio side of the SMS channel: its settings, and sending messages
through Twilio's REST API with retries."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from requests.adapters import HTTPAdapter
from sanic import response
from sanic.response import HTTPResponse
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.util.retry import Retry

from bot import settings
from bot.channels.sms.phone_numbers import ContactCipher, PhoneNumberKeyError, SenderIds

# Twilio's client logs each request at INFO; its URL names the account only,
# but keep it quiet in case a later version logs more.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

SEND_ATTEMPTS = 3
SEND_TIMEOUT_S = 10.0
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
REQUIRED_ENV = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "SMS_WEBHOOK_URL",
    "SMS_SENDER_KEY",
    "SMS_CONTACT_KEY",
)


class SmsConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class SmsConfig:
    account_sid: str
    auth_token: str
    from_number: str
    webhook_url: str
    sender_ids: SenderIds
    contacts: ContactCipher
    api_base_url: str | None = None

    @classmethod
    def from_settings(cls, config: settings.Settings | None = None) -> SmsConfig:
        """The channel's configuration; ``SmsConfigError`` names what is missing."""
        config = config or settings.load()
        values = config.as_environ()
        missing = [name for name in REQUIRED_ENV if not values.get(name)]
        if missing:
            raise SmsConfigError("not set: " + ", ".join(missing))
        try:
            sender_ids = SenderIds(config.sms_sender_key.get_secret_value())
            contacts = ContactCipher(config.sms_contact_key.get_secret_value())
        except PhoneNumberKeyError as error:
            raise SmsConfigError(str(error)) from None
        return cls(
            account_sid=config.twilio_account_sid,
            auth_token=config.twilio_auth_token.get_secret_value(),
            from_number=config.twilio_from_number,
            webhook_url=config.sms_webhook_url,
            sender_ids=sender_ids,
            contacts=contacts,
            api_base_url=config.twilio_api_base_url or None,
        )


class TwilioSender:
    """Sends messages through Twilio's REST API, in order, with retries."""

    def __init__(self, config: SmsConfig) -> None:
        self.config = config
        http = TwilioHttpClient(timeout=SEND_TIMEOUT_S)
        # urllib3 retries a failed connection or a 5xx, with backoff; a 4xx
        # (an invalid or opted-out number) is final. POST is retried too:
        # Twilio's 5xx means the message was not accepted.
        retry = Retry(
            total=SEND_ATTEMPTS - 1,
            backoff_factor=0.5,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=None,
            raise_on_status=False,
        )
        for scheme in ("https://", "http://"):  # http: a local stand-in (tests)
            http.session.mount(scheme, HTTPAdapter(max_retries=retry))
        self.client = Client(config.account_sid, config.auth_token, http_client=http)
        if config.api_base_url:
            self.client.api.base_url = config.api_base_url.rstrip("/")

    def send(self, number: str, parts: list[str]) -> None:
        """Blocking: call from a worker thread. Raises after the last retry.

        Each part is sent after the previous one was accepted, so they arrive
        in order."""
        for part in parts:
            self.client.messages.create(
                to=number, from_=self.config.from_number, body=part
            )


def twiml() -> HTTPResponse:
    """The webhook's answer: empty (replies go out through the REST API)."""
    return response.text(EMPTY_TWIML, content_type="text/xml")
