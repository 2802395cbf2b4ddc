"""Run the bot's processes in the foreground: the action server, the staff
alerts worker, the Rasa server and the chat page.

``python -m bot.run.serve`` starts them all, waits until each answers, prints
one "ready" line, starts again any that dies (``bot.run.supervision``), and
stops them all on Ctrl-C.
``python -m bot.run.serve --shell`` starts the action server, the alerts
worker and ``rasa shell``. ``--only ROLE`` runs one of them (rasa, actions,
web, alerts) in the foreground, as a container does.

Every setting (addresses, ports, files) is in ``bot.settings``; the children
get the resolved values in their environment.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bot import settings
from bot.channels import web_page
from bot.run import training
from bot.run.supervision import Member, restart_dead, write_state

STARTUP_TIMEOUT_S = 300


class ServeError(RuntimeError):
    pass


def child_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the children: this one (or ``environ``), with every
    setting resolved (the endpoints file expands ${ACTIONS_URL},
    ${BOT_TRACKER_DB}, and in production the tracker store's and Redis's
    parts)."""
    environ = dict(os.environ if environ is None else environ)
    env = {**environ, **settings.load(environ).as_environ()}
    env["SANIC_HOST"] = env["ACTIONS_HOST"]  # rasa_sdk binds 0.0.0.0 without it
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # One BLAS thread per process: one message's small matrix products gain
    # nothing from a second thread, whose spinning nearly doubled the Rasa
    # server's CPU per new message when the sentence encoder ran in NumPy
    # (70 -> 40 ms, the same throughput: bench/throughput.py --unique), CPU
    # the action server and other replicas on the machine need. (ONNX
    # Runtime, which runs the encoder now, is given one thread itself.)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def wait_until_up(url: str, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeError(f"{name} exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise ServeError(f"{name} did not answer at {url} within {STARTUP_TIMEOUT_S} s")


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


ROLES = ("rasa", "actions", "web", "alerts")


def role_command(
    role: str, env: dict[str, str], model: Path | None = None
) -> list[str]:
    """The command of one of the bot's servers (`make run` starts them all,
    `make cluster` several of each, a container one)."""
    if role == "rasa":
        model = model or training.current_model()
        if not model.exists():
            raise ServeError(f"no trained model at {model}: run `make train` first")
        return rasa_command("run", model, env)
    if role == "actions":
        return [sys.executable, "-m", "rasa_sdk", "--actions", "actions",
                "--port", env["ACTIONS_PORT"]]  # fmt: skip
    module = {"web": "bot.channels.web_page", "alerts": "bot.safety.alerts"}[role]
    return [sys.executable, "-m", module]


def rasa_command(mode: str, model: Path, env: dict[str, str]) -> list[str]:
    common = [
        "--model", str(model),
        "--endpoints", str(settings.load(env).endpoints_file),
        "--port", env["RASA_PORT"],
        # `rasa shell` serves too (its REST webhook, on the real conversation
        # store): on this machine only, unless RASA_HOST says otherwise.
        "--interface", env["RASA_HOST"],
    ]  # fmt: skip
    if mode == "shell":
        return [sys.executable, "-m", "rasa", "shell", *common]
    command = [
        sys.executable, "-m", "rasa", "run", *common,
        "--credentials", "credentials.yml",
        # No --cors: the socket.io channel (bot/channels/socketio.py) allows
        # the chat page's origin itself, for polling and WebSockets alike.
    ]  # fmt: skip
    # Rasa's HTTP API reads and rewrites any conversation: off unless staff
    # set a token, and then only with it. Rasa takes the token as an argument
    # only (other local users can see a process's arguments: where that
    # matters, run the server in its own container, as deploy/ does).
    token = settings.load(env).rasa_api_token.get_secret_value()
    if token:
        command += ["--enable-api", "--auth-token", token]
    return command


def serve(shell: bool = False, model: Path | None = None) -> int:
    env = child_env()
    config = settings.load(env)
    model = model or training.current_model()
    if not model.exists():
        raise ServeError(f"no trained model at {model}: run `make train` first")
    actions_url = f"http://{env['ACTIONS_HOST']}:{env['ACTIONS_PORT']}"
    rasa_url = f"http://{env['RASA_HOST']}:{env['RASA_PORT']}"
    page_url = web_page.web_url(config)
    members = [
        Member("actions", role_command("actions", env), env, actions_url,
               f"{actions_url}/health"),
        Member("alerts", role_command("alerts", env), env, None, None),
    ]  # fmt: skip
    if not shell:
        members += [
            Member("web", role_command("web", env), env, page_url, f"{page_url}/"),
            Member("rasa", rasa_command("run", model, env), env, rasa_url,
                   f"{rasa_url}/webhooks/rest/"),
        ]  # fmt: skip
    shell_process: subprocess.Popen | None = None

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    def save_state() -> None:
        write_state(
            config.run_state_file,
            {"members": {member.name: member.state() for member in members}},
        )

    # Ctrl-C and SIGTERM both stop everything, even where SIGINT arrives
    # ignored (a job started in the background by a non-interactive shell).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for member in members:
            member.start()
        for member in members:
            if member.health_url:
                wait_until_up(member.health_url, member.process, member.name)
        save_state()
        if shell:
            shell_process = subprocess.Popen(
                rasa_command("shell", model, env), cwd=settings.PROJECT_ROOT, env=env
            )
        else:
            print(
                f"Bot ready: chat page at {page_url}, "
                f"chat at {rasa_url}/webhooks/rest/webhook "
                f"(socket.io on {rasa_url}), actions at {actions_url}. "
                "Ctrl-C stops them all.",
                flush=True,
            )
        # Supervised: a server that dies is started again (bot.run.supervision);
        # only the staff's own `rasa shell` ending ends the rest.
        while shell_process is None or shell_process.poll() is None:
            time.sleep(0.5)
            if restart_dead(members):
                save_state()
        return shell_process.returncode
    except KeyboardInterrupt:
        return 0
    finally:
        stop([p for p in (shell_process, *(m.process for m in reversed(members))) if p])


def run_only(role: str, model: Path | None = None) -> int:
    """Replace this process with one server, its settings resolved as for
    ``make run`` (the containers in deploy/ start each role this way)."""
    env = child_env()  # an unusable setting stops here, named
    command = role_command(role, env, model)
    os.chdir(settings.PROJECT_ROOT)
    os.execve(command[0], command, env)


def keep_files_private() -> None:
    """Files the servers create (conversations, handoff spool, SMS state) are
    the bot's user's only, and so is var/ (umask 077, inherited by children)."""
    os.umask(0o077)
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    settings.VAR_DIR.chmod(0o700)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.run.serve")
    parser.add_argument("--shell", action="store_true", help="rasa shell for staff")
    parser.add_argument("--model", type=Path, help="default: the current model")
    parser.add_argument(
        "--only", choices=ROLES, help="run this one server in the foreground"
    )
    args = parser.parse_args(argv)
    keep_files_private()
    try:
        if args.only:
            return run_only(args.only, args.model)
        return serve(shell=args.shell, model=args.model)
    except (ServeError, web_page.WebPageError, settings.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
