"""The SMS keywords carriers and Twilio expect every sender to honour.

A keyword is the whole message ("stop", "Stop." or " STOP "), never a word in
a sentence: "I want to stop taking it" is a question for the bot.
"""

from __future__ import annotations

import enum
import re

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
OPTED_OUT_OPT_IN_WORDS = frozenset({"YES"})  # only from an opted-out number
HELP_WORDS = frozenset({"HELP"})

_EDGES = re.compile(r"^[\s\"'.!]+|[\s\"'.!]+$")


class Keyword(enum.Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def keyword(body: str, opted_out: bool) -> Keyword | None:
    """The keyword the whole message is, if any."""
    word = _EDGES.sub("", body).upper()
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS or (opted_out and word in OPTED_OUT_OPT_IN_WORDS):
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return None
