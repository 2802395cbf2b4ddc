"""Shared fixtures: a real knowledge base loaded from the reviewed files."""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bot import settings

# Every bot the tests start sends everything from 127.0.0.1, and some tests
# send dozens of messages a minute: the rate limits are off for them, except
# in tests/integration/test_rate_limits.py, which sets its own.
os.environ.setdefault("BOT_RATE_PER_SENDER", "0")
os.environ.setdefault("BOT_RATE_PER_ADDRESS", "0")
from bot.content.store import KnowledgeBase, load_knowledge
from bot.db import engine_for
from bot.run import services


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def engine(database_url: str) -> Engine:
    return engine_for(database_url)


@pytest.fixture
def loaded_engine(engine: Engine) -> Engine:
    load_knowledge(engine)
    return engine


@pytest.fixture
def knowledge(loaded_engine: Engine) -> KnowledgeBase:
    return KnowledgeBase(loaded_engine)


@pytest.fixture
def knowledge_copy(tmp_path: Path) -> Path:
    """A private copy of data/knowledge/ that a test may edit."""
    target = tmp_path / "knowledge"
    shutil.copytree(settings.KNOWLEDGE_DIR, target)
    return target


class KnowledgeFiles:
    """Edit entries of a knowledge copy by id, as a reviewer would edit YAML."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def locate(self, entry_id: str) -> tuple[Path, dict, dict]:
        for path in sorted(self.directory.glob("*.yml")):
            data = yaml.safe_load(path.read_text())
            for entry in (data or {}).get("entries", []) or []:
                if entry.get("id") == entry_id:
                    return path, data, entry
        raise KeyError(entry_id)

    def edit(self, entry_id: str, **changes: object) -> Path:
        path, data, entry = self.locate(entry_id)
        for name, value in changes.items():
            if value is None:
                entry.pop(name, None)
            else:
                entry[name] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return path

    def remove(self, entry_id: str) -> None:
        path, data, entry = self.locate(entry_id)
        data["entries"].remove(entry)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@pytest.fixture
def knowledge_files(knowledge_copy: Path) -> KnowledgeFiles:
    return KnowledgeFiles(knowledge_copy)


@pytest.fixture
def bot_database(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    """Point the process's default database (BOT_DATABASE_URL) at a test db."""
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    yield database_url


class PostgresDatabase:
    """A fresh database on the test PostgreSQL server (tests/services.py), that
    a test can take down."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = services.postgres_url(name)
        self.admin = create_engine(
            services.postgres_admin_url(), future=True, isolation_level="AUTOCOMMIT"
        )

    def execute(self, sql: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(sql))

    def go_down(self) -> None:
        """Refuse new connections and end the open ones, as an outage would."""
        self.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        self.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.name}'"
        )

    def come_back(self) -> None:
        self.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')


def _postgres() -> Iterator[PostgresDatabase]:
    database = PostgresDatabase(f"bot_test_{uuid.uuid4().hex[:10]}")
    database.execute(f'CREATE DATABASE "{database.name}"')
    try:
        yield database
    finally:
        engine_for(database.url).dispose()
        database.come_back()
        database.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        database.admin.dispose()


postgres = pytest.fixture(_postgres)
session_postgres = pytest.fixture(scope="session")(_postgres)


@pytest.fixture
def postgres_url(postgres: PostgresDatabase) -> str:
    return postgres.url


class Webhook:
    """A real local HTTP server standing in for Slack's incoming webhook."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts_for(self, handoff_id: str) -> list[dict]:
        return [a for a in self.received if a.get("handoff_id") == handoff_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


webhook = pytest.fixture(_webhook)
session_webhook = pytest.fixture(scope="session")(_webhook)


class FakeTwilio:
    """A real local HTTP server standing in for Twilio's REST API.

    It takes ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with HTTP basic
    auth, as Twilio does, records each message and answers 201 with a message
    resource; ``fail_next`` makes the next requests fail with a 500.
    """

    account_sid = "AC" + "0" * 30 + "test"
    auth_token = "test-auth-token-0123456789abcdef"
    from_number = "+14025550100"

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.requests = 0
        self.fail_next = 0
        self.lock = threading.Lock()
        fake = self
        expected_auth = (
            "Basic "
            + base64.b64encode(
                f"{self.account_sid}:{self.auth_token}".encode()
            ).decode()
        )

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                path = f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
                with fake.lock:
                    fake.requests += 1
                    if self.headers.get("Authorization") != expected_auth:
                        return self._reply(401, {"code": 20003, "message": "auth"})
                    if self.path != path:
                        return self._reply(404, {"code": 20404, "message": "path"})
                    if fake.fail_next > 0:
                        fake.fail_next -= 1
                        return self._reply(500, {"code": 20500, "message": "boom"})
                    form = dict(urllib.parse.parse_qsl(body.decode()))
                    sid = f"SM{uuid.uuid4().hex}"
                    fake.messages.append({**form, "sid": sid, "at": time.time()})
                self._reply(
                    201,
                    {
                        "sid": sid,
                        "account_sid": fake.account_sid,
                        "to": form.get("To"),
                        "from": form.get("From"),
                        "body": form.get("Body"),
                        "status": "queued",
                    },
                )

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, number: str) -> list[str]:
        """The bodies sent to ``number``, in the order Twilio accepted them."""
        with self.lock:
            return [m["Body"] for m in self.messages if m.get("To") == number]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    yield fake
    fake.close()


twilio_api = pytest.fixture(_twilio)
session_twilio_api = pytest.fixture(scope="session")(_twilio)


@pytest.fixture
def action_server_database(bot_database, engine, tmp_path, monkeypatch):
    """The action server's own database, loaded from the reviewed files."""
    monkeypatch.setenv("BOT_HANDOFF_SPOOL", str(tmp_path / "spool.jsonl"))
    monkeypatch.setenv("HANDOFF_WEBHOOK_URL", "")
    load_knowledge(engine)
    from actions import actions  # here: only the tests that use it import Rasa SDK

    actions._answers = actions._handoffs = actions._safety_answers = None
    yield KnowledgeBase(engine)
    actions._answers = actions._handoffs = actions._safety_answers = None
