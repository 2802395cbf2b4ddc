"""The REST channel, hardened: Rasa's own answers an empty body with a 500,
lets the client claim another channel (``input_channel: sms``), puts every
request without a sender into one shared ``default`` conversation, and logs the
patient's text at ERROR when processing fails.

Registered in credentials.yml as ``bot.connectors.rest.PatientRestInput``; its
name stays ``rest``, so the webhook is ``/webhooks/rest/webhook``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.answers import emergency_text, unavailable_text
from bot.handoffs import HandoffQueue
from bot.safety import Level, default_screen

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 2000
MAX_SENDER_CHARS = 128


class BadRequest(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class IncomingMessage:
    sender: str
    text: str
    metadata: dict[str, Any] | None


def parse_body(body: bytes) -> IncomingMessage:
    """The sender, text and metadata of a webhook body, or a clear ``BadRequest``."""
    if not body or not body.strip():
        raise BadRequest('the body is empty: send JSON {"sender": ..., "message": ...}')
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("the body is not valid UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object")
    sender, text = payload.get("sender"), payload.get("message")
    metadata = payload.get("metadata")
    if not isinstance(sender, str) or not sender.strip():
        raise BadRequest("'sender' is required: a conversation id as text")
    if len(sender) > MAX_SENDER_CHARS:
        raise BadRequest(f"'sender' is longer than {MAX_SENDER_CHARS} characters")
    if not isinstance(text, str):
        raise BadRequest("'message' is required and must be text")
    text = text.replace("\x00", "").strip()
    if not text:
        raise BadRequest("'message' is empty")
    if len(text) > MAX_MESSAGE_CHARS:
        raise BadRequest(
            f"'message' is longer than {MAX_MESSAGE_CHARS} characters; "
            "please send a shorter question",
            413,
        )
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be a JSON object")
    return IncomingMessage(sender.strip(), text, metadata)


def reply_without_action_server(incoming: IncomingMessage, channel: str) -> str:
    """The safe reply when the bot produced none; stores a handoff if one is due."""
    level = default_screen().screen(incoming.text).level
    if level is not None:
        try:
            HandoffQueue().create(incoming.sender, channel, level.value, incoming.text)
        except Exception:
            logger.exception("a %s handoff could not be stored", level.value)
    return emergency_text() if level is Level.CRISIS else unavailable_text()


class PatientRestInput(RestInput):
    """REST webhook for the website and tests: ``POST {"sender", "message"}``."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                incoming = parse_body(request.body)
            except BadRequest as error:
                return response.json({"error": str(error)}, status=error.status)
            collector = CollectingOutputChannel()
            try:
                await on_new_message(
                    UserMessage(
                        incoming.text,
                        collector,
                        incoming.sender,
                        input_channel=self.name(),
                        metadata=incoming.metadata,
                    )
                )
            except Exception:
                # Never the message text: only that processing failed.
                logger.exception("processing a REST message failed")
                return response.json(
                    {"error": "the message could not be processed; please try again"},
                    status=500,
                )
            if not collector.messages:
                # The action server failed or is down: never leave the patient
                # without an answer, nor a crisis without a handoff.
                logger.error("no reply was produced for a REST message")
                text = await asyncio.to_thread(
                    reply_without_action_server, incoming, self.name()
                )
                return response.json([{"recipient_id": incoming.sender, "text": text}])
            return response.json(collector.messages)

        return webhook
