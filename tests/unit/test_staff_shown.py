"""The staff command line prints patients' words, never their control codes
(bot.staff.shown)."""

from __future__ import annotations

import pytest

from bot.staff.shown import LINE_BREAK, shown


@pytest.mark.parametrize(
    ("written", "printed"),
    [
        ("i want to die", "i want to die"),
        ("\x1b[2J\x1b[31mhello", "\\x1b[2J\\x1b[31mhello"),
        ("ok\ncall back: +1 402 555 0100", f"ok{LINE_BREAK}call back: +1 402 555 0100"),
        ("a\r\nb", f"a{LINE_BREAK}{LINE_BREAK}b"),
        ("bell\x07 and del\x7f", "bell\\x07 and del\\x7f"),
        ("c1 \x9b31m", "c1 \\x9b31m"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("tab\there", "tab here"),
        ("café 😭 👨‍👩‍👧", "café 😭 👨‍👩‍👧"),  # letters, emoji and their joiners
    ],
)
def test_control_characters_are_shown_as_escapes(written, printed):
    assert shown(written) == printed


def test_nothing_a_terminal_acts_on_is_left():
    every = "".join(chr(c) for c in range(0x00, 0xA0)) + "\u202e\u2066"
    printed = shown(every)
    assert all(not (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0) for c in printed)
    assert "\u202e" not in printed and "\n" not in printed
