"""The REST channel, hardened: Rasa's own answers an empty body with a 500,
lets the client claim another channel (``input_channel: sms``), puts every
request without a sender into one shared ``default`` conversation, logs the
patient's text at ERROR when processing fails, and leaves a patient without an
answer when the action server is down or slow (``bot.channels.guard`` sends
the safe reply and stores the handoff).

Registered in credentials.yml as ``bot.channels.rest.PatientRestInput``; its
name stays ``rest``, so the webhook is ``/webhooks/rest/webhook``.
"""

from __future__ import annotations

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

from bot import settings
from bot.channels import guard, limits, payloads
from bot.run import dependencies

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
    metadata = payload.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest("'metadata' must be a JSON object")
    return IncomingMessage(
        clean_sender(payload.get("sender")),
        clean_message(payload.get("message")),
        metadata,
    )


def clean_sender(sender: Any, name: str = "sender") -> str:
    """A conversation id as the channels accept it, or a clear ``BadRequest``."""
    if not isinstance(sender, str) or not sender.strip():
        raise BadRequest(f"'{name}' is required: a conversation id as text")
    if len(sender) > MAX_SENDER_CHARS:
        raise BadRequest(f"'{name}' is longer than {MAX_SENDER_CHARS} characters")
    return sender.strip()


def clean_message(text: Any) -> str:
    """A patient's message as every channel accepts it: text, not empty, at
    most ``MAX_MESSAGE_CHARS``, without NUL characters."""
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
    return text


def client_address(request: Request) -> str:
    """The client's address: the proxy's forwarded one where Sanic is told to
    trust it (``SANIC_PROXIES_COUNT`` in the environment), else the peer."""
    return request.remote_addr or request.ip or ""


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
            from bot.safety.screen import default_screen

            # Which layers screen patients' messages: "phrases only" means the
            # learned classifier failed to load (the log says why).
            layers = (
                "phrases+classifier" if default_screen().classifier else "phrases only"
            )
            return response.json({"status": "ok", "safety_screen": layers})

        @webhook.route("/health", methods=["GET"])
        async def stores(request: Request) -> HTTPResponse:
            # For monitoring: 503 names a store that does not answer. Not the
            # readiness probe: patients still get safe replies meanwhile.
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None:
                return response.json({"status": "starting"}, status=503)
            states = await dependencies.check(agent)
            healthy = all(state == dependencies.OK for state in states.values())
            return response.json(
                {"status": "ok" if healthy else "degraded", **states},
                status=200 if healthy else 503,
            )

        @webhook.listener("after_server_start")
        async def watch_stores(app: Any, _loop: Any) -> None:
            every = settings.load().dependency_check_s
            app.add_task(
                dependencies.keep_checking(
                    lambda: getattr(app.ctx, "agent", None), every
                )
            )

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                incoming = parse_body(request.body)
            except BadRequest as error:
                return response.json({"error": str(error)}, status=error.status)
            text = payloads.as_text(incoming.text)  # typed "/intent" is words
            screened = await guard.screen_off_loop(text)
            if await guard.limited(incoming.sender, client_address(request), screened):
                return response.json(
                    [{"recipient_id": incoming.sender,
                      "text": guard.rate_limited_text(self.name())}],
                    status=429,
                    headers={"Retry-After": str(int(limits.default_limits().window_s))},
                )  # fmt: skip
            collector = CollectingOutputChannel()
            message = UserMessage(
                text,
                collector,
                incoming.sender,
                input_channel=self.name(),
                metadata=incoming.metadata,
            )
            # The action server down, slow or failing: never leave the patient
            # without an answer, nor a crisis without a handoff.
            safe = await guard.process(
                on_new_message, message, lambda: bool(collector.messages), screened
            )
            if safe is not None:
                return response.json([{"recipient_id": incoming.sender, "text": safe}])
            return response.json(collector.messages)

        return webhook
