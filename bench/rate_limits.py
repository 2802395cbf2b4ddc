"""The rate limits as patients meet them, on the real bot with its default
limits (20 messages a conversation and 60 an address per 60 s; a flagged
message never limited).

Starts the bot as `make run` does (``bench/channels.py``'s ``start_bot``, the
limits left at their defaults), then:

- REST: one conversation sends ``--burst`` questions back to back: how many
  were answered, how many got 429 (with its ``Retry-After``), the time of each
  kind of reply; then a crisis message in the same burst, and whether it got
  the crisis reply and a handoff;
- per address: new conversations from this machine until one is refused;
- SMS: one number texts ``--burst`` questions through the signed webhook:
  how many answers, how many "please wait" texts (one per window), how many
  texts got no reply.

    .venv/bin/python bench/rate_limits.py [--burst 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.channels import sms_round_trip, start_bot  # noqa: E402
from bot import settings  # noqa: E402
from bot.run import training  # noqa: E402
from tests.conftest import FakeTwilio  # noqa: E402

QUESTION = "can i get my eyebrows waxed"
CRISIS = "i want to kill myself"


def post(rasa: str, sender: str, message: str) -> tuple[requests.Response, float]:
    start = time.perf_counter()
    response = requests.post(
        f"{rasa}/webhooks/rest/webhook",
        json={"sender": sender, "message": message},
        timeout=60,
    )
    return response, (time.perf_counter() - start) * 1000


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"median {statistics.median(values):.1f} ms, max {max(values):.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=30)
    args = parser.parse_args()
    if not training.current_model().exists():
        raise SystemExit("no trained model: run `make train`")
    limits = settings.load({})
    print(
        f"limits: {limits.rate_per_sender} per conversation, "
        f"{limits.rate_per_address} per address, per {limits.rate_window_s:.0f} s"
    )
    twilio = FakeTwilio()
    with tempfile.TemporaryDirectory() as tmp:
        process, env = start_bot(
            Path(tmp), twilio,
            BOT_RATE_PER_SENDER=str(limits.rate_per_sender),
            BOT_RATE_PER_ADDRESS=str(limits.rate_per_address),
            BOT_RATE_WINDOW_S=str(limits.rate_window_s),
        )  # fmt: skip
        rasa = f"http://127.0.0.1:{env['RASA_PORT']}"
        try:
            # REST, one conversation
            sender = f"burst-{uuid.uuid4().hex[:8]}"
            answered, limited, retry_after = [], [], set()
            for _ in range(args.burst):
                response, took = post(rasa, sender, QUESTION)
                if response.status_code == 429:
                    limited.append(took)
                    retry_after.add(response.headers.get("Retry-After"))
                else:
                    answered.append(took)
            crisis, crisis_ms = post(rasa, sender, CRISIS)
            engine = create_engine(env["BOT_DATABASE_URL"])
            with engine.connect() as connection:
                levels = connection.execute(
                    text("SELECT level FROM handoffs WHERE sender_id = :s"),
                    {"s": sender},
                ).scalars().all()  # fmt: skip
            print(f"REST, {args.burst} messages of one conversation: "
                  f"{len(answered)} answered ({ms(answered)}), "
                  f"{len(limited)} refused with 429 ({ms(limited)}), "
                  f"Retry-After {sorted(retry_after)}")  # fmt: skip
            crisis_texts = " ".join(m.get("text", "") for m in crisis.json())
            print(f"REST, a crisis message in that burst: HTTP {crisis.status_code}, "
                  f"988 in the reply: {'988' in crisis_texts}, handoffs {levels}, "
                  f"{crisis_ms:.0f} ms")  # fmt: skip
            # REST, new conversations from this address
            sent = args.burst + 1  # the conversation's messages counted too
            while True:
                response, _ = post(rasa, f"addr-{uuid.uuid4().hex[:8]}", "hi")
                if response.status_code == 429:
                    break
                sent += 1
                if sent > 1000:
                    break
            # Every message counts for its address, the refused ones too;
            # the crisis message does not.
            counted = sent - 1
            print(f"REST, per address: {counted} counted messages from this "
                  "address passed its limit, the next was refused")  # fmt: skip
            # SMS, one number (Twilio's address is everyone's: by number only)
            number = f"+1402555{uuid.uuid4().int % 10_000:04d}"
            times, outcomes = [], []
            for _ in range(args.burst):
                before = len(twilio.to(number))
                times.append(sms_round_trip(rasa, env, number, QUESTION) * 1000)
                new = twilio.to(number)[before:]
                if not new:
                    outcomes.append("none")
                else:
                    outcomes.append("wait" if "wait a minute" in new[0] else "answer")
            print(f"SMS, {args.burst} texts from one number: "
                  f"{outcomes.count('answer')} answered, "
                  f"{outcomes.count('wait')} got the 'please wait' text, "
                  f"{outcomes.count('none')} got no reply; webhook "
                  f"{ms(times)}")  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=60)
            twilio.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
