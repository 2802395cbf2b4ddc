"""PostgreSQL and Redis for the tests and ``make cluster``: the servers at
127.0.0.1 when they answer, otherwise private, throwaway ones started here.

A private server runs from Debian's packages (``make services`` installs
postgresql and redis-server where they are missing) on a free port, with its
data in a temporary directory, and is stopped when the process that started
it (the test session, the cluster) ends.
``BOT_TEST_PRIVATE_SERVICES=1`` uses private servers even where the shared
ones answer (to check this path on a machine that has them).
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SHARED_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
SHARED_REDIS = "redis://127.0.0.1:6379/0"
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
STARTUP_TIMEOUT_S = 30

_urls: dict[str, str] = {}


def private_only() -> bool:
    return os.environ.get("BOT_TEST_PRIVATE_SERVICES") == "1"


def answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if answers(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the private {what} did not answer on port {port}")


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as Debian's postgres user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _binary(name: str, debian_dir: Path) -> str:
    found = shutil.which(name) or (
        str(debian_dir / name) if (debian_dir / name).exists() else None
    )
    if not found:
        raise RuntimeError(
            f"{name} is not installed: `make services` installs Debian's "
            "postgresql and redis-server packages"
        )
    return found


def start_private_postgres() -> str:
    work = Path(tempfile.mkdtemp(prefix="bot-test-postgres-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(work, user.pw_uid, user.pw_gid)
    data, port = work / "data", free_port()
    initdb = _binary("initdb", POSTGRES_BIN)
    pg_ctl = _binary("pg_ctl", POSTGRES_BIN)
    subprocess.run(
        _as_postgres_user(
            [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {work} -c fsync=off"
    subprocess.run(
        _as_postgres_user(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(work / "log"), "-w",
             "start"]
        ),
        check=True,
        capture_output=True,
    )  # fmt: skip
    atexit.register(_stop_postgres, pg_ctl, data, work)
    _wait_for(port, "PostgreSQL")
    subprocess.run(
        _as_postgres_user(
            [_binary("createdb", POSTGRES_BIN), "-h", "127.0.0.1", "-p", str(port),
             "-U", "postgres", "test"]
        ),
        check=True,
        capture_output=True,
    )  # fmt: skip
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/test"


def _stop_postgres(pg_ctl: str, data: Path, work: Path) -> None:
    subprocess.run(
        _as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
        capture_output=True,
    )
    shutil.rmtree(work, ignore_errors=True)


def start_private_redis() -> str:
    work = Path(tempfile.mkdtemp(prefix="bot-test-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [_binary("redis-server", Path("/usr/bin")), "--port", str(port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

    atexit.register(stop)
    _wait_for(port, "Redis")
    return f"redis://127.0.0.1:{port}/0"


def postgres_admin_url() -> str:
    """A PostgreSQL URL to the ``test`` database, with rights to create others."""
    if "postgres" not in _urls:
        shared = not private_only() and answers(5432)
        _urls["postgres"] = SHARED_POSTGRES if shared else start_private_postgres()
    return _urls["postgres"]


def redis_url() -> str:
    if "redis" not in _urls:
        shared = not private_only() and answers(6379)
        _urls["redis"] = SHARED_REDIS if shared else start_private_redis()
    return _urls["redis"]


def postgres_url(database: str) -> str:
    """The URL of another database on the same server."""
    return postgres_admin_url().rsplit("/", 1)[0] + f"/{database}"
