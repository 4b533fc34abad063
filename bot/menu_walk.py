"""Walking a menu: from the inputs so far to the screen to show, with no stored state.

USSD gateways send every input of the session on each hop (``1*2*500``), so the position is
recomputed by replaying them from the start node; the same walk serves voice calls, whose
inputs travel in the Gather action URL. Only the *last* input's effects (a captured value, a
callback request, an opt-out) are returned: earlier ones were applied on their own hop.

Choice nodes paginate: options that do not fit one screen continue behind "98 More", and
"0 Back" returns to the previous page or node. An input that is not valid re-shows the same
screen with a short error instead of ending the session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.menu import (
    BACK_KEY,
    BACK_LABEL,
    MORE_KEY,
    MORE_LABEL,
    PLACEHOLDER,
    PLACEHOLDER_ROOM,
    Menu,
    Node,
    option_line,
)

INVALID_CHOICE = "Invalid choice."
_VALIDATION_ERRORS = {
    "number": "Enter a number.",
    "name": "Enter a name (letters only).",
    "text": "Enter some text.",
    "email": "Enter an email address.",
}
_NAME = re.compile(r"^[^\W\d_]+(?:[ '\-.][^\W\d_]+)*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Captured:
    attribute: str
    value: str
    validator: str = field(default="text", compare=False)  # which check the value passed


@dataclass(frozen=True)
class Effects:
    """What reaching the current screen asks the CRM to do."""

    captured: Captured | None = None
    callback: bool = False
    opt_out: tuple[str, ...] = ()


@dataclass(frozen=True)
class Position:
    node: str
    page: int = 0
    back: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Walk:
    position: Position
    path: tuple[str, ...]  # node ids in the order they were reached
    error: str | None = None  # the last input was not valid
    effects: Effects = field(default_factory=Effects)
    captured: tuple[Captured, ...] = ()  # every value captured this session

    @property
    def node_id(self) -> str:
        return self.position.node


def validate_input(validator: str, raw: str) -> str | None:
    """The cleaned value, or None when ``raw`` is not valid for ``validator``."""
    value = " ".join(raw.split())
    if validator == "number":
        digits = value.replace(",", "").replace(" ", "")
        return digits if re.fullmatch(r"\d{1,12}(\.\d{1,4})?", digits) else None
    if validator == "name":
        return value if 2 <= len(value) <= 60 and _NAME.match(value) else None
    if validator == "email":
        return value.lower() if len(value) <= 254 and _EMAIL.match(value) else None
    return value if 1 <= len(value) <= 160 else None


def pages(menu: Menu, node: Node, *, paginate: bool = True) -> list[tuple[int, int]]:
    """Option index ranges, one per screen (computed once per menu and node)."""
    key = (id(menu), node.id, paginate)
    cached = _PAGES.get(key)
    if cached is None or cached[0] is not menu:
        cached = _PAGES[key] = (menu, _layout(menu, node, paginate=paginate))
    return cached[1]


# Page layouts by (menu, node, paginate); the menu is kept to tell a reused id() apart.
_PAGES: dict[tuple[int, str, bool], tuple[Menu, list[tuple[int, int]]]] = {}


def _layout(menu: Menu, node: Node, *, paginate: bool) -> list[tuple[int, int]]:
    if not node.options:
        return [(0, 0)]
    if not paginate:
        return [(0, len(node.options))]
    room = menu.screen_chars - len("CON ")
    prompt = len(PLACEHOLDER.sub("x" * PLACEHOLDER_ROOM, node.prompt))
    result, start = [], 0
    while start < len(node.options):
        used = prompt + len(BACK_LABEL) + 1  # every page but the first could offer Back
        end = start
        while end < len(node.options):
            more = len(MORE_LABEL) + 1 if end + 1 < len(node.options) else 0
            line = len(option_line(node.options[end])) + 1
            if used + line + more > room and end > start:
                break
            used += line
            end += 1
        result.append((start, end))
        start = end
    return result


def _enter(menu: Menu, position: Position, target: str) -> tuple[Position, Effects]:
    node = menu.node(target)
    moved = Position(target, 0, (*position.back, (position.node, position.page)))
    return moved, Effects(callback=node.callback, opt_out=node.opt_out)


def step(
    menu: Menu, position: Position, raw: str, *, paginate: bool = True
) -> tuple[Position, str | None, Effects]:
    """Apply one input: the new position, an error (position unchanged) and the effects."""
    node = menu.node(position.node)
    value = raw.strip()
    if node.end:
        return position, None, Effects()
    if node.capture is not None:
        cleaned = validate_input(node.capture.validator, value)
        if cleaned is None:
            return position, _VALIDATION_ERRORS[node.capture.validator], Effects()
        assert node.next is not None
        moved, effects = _enter(menu, position, node.next)
        captured = Captured(node.capture.attribute, cleaned, node.capture.validator)
        return moved, None, Effects(captured, effects.callback, effects.opt_out)
    node_pages = pages(menu, node, paginate=paginate)
    if value == MORE_KEY and paginate and position.page + 1 < len(node_pages):
        return Position(node.id, position.page + 1, position.back), None, Effects()
    if value == BACK_KEY:
        if position.page > 0:
            return Position(node.id, position.page - 1, position.back), None, Effects()
        if position.back:
            previous, page = position.back[-1]
            return Position(previous, page, position.back[:-1]), None, Effects()
        return position, INVALID_CHOICE, Effects()
    option = node.option(value)
    if option is None:
        return position, INVALID_CHOICE, Effects()
    moved, effects = _enter(menu, position, option.goto)
    return moved, None, effects


def walk(menu: Menu, inputs: list[str], *, paginate: bool = True) -> Walk:
    """Replay ``inputs`` from the start node."""
    start = menu.node(menu.start)
    position = Position(menu.start)
    effects = Effects(callback=start.callback, opt_out=start.opt_out)
    path, captured, error = [menu.start], [], None
    for raw in inputs:
        before = position.node
        position, error, effects = step(menu, position, raw, paginate=paginate)
        if effects.captured is not None:
            captured.append(effects.captured)
        if position.node != before:
            path.append(position.node)
    return Walk(position, tuple(path), error, effects, tuple(captured))


def render_prompt(text: str, data: Mapping[str, object]) -> str:
    """Fill placeholders from contact data; a missing value shows as "-"."""

    def fill(match: re.Match[str]) -> str:
        value = data.get(match.group(1))
        return "-" if value in (None, "") else str(value)[:PLACEHOLDER_ROOM]

    return PLACEHOLDER.sub(fill, text)


def ussd_screen(menu: Menu, result: Walk, data: Mapping[str, object]) -> tuple[str, bool]:
    """The USSD screen text (without CON/END) and whether the session ends."""
    node = menu.node(result.node_id)
    prompt = render_prompt(node.prompt, data)
    if result.error:
        prompt = f"{result.error} {prompt}"
    lines: list[str] = []
    if node.options:
        node_pages = pages(menu, node)
        page = min(result.position.page, len(node_pages) - 1)
        start, end = node_pages[page]
        lines = [option_line(o) for o in node.options[start:end]]
        if page + 1 < len(node_pages):
            lines.append(MORE_LABEL)
        if page > 0 or result.position.back:
            lines.append(BACK_LABEL)
    room = menu.screen_chars - len("CON ")
    tail = "\n".join(lines)
    spare = room - (len(tail) + 1 if tail else 0)
    if len(prompt) > spare:
        prompt = prompt[: max(spare - 1, 0)].rstrip() + "\u2026"
    return (prompt + ("\n" + tail if tail else "")), node.end
