"""Patients' words as the staff command line prints them.

What a patient wrote is printed in a terminal. Unescaped, a message could
carry terminal escape codes (clear the screen, colour a line red, set the
window title), a line break followed by a fake "call back: ..." line, or
Unicode's bidirectional overrides that show text in another order than it is
stored. Every control character is shown as an escape (``\\x1b``), a line
break as a visible mark, and bidirectional controls as ``\\u202e`` and the
like: staff read exactly what was sent, on its own line.
"""

from __future__ import annotations

import unicodedata

# Bidirectional embeddings, overrides, isolates and marks.
_BIDI = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
LINE_BREAK = " \u23ce "  # ⏎


def shown(text: object) -> str:
    """``text`` safe to print on one terminal line."""
    out = []
    for char in str(text):
        if char in "\r\n\u2028\u2029\x85":
            out.append(LINE_BREAK)
        elif char == "\t":
            out.append(" ")
        elif char in _BIDI or unicodedata.category(char) == "Cc":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)
