"""Full training time, as a fresh clone's `make test` trains: the safety
classifier (``python -m bot.safety.classifier train``), then Rasa's model
(``rasa train``: the NLU pipeline and the dialogue policies), each from
nothing: a new classifier directory, a new model directory and an empty Rasa
graph cache, all temporary (the project's own model and caches are left
alone). Prints each step's wall time and peak memory.

The sentence vectors of the training texts are kept between trainings
(``var/sentence-vectors/``, written by the first training that computes
them). By default they are used, as in every training after a clone's first;
``--cold`` moves them aside for the run (and puts them back), as on a fresh
clone. One Rasa training at a time: run nothing else that trains meanwhile.

    .venv/bin/python bench/training_time.py [--cold]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.nlu.sentence_encoder import STORE  # noqa: E402


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of ``command`` (GNU time's %M)."""
    with tempfile.NamedTemporaryFile(suffix=".time") as report:
        start = time.monotonic()
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
            cwd=ROOT, env=env, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.monotonic() - start
        peak_kb = int(Path(report.name).read_text().split()[-1])
    return seconds, peak_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="without stored vectors")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        raise SystemExit("needs GNU time (/usr/bin/time)")
    python = sys.executable
    aside = None
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        if args.cold and STORE.exists():
            aside = work / STORE.name
            shutil.move(STORE, aside)
        env = {
            **os.environ,
            "RASA_CACHE_DIRECTORY": str(work / "rasa-cache"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "RASA_TELEMETRY_ENABLED": "false",
        }
        try:
            classifier = timed(
                [python, "-m", "bot.safety.classifier", "train",
                 "--cache-dir", str(work / "safety")], env,
            )  # fmt: skip
            rasa = timed(
                [python, "-m", "rasa", "train", "--config", "config.yml",
                 "--out", str(work / "models")], env,
            )  # fmt: skip
        finally:
            if aside is not None:
                STORE.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(aside, STORE)
    state = "cold (no stored sentence vectors)" if args.cold else "stored vectors"
    print(f"full training, {state}:")
    print(f"  safety classifier: {classifier[0]:6.1f} s, peak {classifier[1]:5.0f} MB")
    print(f"  rasa train:        {rasa[0]:6.1f} s, peak {rasa[1]:5.0f} MB")
    print(f"  total:             {classifier[0] + rasa[0]:6.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
