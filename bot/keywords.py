"""Carrier-style SMS keywords: STOP, START and HELP.

Only a message that is the keyword alone counts (case-insensitive, surrounding whitespace and
punctuation ignored). "please stop texting me" is not a keyword; the intent model handles it.
"""

from __future__ import annotations

import enum
import string


class Keyword(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_STRIP = (
    string.whitespace
    + string.punctuation
    + "\u00a1\u00bf\u201c\u201d\u2018\u2019\u00ab\u00bb\u2026"
)


def match_keyword(body: str) -> Keyword | None:
    word = body.strip(_STRIP).upper()
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return None


def provider_keyword(opt_out_type: str | None) -> Keyword | None:
    """Map Twilio Advanced Opt-Out's ``OptOutType`` to our keyword."""
    return {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}.get(
        (opt_out_type or "").upper()
    )
