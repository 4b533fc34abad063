"""Auto-replies by phrase, and the "talk to a human" handoff: rules as data, matched purely.

A phrase matches on word boundaries, case-insensitively, so "agent" matches "I want an agent"
but not "agenda". The first matching rule wins; the handoff is checked first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.menu import MenuError

DEFAULT_RULES = Path(__file__).parent / "menus" / "auto_replies.yaml"
HANDOFF = "handoff"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    reply: str


@dataclass(frozen=True)
class Match:
    rule: str  # HANDOFF for the handoff rule
    reply: str

    @property
    def handoff(self) -> bool:
        return self.rule == HANDOFF


@dataclass(frozen=True)
class AutoReplies:
    rules: tuple[Rule, ...]

    def match(self, body: str) -> Match | None:
        for rule in self.rules:
            if rule.pattern.search(body):
                return Match(rule.name, rule.reply)
        return None


def _rule(name: str, data: Any) -> Rule:
    if not isinstance(data, dict) or set(data) - {"name", "phrases", "reply"}:
        raise MenuError(f"rule {name!r}: needs 'phrases' and 'reply' only")
    phrases = data.get("phrases")
    reply = data.get("reply")
    if not isinstance(phrases, list) or not phrases or not all(isinstance(p, str) for p in phrases):
        raise MenuError(f"rule {name!r}: 'phrases' must be a list of text")
    if not isinstance(reply, str) or not reply.strip():
        raise MenuError(f"rule {name!r}: needs a 'reply'")
    words = "|".join(re.escape(" ".join(p.lower().split())) for p in phrases)
    return Rule(name, re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE), reply.strip())


def parse_auto_replies(raw: Any) -> AutoReplies:
    if not isinstance(raw, dict):
        raise MenuError("auto-replies must be a mapping with 'handoff' and 'rules'")
    rules = [_rule(HANDOFF, raw["handoff"])] if raw.get("handoff") else []
    names = set()
    for item in raw.get("rules") or []:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name or name in names or name == HANDOFF:
            raise MenuError(f"rule {name!r}: each rule needs a unique 'name'")
        names.add(name)
        rules.append(_rule(name, item))
    return AutoReplies(tuple(rules))


def load_auto_replies(path: Path | None = None) -> AutoReplies:
    path = path or DEFAULT_RULES
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return parse_auto_replies(raw)
    except OSError as exc:
        raise MenuError(f"{path}: cannot read rules file ({exc.strerror})") from None
    except (yaml.YAMLError, MenuError) as exc:
        raise MenuError(f"{path}: {exc}") from None
