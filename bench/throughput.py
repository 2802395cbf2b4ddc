"""End-to-end speed of the running bot beside Rasa's `rasa init` sample bot,
measured in the same run: throughput and latency at 1, 20 and 100 concurrent
conversations over REST (the action server, the knowledge base and the safety
screen included), the CPU time each server spends per message (steadier
than wall time on a shared machine), cold start, and each process's memory.

Our bot starts as `make run` does (``python -m bot.run.serve``, embedded
profile, its own SQLite files under a temporary directory); the sample bot is
``rasa init --no-prompt`` (trained once, then kept in ``var/bench/sample-bot``)
served by ``rasa run`` on the same SQLite tracker store type. Each conversation
sends its messages one after another (a patient waits for the answer), the
conversations run at once; the first message of each conversation is not
timed (it also starts the session).

    .venv/bin/python bench/throughput.py [--concurrency 1 20 100]
        [--messages 10] [--only ours|sample] [--url RUNNING_BOT]
        [--stored 1000 10000 100000] [--kb-entries 1000 10000]
        [--channel rest|socketio] [--unique]

``--unique`` adds a random word to every message, so that no text is seen
twice: the repeated questions otherwise hit our bot's sentence-vector cache,
which patients' own wording would not.

``--url`` measures a bot that is already running as ours, e.g. ``make
cluster``'s load balancer (http://127.0.0.1:5080), over REST or socket.io
(with the load balancer's page as the Origin), beside the sample bot started
in the same run: no cold start, CPU or memory figures for it.

``--kb-entries`` grows the knowledge base with copies of a reviewed entry
under new topics and facets, starts a new action server (it keeps a copy of
the whole knowledge base for database outages), and measures 1 and 20
conversations and the action server's memory at each size.

``--channel socketio`` sends the same conversations through socket.io, the
website widget's protocol (a python-socketio client per conversation, over
WebSocket, with the chat page's Origin for ours; the sample bot is given
Rasa's socketio channel): a message's time runs from ``user_uttered`` to its
last ``bot_uttered``. Socket.io has no end-of-reply marker, so the number of
replies to each message is taken first from the same conversation over REST.

``--stored`` then measures how our bot's latency, throughput and memory grow
with the conversations already in its store: it copies a real stored
conversation (two messages and their replies) under new sender ids straight
into the SQLite conversation store until it holds each number in turn, and
measures 1 and 20 conversations again at each.

Targets (issue 11, one replica on these 2-core machines): at least 60
messages/s and 4x the sample bot; p95 at most 500 ms at 20 conversations;
median at most 25 ms for one; cold start at most 20 s; a Rasa server at most
800 MB resident.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.run.services import free_port  # noqa: E402

SAMPLE_DIR = ROOT / "var" / "bench" / "sample-bot"
# What each bot is built to understand.
OURS = [
    "can I donate blood while on accutane?", "do I need blood tests every month",
    "how long does a course of isotretinoin last", "my lips are so dry",
    "can i get my eyebrows waxed", "what is ipledge",
    "is it ok to go to the gym on accutane", "what sunscreen should i wear",
    "do i need two forms of birth control", "what does isotretinoin do",
]  # fmt: skip
SAMPLE = [
    "hello", "I am feeling great", "hi there", "I am sad", "yes", "good morning",
    "no", "bye", "are you a bot?", "I am very happy",
]  # fmt: skip


def python() -> str:
    return str(ROOT / ".venv" / "bin" / "python")


def env_base() -> dict[str, str]:
    return {**os.environ, "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip


def wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited; see {log}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within 300 s; see {log}")


class Bot:
    def __init__(
        self, name: str, process, port: int, cold_s: float, url: str = "",
        origin: str = "",
    ) -> None:  # fmt: skip
        self.name, self.process, self.cold_s = name, process, cold_s
        self.url = url or f"http://127.0.0.1:{port}/webhooks/rest/webhook"
        self.port = port
        self.origin = origin  # the page a browser would open socket.io from
        self.channel = "rest"
        self.replies: list[int] = []  # per message, for socket.io (see load)

    def stop(self) -> None:
        if self.process is None:  # a running bot: not this script's to stop
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_ours(work: Path) -> Bot:
    env = {
        **env_base(),
        "BOT_DATABASE_URL": f"sqlite:///{work / 'bot.db'}",
        "BOT_TRACKER_DB": str(work / "conversations.db"),
        "BOT_HANDOFF_SPOOL": str(work / "spool.jsonl"),
        "HANDOFF_WEBHOOK_URL": "",
        "RASA_PORT": str(free_port()),
        # Every message comes from 127.0.0.1, hundreds a minute: no limits.
        "BOT_RATE_PER_SENDER": "0",
        "BOT_RATE_PER_ADDRESS": "0",
        "ACTIONS_PORT": str(free_port()),
        "WEB_PORT": str(free_port()),
    }
    subprocess.run([python(), "-m", "bot.content", "load"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    log = work / "ours.log"
    start = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(
            [python(), "-m", "bot.run.serve"], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    while "Bot ready" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() - start > 300:
            raise SystemExit(f"our bot did not start; see {log}")
        time.sleep(0.1)
    origin = f"http://127.0.0.1:{env['WEB_PORT']}"
    return Bot("ours", process, int(env["RASA_PORT"]), time.monotonic() - start,
               origin=origin)  # fmt: skip


def sample_model() -> Path:
    models = sorted((SAMPLE_DIR / "models").glob("*.tar.gz"))
    if models:
        return models[-1]
    print("training the rasa init sample bot once (var/bench/sample-bot)...",
          flush=True)  # fmt: skip
    shutil.rmtree(SAMPLE_DIR, ignore_errors=True)
    SAMPLE_DIR.mkdir(parents=True)
    subprocess.run(
        [python(), "-m", "rasa", "init", "--no-prompt", "--init-dir", str(SAMPLE_DIR)],
        cwd=SAMPLE_DIR, env=env_base(), check=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return sorted((SAMPLE_DIR / "models").glob("*.tar.gz"))[-1]


def start_sample(work: Path) -> Bot:
    model = sample_model()
    port = free_port()
    endpoints = work / "sample-endpoints.yml"
    endpoints.write_text(
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n"
        f"  db: {work / 'sample-conversations.db'}\n"
    )
    # rasa init's channels, and Rasa's own socketio channel for --channel.
    credentials = work / "sample-credentials.yml"
    credentials.write_text(
        "rest:\nsocketio:\n  user_message_evt: user_uttered\n"
        "  bot_message_evt: bot_uttered\n  session_persistence: true\n"
    )
    log = work / "sample.log"
    start = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(
            [python(), "-m", "rasa", "run", "--model", str(model), "--port", str(port),
             "--interface", "127.0.0.1", "--endpoints", str(endpoints),
             "--credentials", str(credentials)],
            cwd=SAMPLE_DIR, env=env_base(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    wait_for(f"http://127.0.0.1:{port}/webhooks/rest/", process, log)
    return Bot("sample", process, port, time.monotonic() - start)


def repeated(phrases: list[str], count: int) -> list[str]:
    """``count`` messages: the phrases in turn, as often as it takes."""
    return (phrases * (count // len(phrases) + 1))[:count]


# --unique: every message made new text (see ``worded``).
UNIQUE = False


def worded(message: str) -> str:
    """The message as sent: with --unique, followed by a random word, so that
    no message's text was seen before. The same questions repeated hit our
    bot's sentence-vector cache (computing a new message's vector is most of
    its NLU time), which patients' own wording would not; the sample bot has
    no such cache."""
    if not UNIQUE:
        return message
    # Letters only: a word of hex digits ("ac3fd33d") is spelling our safety
    # screen reads as digits for letters ("acefdeed"), a second sentence
    # vector for every message, which patients' words rarely need.
    return f"{message} {''.join(random.choices(string.ascii_lowercase, k=8))}"


def conversation(
    url: str, messages: list[str], need_replies: bool = True
) -> list[float]:
    """Each message's time. The sample bot may rightly say nothing to a
    message whose random word its classifier reads as another intent (its
    stories then predict listening): only our bot must always answer."""
    sender = f"bench-{uuid.uuid4().hex}"
    session = requests.Session()
    times = []
    for index, message in enumerate(messages):
        message = worded(message)
        start = time.perf_counter()
        response = session.post(url, json={"sender": sender, "message": message},
                                timeout=120)  # fmt: skip
        response.raise_for_status()
        assert response.json() or not need_replies, f"no reply to {message!r}"
        if index:  # the first message also starts the session
            times.append(time.perf_counter() - start)
    return times


def reply_counts(url: str, messages: list[str]) -> list[int]:
    """How many replies each message of a new conversation gets (over REST)."""
    sender = f"bench-count-{uuid.uuid4().hex}"
    counts = []
    for message in messages:
        response = requests.post(url, json={"sender": sender, "message": message},
                                 timeout=120)  # fmt: skip
        response.raise_for_status()
        counts.append(len(response.json()))
    return counts


def socket_conversation(bot: Bot, messages: list[str]) -> list[float]:
    """One conversation over socket.io: each message's time to its last reply."""
    # The page's Origin, given as websocket-client's own (as a header it
    # would be sent beside the one websocket-client adds, and refused).
    extra = {"origin": bot.origin} if bot.origin else {}
    client = socketio.Client(reconnection=False, websocket_extra_options=extra)
    arrived: list[float] = []
    changed = threading.Condition()

    def on_reply(_message: dict) -> None:
        with changed:
            arrived.append(time.perf_counter())
            changed.notify_all()

    def on_confirm(*_args) -> None:
        with changed:
            confirmed.set()
            changed.notify_all()

    confirmed = threading.Event()
    client.on("bot_uttered", on_reply)
    client.on("session_confirm", on_confirm)
    session_id = uuid.uuid4().hex
    base = bot.url.split("/webhooks/")[0]
    for attempt in range(5):  # a hundred connecting at once: retry, as a page does
        try:
            client.connect(base, transports=["websocket"], wait_timeout=60)
            break
        except socketio.exceptions.ConnectionError:
            if attempt == 4:
                raise
            time.sleep(0.5 * 2**attempt)
    times = []
    try:
        client.emit("session_request", {"session_id": session_id})
        if not confirmed.wait(60):
            raise SystemExit("socket.io: no session_confirm")
        expected = 0
        for index, message in enumerate(messages):
            expected += bot.replies[index]
            start = time.perf_counter()
            client.emit("user_uttered", {
                "message": worded(message), "session_id": session_id,
                "customData": {"language": "en"},
            })  # fmt: skip
            with changed:
                if not changed.wait_for(lambda n=expected: len(arrived) >= n, 120):
                    raise SystemExit(f"socket.io: no reply to {message!r}")
                last = arrived[expected - 1]
            if index:  # the first message also starts the session
                times.append(last - start)
    finally:
        client.disconnect()
    return times


def load(bot: Bot, concurrency: int, messages: list[str]) -> dict[str, float]:
    def one(_: int) -> list[float]:
        if bot.channel == "socketio":
            return socket_conversation(bot, messages)
        return conversation(bot.url, messages, need_replies=bot.name != "sample")

    if bot.channel == "socketio" and len(bot.replies) < len(messages):
        bot.replies = reply_counts(bot.url, messages)
    # Everyone's first message first, untimed: sessions started, caches warm.
    with ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        results = list(pool.map(one, range(concurrency)))
        wall = time.perf_counter() - start
    times = sorted(t for result in results for t in result)
    sent = concurrency * len(messages)

    def pct(p: float) -> float:
        return times[min(len(times) - 1, int(p * len(times)))] * 1000

    return {"rate": sent / wall, "p50": statistics.median(times) * 1000,
            "p95": pct(0.95), "p99": pct(0.99)}  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far: unlike wall time,
    barely moved by other work on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident (VmRSS, VmHWM) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


ROLES = (
    ("rasa run", "rasa server"), ("rasa_sdk", "action server"),
    ("web_page", "chat page"), ("alerts", "alerts worker"),
)  # fmt: skip


def processes_of(bot: Bot) -> dict[str, int]:
    """The bot's processes by their command (the serve process's children);
    none for a running bot this script did not start."""
    if bot.process is None:
        return {}
    found = {bot.name: bot.process.pid}
    children = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(bot.process.pid)],
        capture_output=True, text=True,
    ).stdout.splitlines()  # fmt: skip
    for line in children:
        pid, _, args = line.strip().partition(" ")
        for marker, name in ROLES:
            if marker in args:
                found[name] = int(pid)
    return found


def seed_conversations(bot: Bot, database: Path, total: int) -> int:
    """Copy a stored two-message conversation under new sender ids until the
    store holds ``total`` conversations; the number it holds after."""
    import sqlite3

    sample = f"bench-seed-{uuid.uuid4().hex}"
    conversation(bot.url, OURS[:2])  # a real conversation to copy ...
    with sqlite3.connect(database, timeout=30) as connection:
        held = connection.execute(
            "SELECT COUNT(DISTINCT sender_id) FROM events"
        ).fetchone()[0]
        template = connection.execute(
            "SELECT type_name, timestamp, intent_name, action_name, data FROM events "
            "WHERE sender_id = (SELECT sender_id FROM events ORDER BY id DESC LIMIT 1) "
            "ORDER BY id"
        ).fetchall()
        while held < total:
            batch = min(5000, total - held)
            rows = [
                (f"{sample}-{held + n}", *event)
                for n in range(batch)
                for event in template
            ]
            connection.executemany(
                "INSERT INTO events (sender_id, type_name, timestamp, intent_name, "
                "action_name, data) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            connection.commit()
            held += batch
    return held


def growth(bot: Bot, database: Path, totals: list[int], messages: list[str]) -> None:
    print("== ours, with conversations already stored (SQLite):")
    rasa = processes_of(bot).get("rasa server")
    for total in totals:
        held = seed_conversations(bot, database, total)
        conversation(bot.url, messages[:2])  # warm-up
        one, twenty = load(bot, 1, messages), load(bot, 20, messages)
        rss = memory_mb(rasa)[0] if rasa else 0.0
        size = sum(p.stat().st_size for p in database.parent.glob(database.name + "*"))
        print(f"  {held:>7} stored: 1 conversation p50 {one['p50']:6.1f} ms, "
              f"p95 {one['p95']:6.1f} ms; 20: {twenty['rate']:5.1f} msg/s, "
              f"p95 {twenty['p95']:6.1f} ms; rasa server {rss:.0f} MB; "
              f"store {size / 1e6:.0f} MB", flush=True)  # fmt: skip


def grow_knowledge_base(database: Path, total: int) -> int:
    """Copy a reviewed entry under new topics and facets into the knowledge
    base until it holds ``total`` entries; how many it holds after."""
    import sqlite3

    with sqlite3.connect(database, timeout=30) as connection:
        held = connection.execute("SELECT COUNT(*) FROM kb_entries").fetchone()[0]
        row = connection.execute(
            "SELECT * FROM kb_entries WHERE id = 'sun_protection'"
        ).fetchone()
        columns = [c[1] for c in connection.execute("PRAGMA table_info(kb_entries)")]
        copies = []
        for index in range(held, total):
            values = dict(zip(columns, row, strict=True))
            values.update(id=f"bench-{index}", topic=f"bench_topic_{index % 500}",
                          facet=f"facet_{index}")  # fmt: skip
            copies.append(tuple(values[c] for c in columns))
        marks = ", ".join("?" for _ in columns)
        connection.executemany(f"INSERT INTO kb_entries VALUES ({marks})", copies)
        return connection.execute("SELECT COUNT(*) FROM kb_entries").fetchone()[0]


def restart_action_server(bot: Bot) -> int:
    """Kill the action server (the supervisor starts a new one, which reads
    the knowledge base afresh); the new one's pid once it answers."""
    import signal

    old = processes_of(bot)["action server"]
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = processes_of(bot).get("action server")
        if new and new != old:
            try:
                conversation(bot.url, OURS[:2])  # answered: it is up
                return new
            except (requests.RequestException, AssertionError):
                pass
        time.sleep(0.5)
    raise SystemExit("the action server did not come back")


def knowledge_growth(
    bot: Bot, database: Path, totals: list[int], messages: list[str]
) -> None:
    print("== ours, with a larger knowledge base (synthetic entries):")
    for total in totals:
        held = grow_knowledge_base(database, total)
        actions = restart_action_server(bot)
        conversation(bot.url, messages[:2])  # warm-up: the copy is read
        one, twenty = load(bot, 1, messages), load(bot, 20, messages)
        rss = memory_mb(actions)[0]
        print(f"  {held:>7} entries: 1 conversation p50 {one['p50']:6.1f} ms, "
              f"p95 {one['p95']:6.1f} ms; 20: {twenty['rate']:5.1f} msg/s, "
              f"p95 {twenty['p95']:6.1f} ms; action server {rss:.0f} MB",
              flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--only", choices=("ours", "sample"))
    parser.add_argument("--channel", choices=("rest", "socketio"), default="rest")
    parser.add_argument(
        "--unique", action="store_true",
        help="a random word after every message: no text is seen twice",
    )  # fmt: skip
    parser.add_argument(
        "--stored",
        type=int,
        nargs="*",
        default=[],
        help="conversations stored before measuring ours again",
    )
    parser.add_argument(
        "--kb-entries",
        type=int,
        nargs="*",
        default=[],
        help="knowledge-base entries (synthetic copies added) to measure ours with",
    )
    parser.add_argument(
        "--url",
        help="measure a running bot as ours (e.g. make cluster's load balancer, "
        "http://127.0.0.1:5080), beside the sample bot unless --only ours: "
        "no start-up, CPU or memory figures for it",
    )
    args = parser.parse_args()
    if args.url and (args.stored or args.kb_entries or args.only == "sample"):
        parser.error("--url measures a running bot as ours, as it is")
    global UNIQUE
    UNIQUE = args.unique
    work = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    bots = []
    try:
        if args.only != "ours":
            bots.append((start_sample(work), SAMPLE))
        if args.url:  # a running bot (e.g. the cluster): ours, in the same run
            base = args.url.rstrip("/")
            running = Bot("ours", None, 0, 0.0, f"{base}/webhooks/rest/webhook",
                          origin=base)  # fmt: skip
            bots.append((running, OURS))
        elif args.only != "sample":
            bots.append((start_ours(work), OURS))
        figures: dict[tuple[str, int], dict[str, float]] = {}
        for bot, phrases in bots:
            bot.channel = args.channel
            started = (f"at {args.url}" if bot.process is None
                       else f"cold start {bot.cold_s:.1f} s")  # fmt: skip
            print(f"== {bot.name}: {started}; over {bot.channel}", flush=True)
            messages = repeated(phrases, args.messages)
            # Warm-up, untimed: the first messages load what each server
            # loads lazily, and would be counted against one conversation.
            load(bot, 4, messages)
            servers = {
                name: pid
                for name, pid in processes_of(bot).items()
                if name in ("rasa server", "action server", "sample")
            }  # none for a running bot: its processes may be anywhere
            for concurrency in args.concurrency:
                used = {name: cpu_seconds(pid) for name, pid in servers.items()}
                row = load(bot, concurrency, messages)
                figures[(bot.name, concurrency)] = row
                sent = concurrency * len(messages)
                cpu = ", ".join(
                    f"{name} {(cpu_seconds(pid) - used[name]) / sent * 1000:.1f}"
                    for name, pid in servers.items()
                )
                print(f"  {concurrency:>3} conversations: {row['rate']:6.1f} msg/s, "
                      f"p50 {row['p50']:6.1f} ms, p95 {row['p95']:6.1f} ms, "
                      f"p99 {row['p99']:6.1f} ms"
                      + (f"; CPU ms per message: {cpu}" if cpu else ""),
                      flush=True)  # fmt: skip
            for name, pid in processes_of(bot).items():
                if name == bot.name and bot.name == "ours":
                    continue  # the supervisor itself
                rss, peak = memory_mb(pid)
                print(f"  memory {name}: {rss:.0f} MB resident, peak {peak:.0f} MB")
        for bot, phrases in bots:
            if bot.name == "ours" and args.stored:
                messages = repeated(phrases, args.messages)
                growth(bot, work / "conversations.db", sorted(args.stored), messages)
            if bot.name == "ours" and args.kb_entries:
                messages = repeated(phrases, args.messages)
                knowledge_growth(
                    bot, work / "bot.db", sorted(args.kb_entries), messages
                )
        if len(bots) == 2:
            print("== ours / sample, throughput:")
            for concurrency in args.concurrency:
                ours = figures[("ours", concurrency)]["rate"]
                sample = figures[("sample", concurrency)]["rate"]
                print(f"  {concurrency:>3} conversations: {ours / sample:.2f}x")
    finally:
        for bot, _ in bots:
            bot.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
