"""Where the project's files live and what the environment configures."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
KNOWLEDGE_DIR = DATA_DIR / "knowledge"
VAR_DIR = PROJECT_ROOT / "var"
MODELS_DIR = PROJECT_ROOT / "models"
SPACY_PIPELINE_DIR = VAR_DIR / "spacy" / "en_isotretinoin_lookup"


def database_url() -> str:
    """The SQLAlchemy URL of the bot's own database (knowledge base, handoffs).

    ``BOT_DATABASE_URL`` overrides the embedded SQLite default.
    """
    url = os.environ.get("BOT_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{VAR_DIR / 'bot.db'}"


def clinic_file() -> Path:
    """The clinic's details: ``BOT_CLINIC_FILE`` or ``data/clinic.yml``."""
    return Path(os.environ.get("BOT_CLINIC_FILE", DATA_DIR / "clinic.yml"))
