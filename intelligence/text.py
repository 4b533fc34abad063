"""What the encoder sees: emoji spelled out as words, whitespace collapsed, length bounded.

MiniLM's vocabulary has no emoji (they become [UNK]), yet "😡" and "🙏" carry most of the
sentiment of a short message; ``emoji.demojize`` turns them into words the encoder knows.
"""

from __future__ import annotations

import re

import emoji

MAX_CHARS = 2000  # far beyond 128 tokens; keeps tokenization cheap on pathological input
_SPACES = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")


def normalize(text: str | None) -> str:
    spelled = emoji.demojize((text or "")[:MAX_CHARS], delimiters=(" ", " "))
    return _SPACES.sub(" ", spelled.replace("_", " ")).strip()


def has_words(text: str) -> bool:
    """False for empty, numbers-only or punctuation-only text (e.g. a USSD input "1*2")."""
    return bool(_LETTER.search(text))
