"""Safety screen figures on two message sets.

- tests/data/safety_messages.yml: the development set; the phrase lists were
  tuned on it, so its figures show that every case there is handled.
- tests/data/safety_holdout.yml: written independently; measured once before
  any tuning (crisis recall 56.7%, concern 75.0%, 1 false crisis in 100), then
  used to generalise the lists by warning-sign category. Now a regression set.
- tests/data/safety_holdout_2.yml: written independently after that; the
  phrase lists were extended by category with its misses in view once
  (issue 8), so it is a regression set now.
- tests/data/safety_blind_2026_12{,_b,...,_k}.yml: blind sets, each scored
  end to end by bench/safety_eval.py over the running bot while untouched,
  regression sets since.

Prints crisis recall, concern recall (as at least a concern), the false-alarm
rates on ordinary messages (crisis, and concern where the set does not mark a
concern as tolerable), and the screen's own time per message. Targets: crisis
recall 100%, no ordinary message raised as a crisis, under 2 ms per message.

    .venv/bin/python bench/safety.py [--show-misses] [--with-model]

--with-model also parses every message with the trained model (classifier
plus the safety component, as the running bot does) and prints what patients
get end to end: a crisis reply, a handoff of any level, or neither.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import settings  # noqa: E402
from bot.safety.classifier import default_classifier  # noqa: E402
from bot.safety.screen import Level, SafetyScreen  # noqa: E402
from bot.safety.text import normalise  # noqa: E402

DATA = settings.PROJECT_ROOT / "tests" / "data"
SETS = {
    "development set (tuned on)": DATA / "safety_messages.yml",
    "first held-out set (tuned on after one measurement)": DATA / "safety_holdout.yml",
    "second held-out set (its misses seen once)": DATA / "safety_holdout_2.yml",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--with-model", action="store_true")
    parser.add_argument("--phrases-only", action="store_true")
    args = parser.parse_args()
    screen = (
        SafetyScreen.from_files()
        if args.phrases_only
        else SafetyScreen.from_files(classifier=default_classifier())
    )
    ok = True
    for title, path in SETS.items():
        if not path.exists():
            continue
        print(f"== {title}: {path.name}")
        sets = yaml.safe_load(path.read_text(encoding="utf-8"))
        ok = report(screen, sets, args.show_misses) and ok
        if args.with_model:
            report_end_to_end(sets, args.show_misses)
    return 0 if ok else 1


_agent = None


def parse_intent(text: str) -> str:
    """The intent the running bot acts on (classifier + safety component)."""
    import asyncio
    import logging

    global _agent
    if _agent is None:
        from rasa.core.agent import Agent
        from rasa.utils.log_utils import configure_structlog

        from bot.run import training

        configure_structlog(logging.WARNING)  # Rasa's debug lines carry the text
        _agent = Agent.load(str(training.current_model()))
    return asyncio.run(_agent.parse_message(text))["intent"]["name"]


def report_end_to_end(sets: dict, show_misses: bool) -> None:
    def outcomes(key: str) -> list[tuple[str, str]]:
        return [(item["text"], parse_intent(item["text"])) for item in sets[key]]

    crisis, concern, ordinary = (outcomes(k) for k in ("crisis", "concern", "ordinary"))
    handoff = {"crisis", "mental_health_concern"}

    def share(items: list, test) -> str:
        count = sum(1 for _, intent in items if test(intent))
        return f"{count / len(items):.1%} ({count}/{len(items)})"

    print("  end to end (model + screen):")
    print(f"  crisis -> crisis reply:     {share(crisis, lambda i: i == 'crisis')}")
    print(f"  crisis -> any handoff:      {share(crisis, lambda i: i in handoff)}")
    print(f"  concern -> any handoff:     {share(concern, lambda i: i in handoff)}")
    print(f"  ordinary -> crisis reply:   {share(ordinary, lambda i: i == 'crisis')}")
    print(f"  ordinary -> concern:        "
          f"{share(ordinary, lambda i: i == 'mental_health_concern')}")  # fmt: skip
    if show_misses:
        for text, intent in crisis:
            if intent not in handoff:
                print(f"    crisis without handoff: {text!r} -> {intent}")


def report(screen: SafetyScreen, sets: dict, show_misses: bool) -> bool:
    def levels(key: str) -> list[tuple[dict, Level | None]]:
        return [
            (item, screen.screen(item["text"]).level) for item in sets.get(key) or []
        ]

    crisis = levels("crisis")
    concern = levels("concern")
    informational = levels("informational_crisis_words")
    ordinary = levels("ordinary")
    urgent = (Level.CRISIS, Level.POSSIBLE)
    missed_crisis = [i for i, lv in crisis if lv not in urgent]
    missed_concern = [i for i, lv in concern if lv is None]
    false_crisis = [i for i, lv in ordinary if lv is Level.CRISIS]
    false_question = [i for i, lv in ordinary if lv is Level.POSSIBLE]
    false_concern = [
        i
        for i, lv in ordinary
        if lv is Level.CONCERN and "tolerable" not in (i.get("note") or "")
    ]

    texts = [item["text"] for key in sets for item in sets[key] or []]
    for text in texts[:50]:  # warm-up
        screen.screen(text)
    timings = []
    for _ in range(5):
        for text in texts:
            normalise.cache_clear()  # time each message as if seen first
            start = time.perf_counter()
            screen.screen(text)
            timings.append(time.perf_counter() - start)

    def rate(items: list, test) -> str:
        count = sum(1 for _, lv in items if test(lv))
        return f"{count / len(items):.1%} ({count}/{len(items)})" if items else "-"

    median_ms = statistics.median(timings) * 1000
    p99_ms = sorted(timings)[int(len(timings) * 0.99)] * 1000
    print(f"crisis -> crisis reply:      {rate(crisis, lambda lv: lv is Level.CRISIS)}")
    print(f"crisis -> reply or question: {rate(crisis, lambda lv: lv in urgent)}")
    print(f"concern -> flagged:          {rate(concern, lambda lv: lv is not None)}")
    if informational:
        print(
            "informational (suicide named): question "
            f"{rate(informational, lambda lv: lv is Level.POSSIBLE)}, crisis "
            f"{rate(informational, lambda lv: lv is Level.CRISIS)}"
        )
    print(
        f"ordinary -> crisis reply:    {rate(ordinary, lambda lv: lv is Level.CRISIS)}"
    )
    print(f"ordinary -> question:        "
          f"{rate(ordinary, lambda lv: lv is Level.POSSIBLE)}")  # fmt: skip
    print(f"ordinary -> concern:         {len(false_concern)} not tolerable")
    print(
        f"screen time:                 median {median_ms:.3f} ms, p99 {p99_ms:.3f} ms "
        f"per message ({len(timings)} runs)"
    )
    if show_misses:
        for title, items in [
            ("missed crisis", missed_crisis),
            ("missed concern", missed_concern),
            ("false crisis", false_crisis),
            ("false question", false_question),
            ("false concern", false_concern),
        ]:
            for item in items:
                print(f"  {title}: {item['text']!r} -> {screen.screen(item['text'])}")
    return not missed_crisis and not false_crisis


if __name__ == "__main__":
    sys.exit(main())
