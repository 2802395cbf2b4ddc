"""Patients' phone numbers, kept out of clear text.

A number is never a conversation id, a log field or a database value as it
is: the SMS channel turns it into a keyed hash (the sender id in the tracker
store, the key of opt-outs and menus), and keeps the number staff need to call
back only encrypted (Fernet) with a key from the environment.

Environment:
- ``SMS_SENDER_KEY``: the secret of the keyed hash (any long random text);
  changing it starts new conversations for every number.
- ``SMS_CONTACT_KEY``: a Fernet key that encrypts call-back numbers; staff
  need it to read one
  (``python -m bot.channels.sms.phone_numbers new-key`` makes one).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sys

from cryptography.fernet import Fernet, InvalidToken

from bot import settings

SENDER_PREFIX = "sms-"
_NOT_DIGITS = re.compile(r"[^\d+]")


class PhoneNumberKeyError(RuntimeError):
    """A key is missing or malformed; the message names the variable."""


def normalise(number: str) -> str:
    """``+1 (402) 555-0123`` and ``+14025550123`` are the same number."""
    return _NOT_DIGITS.sub("", number.strip())


def masked(number: str) -> str:
    """The last two digits only, for a staff screen that must not show more."""
    digits = normalise(number)
    return f"…{digits[-2:]}" if len(digits) >= 2 else "…"


class SenderIds:
    """Numbers to sender ids: the same number always gives the same id."""

    def __init__(self, key: str) -> None:
        if len(key) < 16:
            raise PhoneNumberKeyError("SMS_SENDER_KEY must be at least 16 characters")
        self._key = key.encode("utf-8")

    @classmethod
    def from_env(cls) -> SenderIds:
        key = settings.load().sms_sender_key.get_secret_value()
        if not key:
            raise PhoneNumberKeyError("SMS_SENDER_KEY is not set")
        return cls(key)

    def sender_id(self, number: str) -> str:
        digest = hmac.new(self._key, normalise(number).encode(), hashlib.sha256)
        return SENDER_PREFIX + digest.hexdigest()[:32]


class ContactCipher:
    """Encrypts and decrypts call-back numbers (Fernet: AES-128-CBC + HMAC)."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise PhoneNumberKeyError(
                "SMS_CONTACT_KEY is not a Fernet key "
                "(make one with: python -m bot.channels.sms.phone_numbers new-key)"
            ) from None

    @classmethod
    def from_env(cls) -> ContactCipher:
        key = settings.load().sms_contact_key.get_secret_value()
        if not key:
            raise PhoneNumberKeyError("SMS_CONTACT_KEY is not set")
        return cls(key)

    def encrypt(self, number: str) -> str:
        return self._fernet.encrypt(normalise(number).encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise PhoneNumberKeyError(
                "this number was encrypted with another SMS_CONTACT_KEY"
            ) from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["new-key"]:
        print(
            "usage: python -m bot.channels.sms.phone_numbers new-key", file=sys.stderr
        )
        return 2
    print(Fernet.generate_key().decode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
