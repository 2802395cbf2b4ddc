"""Run last (file order): what the whole session left in the logs, then Ctrl-C."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from bot import settings

pytestmark = pytest.mark.integration


def test_no_patient_message_reaches_the_logs(bot):
    """Rasa and the action server log at INFO: no message text may appear."""
    log = "".join(bot.output)
    assert "Rasa server is up and running" in log  # the log really is captured
    sent = {m for m in bot.sent if len(m) > 12 and not m.startswith("/")}
    assert len(sent) >= 10
    assert [m for m in sent if m in log] == []


def test_ctrl_c_stops_every_server(bot):
    """Last: make run's Ctrl-C stops the Rasa server, the action server and the
    chat page."""
    bot.process.send_signal(signal.SIGINT)
    bot.process.wait(timeout=30)
    time.sleep(0.5)
    for url in (bot.rasa_url, bot.actions_url, bot.web_url):
        port = int(url.rsplit(":", 1)[1])
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{url} still open"


def test_the_bots_files_are_its_users_only(bot):
    """What the servers wrote (conversations, SMS state, handoffs) and var/."""
    written = [p for p in bot.work.rglob("*") if p.is_file()]
    assert any(p.name.startswith("conversations.db") for p in written)
    assert [p.name for p in written if p.stat().st_mode & 0o077] == []
    assert settings.VAR_DIR.stat().st_mode & 0o777 == 0o700
