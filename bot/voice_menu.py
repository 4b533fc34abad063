"""The menu spoken on a call: what to say for a node, and what a caller's words or keys mean.

The same menu as USSD; a caller presses the option's key or says it ("one", "prices"), and
0 or "agent" at any menu asks for a person.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.menu import Menu, Node
from bot.menu_walk import render_prompt

AGENT_KEY = "0"
AGENT_WORDS = frozenset(
    {"agent", "human", "person", "representative", "operator", "someone", "somebody"}
)
AGENT_PROMPT = "To speak to a person, press 0 or say agent."
_NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_WORD = re.compile(r"[^\W_]+")


def spoken_prompt(node: Node, data: Mapping[str, object]) -> str:
    """What the caller hears at ``node``."""
    parts = [render_prompt(node.prompt, data)]
    for option in node.options:
        parts.append(f"For {option.label}, press {option.key}.")
    if node.options:
        parts.append(AGENT_PROMPT)
    return " ".join(parts)


def wants_agent(digits: str | None, speech: str | None) -> bool:
    if (digits or "").strip() == AGENT_KEY:
        return True
    words = {w.lower() for w in _WORD.findall(speech or "")}
    return bool(words & AGENT_WORDS)


def speech_to_input(node: Node, speech: str) -> str | None:
    """The menu input a caller's words stand for: an option key, or at an input node the
    words themselves (digits spoken as words become digits for a number)."""
    words = [w.lower() for w in _WORD.findall(speech)]
    if not words:
        return None
    if node.capture is not None:
        if node.capture.validator == "number":
            return "".join(_NUMBER_WORDS.get(w, w) for w in words)
        return " ".join(_WORD.findall(speech))
    for word in words:
        key = word if word.isdigit() else _NUMBER_WORDS.get(word)
        if key and node.option(key):
            return key
    said = set(words)
    scored = []
    for option in node.options:
        label_words = {w.lower() for w in _WORD.findall(option.label) if len(w) > 3}
        scored.append((len(label_words & said), option.key))
    scored.sort(reverse=True)
    if scored and scored[0][0] > 0 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        return scored[0][1]
    return None


def max_key_length(menu: Menu, node: Node) -> int:
    return max((len(o.key) for o in node.options), default=1)
