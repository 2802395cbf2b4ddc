"""The production profile (BOT_PROFILE=production) for real: the bot as
`python -m bot.run.serve` starts it, with Rasa's conversation store and the
project's own tables on PostgreSQL and its lock store on Redis; no embedded
file is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import text

from bot import settings
from bot.content.store import load_knowledge
from bot.db import current_revision, engine_for, head_revision
from bot.run import services, training
from tests.integration.conftest import free_port, start_until_ready


@pytest.fixture(scope="module")
def production_bot(tmp_path_factory):
    """A second bot, production profile, on its own PostgreSQL database."""
    from tests.conftest import PostgresDatabase

    model = training.current_model()
    if not model.exists():
        pytest.fail(f"no trained model at {model}: run `make train` (make test does)")
    database = PostgresDatabase(f"bot_prod_{uuid.uuid4().hex[:10]}")
    database.execute(f'CREATE DATABASE "{database.name}"')
    work = tmp_path_factory.mktemp("production")
    rasa_port, actions_port, web_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "BOT_PROFILE": "production",
        "BOT_DATABASE_URL": database.url,
        "REDIS_URL": services.redis_url(),
        # Embedded files that must stay untouched in production.
        "BOT_TRACKER_DB": str(work / "conversations.db"),
        "BOT_HANDOFF_SPOOL": str(work / "spool.jsonl"),
        "RASA_PORT": str(rasa_port),
        "ACTIONS_PORT": str(actions_port),
        "WEB_PORT": str(web_port),
    }
    # The set-up's step: migrations, then the knowledge base.
    load_knowledge(engine_for(database.url))
    output: list[str] = []
    process = None
    try:
        process = start_until_ready("bot.run.serve", env, "Bot ready", output)
        yield {
            "url": f"http://127.0.0.1:{rasa_port}",
            "database": database,
            "work": work,
            "output": output,
        }
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        engine_for(database.url).dispose()
        database.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        database.admin.dispose()


def say(bot, sender: str, message: str) -> list[str]:
    import requests

    response = requests.post(
        f"{bot['url']}/webhooks/rest/webhook",
        json={"sender": sender, "message": message},
        timeout=60,
    )
    response.raise_for_status()
    return [m.get("text", "") for m in response.json()]


def test_conversations_handoffs_and_locks_are_on_postgresql_and_redis(
    production_bot,
):
    sender = f"prod-{uuid.uuid4().hex[:12]}"
    messages = ["hi", "what is isotretinoin?", "i want to kill myself"]
    replies = [say(production_bot, sender, message) for message in messages]
    assert all(replies), replies
    assert any("988" in text for text in replies[-1])

    engine = engine_for(production_bot["database"].url)
    with engine.connect() as connection:
        said = (
            connection.execute(
                text(
                    "SELECT data FROM events WHERE sender_id = :sender "
                    "AND type_name = 'user' ORDER BY id"
                ),
                {"sender": sender},
            )
            .scalars()
            .all()
        )
        handoffs = (
            connection.execute(
                text("SELECT level FROM handoffs WHERE sender_id = :sender"),
                {"sender": sender},
            )
            .scalars()
            .all()
        )
    assert [json.loads(data)["text"] for data in said] == messages
    assert handoffs == ["crisis"]
    # The schema is the migrations' newest revision.
    assert current_revision(engine) == head_revision()
    # Each message took this conversation's lock in Redis: the ticket counter
    # (kept a minute past the lock's lifetime) counted them.
    redis_url = urlsplit(services.redis_url())
    client = redis.Redis(
        host=redis_url.hostname, port=redis_url.port, db=int(redis_url.path[1:] or 0)
    )
    assert int(client.get(f"bot_lock:{{{sender}}}:next") or 0) >= len(messages)
    # Nothing went to the embedded files, and nothing failed on the way.
    assert not (production_bot["work"] / "conversations.db").exists()
    errors = [line for line in production_bot["output"] if " ERROR " in line]
    assert not errors, errors


def test_the_production_profile_refuses_to_fall_back_to_sqlite():
    with pytest.raises(settings.SettingsError, match="PostgreSQL"):
        settings.load({"BOT_PROFILE": "production", "REDIS_URL": "redis://x:1/0"})
    with pytest.raises(settings.SettingsError, match="REDIS_URL"):
        settings.load(
            {"BOT_PROFILE": "production", "BOT_DATABASE_URL": "postgresql://u@h/d"}
        )
    with pytest.raises(settings.SettingsError, match="BOT_PROFILE"):
        settings.load({"BOT_PROFILE": "cluster"})


@pytest.mark.parametrize(("role", "path"), [("actions", "/health"), ("web", "/")])
def test_a_container_runs_one_role_alone(postgres_url, role, path):
    """What each container of deploy/ runs: `python -m bot.run.serve --only`."""
    import requests

    port = free_port()
    env = {
        **os.environ,
        "BOT_PROFILE": "production",
        "BOT_DATABASE_URL": postgres_url,
        "REDIS_URL": services.redis_url(),
        "ACTIONS_PORT": str(port),
        "WEB_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.run.serve", "--only", role],
        cwd=settings.PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{role} exited {process.returncode}"
            try:
                if requests.get(f"http://127.0.0.1:{port}{path}", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail(f"{role} did not answer on {path}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_rasa_role_uses_the_profiles_endpoints():
    from bot.run.serve import role_command

    env = settings.load(
        {"BOT_PROFILE": "production", "REDIS_URL": "redis://127.0.0.1:6379/1",
         "BOT_DATABASE_URL": "postgresql+psycopg2://u@h/d"}
    ).as_environ()  # fmt: skip
    command = role_command("rasa", env)
    assert str(settings.PROJECT_ROOT / "endpoints.production.yml") in command
    assert env["TRACKER_USER"] == "u" and env["LOCK_REDIS_DB"] == "1"
