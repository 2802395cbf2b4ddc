"""Train the Rasa model only when its inputs change.

The model's file name is a fingerprint of everything training reads (config,
domain, NLU data, stories, rules) and of the versions that shape the result;
when ``models/<fingerprint>.tar.gz`` exists, training is skipped. A lock file
makes sure only one training runs at a time on the machine (2 cores).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bot import settings

TRAINING_INPUTS = (
    "config.yml",
    "domain.yml",
    "data/nlu",
    "data/stories",
    "data/rules.yml",
)
VERSIONED_PACKAGES = ("rasa", "spacy", "spacy-lookups-data")


def input_files(root: Path, config: str) -> list[Path]:
    files: list[Path] = []
    for name in (config, *TRAINING_INPUTS[1:]):
        path = root / name
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in {".yml", ".yaml"})
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"training input {path} is missing")
    return files


def fingerprint(root: Path = settings.PROJECT_ROOT, config: str = "config.yml") -> str:
    digest = hashlib.sha256()
    for package in VERSIONED_PACKAGES:
        digest.update(f"{package}=={metadata.version(package)}\n".encode())
    for path in input_files(root, config):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(root: Path = settings.PROJECT_ROOT, config: str = "config.yml") -> Path:
    stem = Path(config).stem
    return root / "models" / f"{stem}-{fingerprint(root, config)}.tar.gz"


def current_model() -> Path:
    """The model to serve: ``BOT_MODEL`` if set, else the one for today's inputs."""
    return settings.load().model or model_path()


def train(root: Path = settings.PROJECT_ROOT, config: str = "config.yml") -> Path:
    """The model for the current inputs, training it first if needed."""
    target = model_path(root, config)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".training.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one training at a time
        if target.exists():
            print(f"model up to date: {target.relative_to(root)}")
            return target
        print(f"training {target.relative_to(root)} (inputs changed)", flush=True)
        command = [
            sys.executable, "-m", "rasa", "train",
            "--config", config,
            "--out", str(target.parent),
            "--fixed-model-name", target.name.removesuffix(".tar.gz"),
        ]  # fmt: skip
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        subprocess.run(command, cwd=root, check=True, env=env)
        if not target.exists():
            raise RuntimeError(f"rasa train finished but {target} is missing")
        return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.run.training")
    parser.add_argument("command", choices=["train", "path", "fingerprint"])
    parser.add_argument("--config", default="config.yml")
    args = parser.parse_args(argv)
    if args.command == "train":
        train(config=args.config)
    elif args.command == "path":
        print(
            current_model()
            if args.config == "config.yml"
            else model_path(config=args.config)
        )
    else:
        print(fingerprint(config=args.config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
