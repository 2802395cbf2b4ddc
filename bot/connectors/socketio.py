"""The website widget's socket.io channel, limited to the chat page's origin.

Rasa 3.6's ``socketio`` channel creates its server with
``cors_allowed_origins=[]``, which turns python-engineio's origin check off:
any web page could open a WebSocket to the bot. This channel keeps Rasa's
(name ``socketio``, path ``/socket.io``, ``session_persistence``,
``metadata_key``) and accepts only the chat page's origins
(``bot.web_page.page_origins``: ``WEB_PUBLIC_URL`` behind a proxy, else the
local page address). python-engineio then also sends the CORS headers that
socket.io's polling needs, for those origins only.

Registered in credentials.yml as ``bot.connectors.socketio.PatientSocketIOInput``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint

from bot.web_page import page_origins

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
        assert self.sio is not None
        origins = page_origins(os.environ)
        self.sio.eio.cors_allowed_origins = origins
        logger.info("socket.io accepts the chat page's origins: %s", origins)
        return blueprint
