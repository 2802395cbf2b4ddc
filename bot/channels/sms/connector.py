"""The clinic's SMS channel: Twilio's webhook in, Twilio's REST API out.

Registered in credentials.yml as ``bot.channels.sms.connector.SmsInput`` under the
name ``sms``, so Twilio posts to ``/webhooks/sms/webhook``. Unlike Rasa's own
Twilio channel it:

- checks ``X-Twilio-Signature`` against the account's auth token and the
  public ``SMS_WEBHOOK_URL`` (403 without a valid one, before anything else);
- answers a retried webhook (same ``MessageSid``) once;
- screens every text first: a crisis or concern's handoff is stored (or
  spooled) before any other database work, so a database failure can delay
  nothing on the crisis path, and a failing store never turns into a 500;
- honours STOP / START / HELP (``bot.channels.sms.keywords``): nothing is sent to an
  opted-out number, but a crisis from one still creates the handoff;
- sends plain text: buttons become "Reply 1 for ..." and a reply of "1"
  selects that button; a long reply becomes at most 3 messages, in order;
- never puts a phone number in a log line or the tracker store: the sender id
  is a keyed hash of the number, and the call-back number staff need is
  stored encrypted (``bot.channels.sms.phone_numbers``).

Replies go out through Twilio's REST API, not as TwiML in the webhook's
response: the webhook's answer then never waits on Twilio's 15-second
timeout, several messages keep their order (each is sent after the previous
one was accepted), and a failed send is retried and recorded. The synchronous
Twilio client runs in a worker thread, never on Rasa's event loop.

Environment: ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``,
``TWILIO_FROM_NUMBER``, ``SMS_WEBHOOK_URL`` (the URL Twilio posts to, which
the signature covers), ``SMS_SENDER_KEY`` and ``SMS_CONTACT_KEY`` (see
``bot.channels.sms.phone_numbers``); ``TWILIO_API_BASE_URL`` points the REST client at a
stand-in for Twilio (tests). Without them the channel answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    UserMessage,
)
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from bot import settings
from bot.channels import guard, payloads
from bot.channels.rest import BadRequest
from bot.channels.sms.format import choice, compose, split
from bot.channels.sms.keywords import Keyword, keyword
from bot.channels.sms.store import CONTACT, OPT_OUT, SmsStateSpool, SmsStore
from bot.channels.sms.twilio import SmsConfig, SmsConfigError, TwilioSender, twiml
from bot.content.answers import Answers, unavailable_text
from bot.safety.screen import ScreenResult

logger = logging.getLogger(__name__)

CHANNEL = "sms"
MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class InboundSms:
    number: str
    text: str
    message_sid: str


def parse_form(body: bytes) -> dict[str, str]:
    """Twilio's form fields (first value of each), or a clear ``BadRequest``."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    try:
        fields = urllib.parse.parse_qs(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the body is not a URL-encoded form") from None
    return {name: values[0] for name, values in fields.items()}


def parse_inbound(form: dict[str, str]) -> InboundSms:
    number, sid = form.get("From", "").strip(), form.get("MessageSid", "").strip()
    if "Body" not in form:
        raise BadRequest("'Body' is required")
    if not number:
        raise BadRequest("'From' is required")
    if not sid or len(sid) > 64:
        raise BadRequest("'MessageSid' is required (at most 64 characters)")
    text = form["Body"].replace("\x00", "").strip()[:MAX_MESSAGE_CHARS]
    return InboundSms(number, text, sid)


# What ``_stored`` gives back when the database failed (None and False are
# answers of the store's own).
_FAILED = object()


class SmsInput(InputChannel):
    """Twilio's SMS webhook, hardened (see the module docstring)."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        try:
            return cls(SmsConfig.from_settings())
        except (SmsConfigError, settings.SettingsError) as error:
            logger.warning("the SMS channel is off (%s)", error)
            return cls(None)

    def __init__(
        self,
        config: SmsConfig | None,
        store: SmsStore | None = None,
        answers: Answers | None = None,
    ) -> None:
        self.config = config
        self._store = store
        self._state_spool: SmsStateSpool | None = None
        self._answers = answers
        self.sender = TwilioSender(config) if config else None
        self.validator = RequestValidator(config.auth_token) if config else None

    @property
    def store(self) -> SmsStore:
        if self._store is None:
            self._store = SmsStore()
        return self._store

    @property
    def state_spool(self) -> SmsStateSpool:
        if self._state_spool is None:
            self._state_spool = SmsStateSpool()
        return self._state_spool

    @property
    def answers(self) -> Answers:
        if self._answers is None:
            self._answers = Answers()
        return self._answers

    # -- HTTP --------------------------------------------------------------
    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            status = "ok" if self.config else "not configured"
            return response.json({"status": status})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self.config is None:
                return response.json(
                    {"error": "the SMS channel is not configured"}, status=503
                )
            try:
                form = parse_form(request.body)
            except BadRequest as error:
                return response.json({"error": str(error)}, status=error.status)
            if not self.signed_by_twilio(form, request.headers):
                logger.warning("SMS webhook refused: missing or wrong signature")
                return response.json({"error": "invalid signature"}, status=403)
            try:
                inbound = parse_inbound(form)
            except BadRequest as error:
                return response.json({"error": str(error)}, status=error.status)
            try:
                await self.handle(inbound, on_new_message)
            except Exception:
                # Never the number or the text: only that processing failed.
                logger.exception("processing an SMS failed")
                return response.json(
                    {"error": "the message could not be processed"}, status=500
                )
            return twiml()

        return webhook

    def signed_by_twilio(self, form: dict[str, str], headers: Any) -> bool:
        signature = headers.get("X-Twilio-Signature", "")
        if not signature or self.validator is None or self.config is None:
            return False
        return bool(self.validator.validate(self.config.webhook_url, form, signature))

    # -- one message -------------------------------------------------------
    async def handle(
        self,
        inbound: InboundSms,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        assert self.config is not None
        sender_id = self.config.sender_ids.sender_id(inbound.number)
        # Safety first: the handoff is stored before anything else touches the
        # database. Its id comes from the MessageSid, so Twilio's retries and
        # the action server's own handoff for this text are the same one.
        screened = await guard.screen_off_loop(inbound.text)
        if screened.level is not None:
            await guard.store_first(
                sender_id, CHANNEL, inbound.text, inbound.message_sid, screened
            )
        claimed = await self._stored(
            "claim the message", True,
            self.store.claim_message, inbound.message_sid, sender_id,
        )  # fmt: skip
        if not claimed:
            logger.info("a retried SMS webhook was answered already; ignored")
            return
        if self.state_spool.spool.has_lines():
            # Move what waited for the database (it stays there, and this
            # message goes on, if the database is still down).
            await self._stored("replay the SMS spool", 0,
                               self.state_spool.replay, self.store)  # fmt: skip
        try:
            status = await self._answer(inbound, sender_id, on_new_message, screened)
        except BaseException:
            await self._stored(
                "release the message", None,
                self.store.release_message, inbound.message_sid,
            )  # fmt: skip
            raise
        await self._stored(
            "record the answer", None,
            self.store.finish_message, inbound.message_sid, status,
        )  # fmt: skip

    async def _stored(self, what: str, default: Any, call: Callable, *args: Any) -> Any:
        """A call to the SMS store; when the database fails, ``default``.

        Dedupe, opt-outs, menus and call-back numbers help, but none of them
        may keep a patient (in crisis above all) from an answer.
        """
        try:
            return await asyncio.wait_for(asyncio.to_thread(call, *args), 5.0)
        except Exception as error:
            logger.error(
                "SMS store: could not %s (%s); going on without it",
                what,
                type(error).__name__,
            )
            return default

    async def _stored_or_spooled(
        self,
        what: str,
        kind: str,
        sender_id: str,
        value: Any,
        call: Callable,
        *args: Any,
    ) -> Any:
        """``_stored``, and when the database failed, the change spooled
        (``_FAILED`` returned): an opt-out and a call-back number are never
        lost to an outage."""
        result = await self._stored(what, _FAILED, call, *args)
        if result is _FAILED:
            try:
                await asyncio.to_thread(self.state_spool.add, kind, sender_id, value)
                logger.warning("SMS store: spooled until the database is back")
            except Exception:
                logger.exception("SMS store: the change could not be spooled either")
        return result

    async def _opted_out(self, sender_id: str) -> bool:
        """A spooled choice first (newer than the database's), then the
        database's; False if neither can be read."""
        try:
            spooled = await asyncio.to_thread(self.state_spool.opted_out, sender_id)
        except Exception:
            logger.exception("SMS store: the spool could not be read")
            spooled = None
        if spooled is not None:
            return spooled
        return await self._stored(
            "read the opt-out", False, self.store.is_opted_out, sender_id
        )

    async def _answer(
        self,
        inbound: InboundSms,
        sender_id: str,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        screened: ScreenResult,
    ) -> str:
        assert self.config is not None
        encrypted = self.config.contacts.encrypt(inbound.number)
        await self._stored_or_spooled(
            "save the call-back number", CONTACT, sender_id, encrypted,
            self.store.save_contact, sender_id, encrypted,
        )  # fmt: skip
        opted_out = await self._opted_out(sender_id)
        word = keyword(inbound.text, opted_out)

        if word is Keyword.OPT_OUT:
            changed = await self._stored_or_spooled(
                "opt the number out", OPT_OUT, sender_id, True,
                self.store.set_opted_out, sender_id, True,
            )  # fmt: skip
            if not changed:
                return "opted_out"  # confirmed once already: send nothing
            logger.info("an SMS sender opted out")
            return await self._send_trigger(inbound.number, "sms_opt_out")
        if word is Keyword.OPT_IN:
            await self._stored_or_spooled(
                "opt the number in", OPT_OUT, sender_id, False,
                self.store.set_opted_out, sender_id, False,
            )  # fmt: skip
            logger.info("an SMS sender opted in")
            return await self._send_trigger(inbound.number, "sms_opt_in", sender_id)
        if opted_out:
            # No reply to an opted-out number; a crisis's handoff is stored.
            return "opted_out"
        if word is Keyword.HELP:
            return await self._send_trigger(inbound.number, "sms_help", sender_id)

        # A burst is told once a window to wait (a flagged text never is).
        excess = await guard.limited(sender_id, None, screened)
        if excess > 1:
            return "rate_limited"
        if excess:
            logger.info("an SMS sender went over its rate limit")
            return await self._send_trigger(inbound.number, "rate_limited")

        if not inbound.text:  # a picture or an empty text: nothing to read
            return await self._send_trigger(inbound.number, "fallback", sender_id)
        typed = payloads.as_text(inbound.text)  # a typed "/intent" is words
        menu = await self._stored("read the menu", None, self.store.menu, sender_id)
        text = choice(typed, menu) or typed
        collector = CollectingOutputChannel()
        message = UserMessage(
            text, collector, sender_id, input_channel=CHANNEL,
            message_id=inbound.message_sid,
        )  # fmt: skip
        safe = await guard.process(
            on_new_message, message, lambda: bool(collector.messages),
            screened if text == inbound.text else None,
        )  # fmt: skip
        messages = [{"text": safe}] if safe is not None else collector.messages
        return await self._send(inbound.number, messages, sender_id)

    async def _send_trigger(
        self, number: str, trigger: str, sender_id: str | None = None
    ) -> str:
        try:
            reply = await asyncio.to_thread(self.answers.for_trigger, trigger, CHANNEL)
            message: dict[str, Any] = {"text": reply.text, "buttons": reply.buttons}
        except Exception:
            logger.exception("the %s reply could not be read", trigger)
            message = {"text": unavailable_text()}
        return await self._send(number, [message], sender_id)

    async def _send(
        self, number: str, messages: list[dict[str, Any]], sender_id: str | None
    ) -> str:
        assert self.sender is not None
        reply = compose(messages)
        if sender_id is not None:
            await self._stored(
                "save the menu", None, self.store.save_menu, sender_id, reply.buttons
            )
        parts = split(reply.text) or [unavailable_text()]
        try:
            await asyncio.to_thread(self.sender.send, number, parts)
        except Exception as error:
            logger.error(
                "an SMS reply could not be sent (%s: %s)",
                type(error).__name__,
                getattr(error, "code", ""),
            )
            return "reply_failed"
        return "answered"
