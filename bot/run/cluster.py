"""Several replicas on one machine, behind a real load balancer: ``make cluster``.

``python -m bot.run.cluster`` starts, in the production profile
(``BOT_PROFILE=production``: PostgreSQL conversation store and tables, Redis
lock store):

- ``BOT_CLUSTER_REPLICAS`` (2) Rasa servers and as many action servers,
- one chat-page server and one staff-alerts worker,
- nginx (Debian's package) on 127.0.0.1:``LB_PORT`` (5080) in front of them:
  the chat page at ``/``, REST and SMS webhooks spread over the Rasa servers
  (a server that refuses connections is skipped, so a dead one costs no
  message), socket.io kept on one server per browser (a cookie: a socket.io
  session lives in one server's memory), and the action servers behind a
  second, internal listener that the Rasa servers call.

PostgreSQL and Redis are ``BOT_DATABASE_URL`` and ``REDIS_URL`` when set,
otherwise the servers at 127.0.0.1:5432 and :6379 when they answer (database
``bot_cluster``, created if missing), otherwise private ones started from
Debian's packages (``bot.run.services``). A server that dies is started
again. Its ports and process ids are in ``BOT_CLUSTER_DIR/state.json``
(default ``var/cluster``) for the tests and benchmarks; Ctrl-C stops it all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot import settings
from bot.run import services
from bot.run.serve import (
    ServeError,
    child_env,
    keep_files_private,
    role_command,
    stop,
    wait_until_up,
)
from bot.run.supervision import Member, restart_dead, write_state

NGINX = "/usr/sbin/nginx"
CLUSTER_DATABASE = "bot_cluster"

STICKY_COOKIE = "bot_replica=$bot_replica; Path=/socket.io/; HttpOnly; SameSite=Lax"
NGINX_CONF = """\
# Written by bot/run/cluster.py for this run; not edited by hand.
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    # No access log: paths and addresses only, but nothing a clinic needs.
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    # Patients' words never touch nginx's disk: every body fits its memory
    # buffer (a larger one is refused), and responses are never spooled.
    client_max_body_size 64k;
    client_body_buffer_size 64k;
    proxy_max_temp_file_size 0;

    upstream rasa {{
{rasa_servers}
        keepalive 32;
    }}
    # A socket.io session lives in one Rasa server's memory: each browser
    # keeps to one server, by a cookie set on its first request (nginx's open
    # source build has no sticky directive; a hash of the cookie does it).
    map $cookie_bot_replica $bot_replica {{
        "" $request_id;
        default $cookie_bot_replica;
    }}
    upstream rasa_socketio {{
        hash $bot_replica consistent;
{rasa_servers}
    }}
    upstream actions {{
{action_servers}
        keepalive 32;
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        "" close;
    }}

    server {{
        listen 127.0.0.1:{lb_port};
        # A server that refuses the connection or fails before answering is
        # skipped: the request goes to the next one (POSTs too, when nothing
        # was sent to the dead one).
        proxy_next_upstream error timeout http_502 http_503;
        proxy_next_upstream_tries 3;
        proxy_connect_timeout 2s;
        proxy_read_timeout 60s;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;

        location /webhooks/ {{
            proxy_set_header Connection "";
            proxy_pass http://rasa;
        }}
        location /socket.io/ {{
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            add_header Set-Cookie "{sticky_cookie}" always;
            proxy_pass http://rasa_socketio;
        }}
        location = /health {{
            proxy_set_header Connection "";
            proxy_pass http://rasa/;
        }}
        location / {{
            proxy_pass http://{web};
        }}
    }}
    server {{
        listen 127.0.0.1:{actions_lb_port};
        # Rasa sends the action server the whole conversation.
        client_max_body_size 8m;
        client_body_buffer_size 8m;
        proxy_next_upstream error timeout http_502 http_503;
        proxy_http_version 1.1;
        location / {{
            proxy_set_header Connection "";
            proxy_read_timeout 30s;
            proxy_pass http://actions;
        }}
    }}
}}
"""


class ClusterError(RuntimeError):
    pass


@dataclass
class Cluster:
    work: Path
    lb_port: int
    members: list[Member] = field(default_factory=list)

    def state(self) -> dict:
        return {
            "lb_url": f"http://127.0.0.1:{self.lb_port}",
            "members": {member.name: member.state() for member in self.members},
        }

    def write_state(self) -> None:
        write_state(self.work / "state.json", self.state())


def _ensure_database(admin_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``admin_url``, created if
    missing."""
    engine = create_engine(admin_url, future=True, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": name},
            ).first()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def production_environ(environ: dict[str, str]) -> dict[str, str]:
    """The environment with the production profile's three URLs filled in."""
    env = dict(environ)
    env["BOT_PROFILE"] = "production"
    if not env.get("BOT_DATABASE_URL"):
        env["BOT_DATABASE_URL"] = _ensure_database(
            services.postgres_admin_url(), CLUSTER_DATABASE
        )
    if not env.get("REDIS_URL"):
        env["REDIS_URL"] = services.redis_url()
    return env


def nginx_binary() -> str:
    found = shutil.which("nginx") or (NGINX if Path(NGINX).exists() else None)
    if not found:
        raise ClusterError(
            "nginx is not installed: `make cluster` installs Debian's nginx as "
            "root (apt-get install nginx-light)"
        )
    return found


def build(replicas: int, base_env: dict[str, str]) -> Cluster:
    config = settings.load(base_env)
    work = config.cluster_dir
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    cluster = Cluster(work, config.lb_port)
    free = services.free_port
    rasa_ports = [free() for _ in range(replicas)]
    action_ports = [free() for _ in range(replicas)]
    actions_lb_port, web_port = free(), free()
    lb_url = f"http://127.0.0.1:{config.lb_port}"
    shared = {
        **base_env,
        "ACTIONS_URL": f"http://127.0.0.1:{actions_lb_port}/webhook",
        "RASA_PUBLIC_URL": lb_url,
        "WEB_PUBLIC_URL": lb_url,
        "WEB_PORT": str(web_port),
    }
    for index, port in enumerate(action_ports, 1):
        env = child_env({**shared, "ACTIONS_PORT": str(port)})
        command = role_command("actions", env)
        url = f"http://127.0.0.1:{port}"
        cluster.members.append(
            Member(f"actions-{index}", command, env, url, f"{url}/health")
        )
    for index, port in enumerate(rasa_ports, 1):
        # nginx replaces X-Forwarded-For with the client's address (a client
        # cannot forge it): Sanic is to trust that one proxy, so that the
        # per-address rate limit sees patients, not nginx.
        rasa_env = {**shared, "RASA_PORT": str(port), "SANIC_PROXIES_COUNT": "1"}
        env = child_env(rasa_env)
        command = role_command("rasa", env, config.model)
        url = f"http://127.0.0.1:{port}"
        cluster.members.append(
            Member(f"rasa-{index}", command, env, url, f"{url}/webhooks/rest/")
        )
    shared = child_env(shared)
    web_url = f"http://127.0.0.1:{web_port}"
    cluster.members.append(
        Member("web", role_command("web", shared), shared, web_url, f"{web_url}/")
    )
    cluster.members.append(
        Member("alerts", role_command("alerts", shared), shared, None, None)
    )
    conf = work / "nginx.conf"
    servers = lambda ports: "\n".join(  # noqa: E731
        f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;"
        for port in ports
    )
    conf.write_text(
        NGINX_CONF.format(
            work=work,
            lb_port=config.lb_port,
            actions_lb_port=actions_lb_port,
            rasa_servers=servers(rasa_ports),
            action_servers=servers(action_ports),
            web=f"127.0.0.1:{web_port}",
            sticky_cookie=STICKY_COOKIE,
        )
    )
    nginx = [nginx_binary(), "-p", str(work), "-c", str(conf), "-g", "daemon off;"]
    cluster.members.append(Member("nginx", nginx, shared, lb_url, f"{lb_url}/health"))
    return cluster


def run(replicas: int) -> int:
    env = child_env(production_environ(dict(os.environ)))
    subprocess.run(
        [sys.executable, "-m", "bot.content", "load"],
        cwd=settings.PROJECT_ROOT, env=env, check=True,
    )  # fmt: skip
    cluster = build(replicas, env)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for member in cluster.members:
            member.start()
        for member in cluster.members:
            if member.health_url:
                wait_until_up(member.health_url, member.process, member.name)
        cluster.write_state()
        print(
            f"Cluster ready: {cluster.state()['lb_url']} ({replicas} Rasa servers, "
            f"{replicas} action servers, nginx; state in {cluster.work}/state.json). "
            "Ctrl-C stops them all.",
            flush=True,
        )
        while True:
            time.sleep(0.5)
            # Supervised: a server that died is started again; the load
            # balancer skips it meanwhile.
            if restart_dead(cluster.members):
                cluster.write_state()
    except KeyboardInterrupt:
        return 0
    finally:
        stop([m.process for m in reversed(cluster.members) if m.process])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.run.cluster")
    parser.add_argument("--replicas", type=int, help="default BOT_CLUSTER_REPLICAS")
    args = parser.parse_args(argv)
    keep_files_private()
    try:
        replicas = args.replicas or settings.load().cluster_replicas
        return run(replicas)
    except (ClusterError, ServeError, settings.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
