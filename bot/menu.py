"""Menus as data: one definition format for USSD and voice, validated when it is loaded.

A menu file (YAML) names a start node and a mapping of nodes. A node is one of three kinds:

- a *choice* node: ``prompt`` and ``options`` (each ``key``, ``label``, ``goto``);
- an *input* node: ``prompt``, ``capture`` (``attribute`` and ``validator``) and ``next``;
- an *end* node: ``prompt`` and ``end: true``.

Any node may carry actions that run when a caller reaches it: ``callback: true`` (the caller
asks a rep to call back: a hot-lead signal) and ``opt_out: [sms, whatsapp]``. Prompts may show
data from the contact record with placeholders: ``{name}``, ``{first_name}``, ``{phone}``,
``{lifecycle_stage}``, ``{score}`` and ``{attributes.<key>}``.

Every mistake is reported at load with the node named: a missing target, a duplicate or
reserved option key, an unknown validator or placeholder, a screen that cannot fit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MENU = Path(__file__).parent / "menus" / "default.yaml"

BACK_KEY = "0"
MORE_KEY = "98"
BACK_LABEL = f"{BACK_KEY} Back"
MORE_LABEL = f"{MORE_KEY} More"
RESERVED_KEYS = frozenset({BACK_KEY, MORE_KEY})
VALIDATORS = frozenset({"number", "name", "text", "email"})
CHANNELS = frozenset({"sms", "whatsapp"})
CONTACT_FIELDS = frozenset({"name", "first_name", "phone", "lifecycle_stage", "score"})
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_NODE_KEYS = frozenset({"prompt", "options", "capture", "next", "end", "callback", "opt_out"})
_OPTION_KEYS = frozenset({"key", "label", "goto"})
# A placeholder's room when checking screen lengths at load: data longer than this is
# truncated when the screen is rendered.
PLACEHOLDER_ROOM = 20


class MenuError(ValueError):
    """A menu definition is invalid; the message names the file and the node."""


@dataclass(frozen=True)
class Option:
    key: str
    label: str
    goto: str


@dataclass(frozen=True)
class Capture:
    attribute: str  # "name" and "email" are contact fields; anything else a custom attribute
    validator: str


@dataclass(frozen=True)
class Node:
    id: str
    prompt: str
    options: tuple[Option, ...] = ()
    capture: Capture | None = None
    next: str | None = None
    end: bool = False
    callback: bool = False
    opt_out: tuple[str, ...] = ()

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)


@dataclass(frozen=True)
class Menu:
    start: str
    nodes: Mapping[str, Node]
    screen_chars: int

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]


def load_menu(path: Path | None = None, *, screen_chars: int = 160) -> Menu:
    """Read and validate a menu file (the shipped default when ``path`` is None)."""
    path = path or DEFAULT_MENU
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MenuError(f"{path}: cannot read menu file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise MenuError(f"{path}: not valid YAML ({exc})") from None
    try:
        return parse_menu(raw, screen_chars=screen_chars)
    except MenuError as exc:
        raise MenuError(f"{path}: {exc}") from None


def parse_menu(raw: Any, *, screen_chars: int = 160) -> Menu:
    """Build a :class:`Menu` from plain data (as loaded from YAML), or raise MenuError."""
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), dict) or not raw["nodes"]:
        raise MenuError("a menu needs a 'nodes' mapping with at least one node")
    start = raw.get("start")
    nodes = {
        str(node_id): _parse_node(str(node_id), data) for node_id, data in raw["nodes"].items()
    }
    if start not in nodes:
        raise MenuError(f"start node {start!r} is not defined")
    menu = Menu(start=start, nodes=nodes, screen_chars=screen_chars)
    for node in nodes.values():
        _check_links(menu, node)
        _check_fits(menu, node)
    return menu


def _parse_node(node_id: str, data: Any) -> Node:
    def fail(message: str) -> MenuError:
        return MenuError(f"node {node_id!r}: {message}")

    if not isinstance(data, dict):
        raise fail("must be a mapping")
    unknown = set(data) - _NODE_KEYS
    if unknown:
        raise fail(f"unknown field(s) {', '.join(sorted(unknown))}")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise fail("needs a 'prompt'")
    for name in PLACEHOLDER.findall(prompt):
        if name not in CONTACT_FIELDS and not (
            name.startswith("attributes.") and _ATTRIBUTE.match(name.split(".", 1)[1])
        ):
            raise fail(f"unknown placeholder {{{name}}} in prompt")
    options = tuple(_parse_option(node_id, item) for item in data.get("options") or ())
    keys = [o.key for o in options]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise fail(f"duplicate option key {duplicates[0]!r}")
    capture = None
    if data.get("capture") is not None:
        spec = data["capture"]
        if not isinstance(spec, dict) or set(spec) != {"attribute", "validator"}:
            raise fail("capture needs exactly 'attribute' and 'validator'")
        if not _ATTRIBUTE.match(str(spec["attribute"])):
            raise fail(f"capture attribute {spec['attribute']!r} must be a lower_case name")
        if spec["validator"] not in VALIDATORS:
            known = ", ".join(sorted(VALIDATORS))
            raise fail(f"unknown validator {spec['validator']!r} (known: {known})")
        capture = Capture(str(spec["attribute"]), str(spec["validator"]))
    end = bool(data.get("end", False))
    kinds = [bool(options), capture is not None, end]
    if sum(kinds) != 1:
        raise fail("needs exactly one of 'options', 'capture' or 'end: true'")
    if capture is not None and not data.get("next"):
        raise fail("an input node needs 'next'")
    if data.get("next") and capture is None:
        raise fail("'next' only applies to an input node")
    opt_out = data.get("opt_out") or ()
    if isinstance(opt_out, str):
        opt_out = (opt_out,)
    bad = [c for c in opt_out if c not in CHANNELS]
    if bad:
        raise fail(f"opt_out names unknown channel {bad[0]!r}")
    return Node(
        id=node_id,
        prompt=prompt.strip(),
        options=options,
        capture=capture,
        next=str(data["next"]) if data.get("next") else None,
        end=end,
        callback=bool(data.get("callback", False)),
        opt_out=tuple(opt_out),
    )


def _parse_option(node_id: str, item: Any) -> Option:
    if not isinstance(item, dict) or set(item) != _OPTION_KEYS:
        raise MenuError(f"node {node_id!r}: each option needs exactly 'key', 'label' and 'goto'")
    key = str(item["key"]).strip()
    if not key.isdigit() or len(key) > 2:
        raise MenuError(f"node {node_id!r}: option key {key!r} must be one or two digits")
    if key in RESERVED_KEYS:
        raise MenuError(
            f"node {node_id!r}: option key {key!r} is reserved ({BACK_LABEL}, {MORE_LABEL})"
        )
    return Option(key=key, label=str(item["label"]).strip(), goto=str(item["goto"]))


def _check_links(menu: Menu, node: Node) -> None:
    for option in node.options:
        if option.goto not in menu.nodes:
            raise MenuError(
                f"node {node.id!r}: option {option.key!r} goes to unknown node {option.goto!r}"
            )
    if node.next is not None and node.next not in menu.nodes:
        raise MenuError(f"node {node.id!r}: next goes to unknown node {node.next!r}")


def _template_length(text: str) -> int:
    return len(PLACEHOLDER.sub("x" * PLACEHOLDER_ROOM, text))


def option_line(option: Option) -> str:
    return f"{option.key} {option.label}"


def _check_fits(menu: Menu, node: Node) -> None:
    """The prompt plus one option and the navigation lines must fit one screen."""
    room = menu.screen_chars - len("CON ")
    fixed = _template_length(node.prompt)
    if node.options:
        nav = len(MORE_LABEL) + 1 + len(BACK_LABEL) + 1
        longest = max(len(option_line(o)) + 1 for o in node.options)
        needed = fixed + longest + nav
    else:
        needed = fixed
    if needed > room:
        raise MenuError(
            f"node {node.id!r}: screen needs {needed} characters, more than the "
            f"{menu.screen_chars} a USSD screen allows"
        )
