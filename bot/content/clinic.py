"""The clinic's details (name, phone, address, hours, booking link).

They live in one reviewed file, ``data/clinic.yml``; every answer that mentions
them fills ``{clinic_name}``-style fields from it. The file is read again when
it changes, so an edit needs no restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bot import settings

REQUIRED_FIELDS = ("name", "phone", "address", "hours", "booking_url")


class ClinicConfigError(ValueError):
    """The clinic file is missing, unreadable or lacks a field."""


@dataclass(frozen=True)
class Clinic:
    name: str
    phone: str
    address: str
    hours: str
    booking_url: str
    placeholders: bool

    def fields(self) -> dict[str, str]:
        """The values answers may use, by placeholder name."""
        return {
            "clinic_name": self.name,
            "clinic_phone": self.phone,
            "clinic_address": self.address,
            "clinic_hours": self.hours,
            "booking_url": self.booking_url,
            # Not the clinic's: how long the bot keeps conversations (privacy).
            "retention_days": str(settings.load().retention_days),
        }


PLACEHOLDER_NAMES = frozenset(
    Clinic("", "", "", "", "", placeholders=True).fields()  # names only
)

_cache: dict[Path, tuple[float, Clinic]] = {}


def load_clinic(path: Path | None = None) -> Clinic:
    """The clinic's details from ``path`` (default: ``BOT_CLINIC_FILE``)."""
    path = Path(path or settings.clinic_file())
    try:
        mtime = path.stat().st_mtime
    except OSError as error:
        raise ClinicConfigError(
            f"{path}: cannot read the clinic file ({error})"
        ) from error
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ClinicConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(raw, dict):
        raise ClinicConfigError(f"{path}: expected a mapping of clinic details")
    missing = [f for f in REQUIRED_FIELDS if not str(raw.get(f) or "").strip()]
    if missing:
        raise ClinicConfigError(f"{path}: missing field(s) {', '.join(missing)}")
    clinic = Clinic(
        **{f: str(raw[f]).strip() for f in REQUIRED_FIELDS},
        placeholders=bool(raw.get("placeholders", False)),
    )
    _cache[path] = (mtime, clinic)
    return clinic
