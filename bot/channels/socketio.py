"""The website widget's socket.io channel, limited to the chat page's origin.

Rasa 3.6's ``socketio`` channel creates its server with
``cors_allowed_origins=[]``, which turns python-engineio's origin check off:
any web page could open a WebSocket to the bot. This channel keeps Rasa's
(name ``socketio``, path ``/socket.io``, ``session_persistence``,
``metadata_key``) and accepts only the chat page's origins
(``bot.channels.web_page.page_origins``: ``WEB_PUBLIC_URL`` behind a proxy, else the
local page address). python-engineio then also sends the CORS headers that
socket.io's polling needs, for those origins only.

Its message handler replaces Rasa's: the same limits as the REST webhook (a
64 KB packet, a text of at most 2,000 characters, a conversation id, metadata
as an object; a bad message gets an error reply, never a crash), and the same
safe reply and handoff when the action server is down or slow
(``bot.channels.guard``); Rasa's own sends the patient nothing then.

Registered in credentials.yml as ``bot.channels.socketio.PatientSocketIOInput``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint

from bot import settings
from bot.channels import guard, payloads
from bot.channels.rest import (
    MAX_BODY_BYTES,
    BadRequest,
    clean_message,
    clean_sender,
    client_address,
)
from bot.channels.web_page import page_origins


class CountingOutput(SocketIOOutput):
    """Rasa's socket.io output that knows whether it sent the patient anything."""

    def __init__(self, sio: Any, bot_message_evt: str) -> None:
        super().__init__(sio, bot_message_evt)
        self.sent = 0

    async def _send_message(self, socket_id: str, response: Any) -> None:
        await super()._send_message(socket_id, response)
        self.sent += 1


logger = logging.getLogger(__name__)


class PatientSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel that only the chat page may connect to."""

    @classmethod
    def name(cls) -> str:
        return "socketio"

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        blueprint = super().blueprint(on_new_message)
        sio = self.sio
        assert sio is not None
        origins = page_origins(settings.load())
        sio.eio.cors_allowed_origins = origins
        sio.eio.max_http_buffer_size = MAX_BODY_BYTES  # as the REST webhook
        logger.info("socket.io accepts the chat page's origins: %s", origins)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any = None, *_more: Any) -> None:
            # A packet without data is a bad message (answered as one); any
            # argument after the first is ignored (found by test_fuzz.py).
            try:
                message, room = self._message(sid, data, CountingOutput(
                    sio, self.bot_message_evt))  # fmt: skip
            except BadRequest as error:
                await sio.emit(self.bot_message_evt, {"text": str(error)}, room=sid)
                return
            screened = await guard.screen_off_loop(message.text or "")
            request = (sio.get_environ(sid, self.namespace) or {}).get("sanic.request")
            address = client_address(request) if request is not None else None
            if await guard.limited(message.sender_id, address, screened):
                text = guard.rate_limited_text(self.name())
                await sio.emit(self.bot_message_evt, {"text": text}, room=room)
                return
            output = message.output_channel
            safe = await guard.process(
                on_new_message, message, lambda: output.sent > 0, screened
            )
            if safe is not None:
                await sio.emit(self.bot_message_evt, {"text": safe}, room=room)

        return blueprint

    def _message(
        self, sid: str, data: Any, output: CountingOutput
    ) -> tuple[UserMessage, str]:
        """The patient's message from a ``user_uttered`` event, and the room
        the replies go to; ``BadRequest`` for anything else."""
        if not isinstance(data, dict):
            raise BadRequest("a message must be an object with a 'message' text")
        sender = sid
        if self.session_persistence:
            sender = clean_sender(data.get("session_id"), "session_id")
        metadata = data.get(self.metadata_key) or {}
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except json.JSONDecodeError:
                raise BadRequest("the metadata is not valid JSON") from None
        if not isinstance(metadata, dict):
            raise BadRequest("the metadata must be an object")
        text = payloads.as_text(clean_message(data.get("message")))
        message = UserMessage(
            text, output, sender, input_channel=self.name(), metadata=metadata
        )
        return message, sender
