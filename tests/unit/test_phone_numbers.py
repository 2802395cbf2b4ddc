"""Phone numbers: a keyed hash for the conversation, encryption for call-backs."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.channels.sms.phone_numbers import (
    ContactCipher,
    PhoneNumberKeyError,
    SenderIds,
    main,
)


def test_the_same_number_always_gives_the_same_sender_id_without_the_number():
    ids = SenderIds("a-secret-key-of-enough-length")
    sender = ids.sender_id("+14025550123")
    assert sender == ids.sender_id("+1 (402) 555-0123")
    assert sender.startswith("sms-") and "4025550123" not in sender
    assert sender != ids.sender_id("+14025550124")


def test_another_key_gives_other_sender_ids():
    number = "+14025550123"
    assert SenderIds("x" * 20).sender_id(number) != SenderIds("y" * 20).sender_id(
        number
    )


def test_a_short_or_missing_sender_key_is_refused(monkeypatch):
    with pytest.raises(PhoneNumberKeyError, match="SMS_SENDER_KEY"):
        SenderIds("short")
    monkeypatch.delenv("SMS_SENDER_KEY", raising=False)
    with pytest.raises(PhoneNumberKeyError, match="SMS_SENDER_KEY is not set"):
        SenderIds.from_env()


def test_a_call_back_number_is_stored_encrypted_and_read_back_with_the_key():
    key = Fernet.generate_key().decode()
    token = ContactCipher(key).encrypt("+14025550123")
    assert "4025550123" not in token
    assert ContactCipher(key).decrypt(token) == "+14025550123"


def test_another_key_cannot_read_a_call_back_number():
    token = ContactCipher(Fernet.generate_key().decode()).encrypt("+14025550123")
    with pytest.raises(PhoneNumberKeyError, match="another SMS_CONTACT_KEY"):
        ContactCipher(Fernet.generate_key().decode()).decrypt(token)


def test_a_malformed_contact_key_names_the_variable_and_the_fix():
    with pytest.raises(PhoneNumberKeyError, match="new-key"):
        ContactCipher("not-a-fernet-key")


def test_new_key_prints_a_usable_key(capsys):
    assert main(["new-key"]) == 0
    ContactCipher(capsys.readouterr().out.strip())
