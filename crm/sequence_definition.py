"""Sequences as data: a trigger, an audience, ordered steps (issue 8).

A sequence is a JSON object (stored on ``sequences.definition``; the shipped examples are YAML
in ``crm/config/sequences/``). This module only reads and checks one, so that a bad definition
is refused with its reason when it is saved, never half-run:

    name: Price follow-up
    trigger: {type: intent, intent: pricing}
    audience: {consent: {sms: opted_in}}        # the segment filters (crm.segments)
    exit_on: [reply]                            # opt-out always exits; also customer, rep
    reentry: {after_days: 30}                   # default: never re-enter
    steps:
      - {id: wait-a-day, wait: {days: 1, at: "10:00"}}
      - {id: nudge, send: {channel: sms, body: "Hi {{ first_name }}, still interested?"}}
      - {id: replied, branch: {if: {replied: true}, then: done, else: next}}
      - {id: remind, send: {channel: sms, body: "Last chance: 10% off until Friday."}}
      - {id: done, exit: {}}

Steps run in order; ``branch`` jumps to a step id (or ``next``). Step ids are what make a run
exactly-once and edits safe: a step already run for an enrolment (by id) is never run again,
whatever the edit. A loop back must pass a ``wait``, so a definition can never spin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm.campaign_render import Template, TemplateError, compile_template
from crm.lifecycle import DISQUALIFY_REASONS
from crm.models import LifecycleStage
from crm.reply_library import CONTENT_SID
from crm.segments import SegmentError, SegmentFilters, parse_filters
from intelligence.labels import INTENTS as MODEL_INTENTS
from intelligence.labels import OTHER, SENTIMENTS

STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
# What the model reads (intelligence.labels); "other" is no intent to act on.
INTENTS = tuple(intent for intent in MODEL_INTENTS if intent != OTHER)
EXITS = ("reply", "customer", "rep")  # opt-out always exits; not a setting
MAX_STEPS = 50
MAX_WAIT = timedelta(days=366)
NEXT = "next"


class DefinitionError(ValueError):
    """The definition cannot be run; the message says where and why."""


@dataclass(frozen=True)
class Trigger:
    """What enrols a contact. ``type`` and the one value it needs (see ``TRIGGERS``)."""

    type: str
    value: str | int | None = None
    offset_days: int = 0  # date_attribute: days relative to the date (-3: three days before)
    at: str | None = None  # date_attribute: time of day in the contact's zone


@dataclass(frozen=True)
class Wait:
    duration: timedelta = timedelta(0)
    at: str | None = None  # then the next HH:MM in the contact's time zone


@dataclass(frozen=True)
class Send:
    channel: str
    body: Template | None
    content_sid: str | None = None  # a WhatsApp template: needed outside the 24 h window
    # The template's variables, each a Jinja template like the body (personalized per contact).
    content_variables: dict[str, Template] = field(default_factory=dict)


@dataclass(frozen=True)
class Branch:
    condition: str  # replied | score_above | intent | sentiment | tag
    value: str | int | bool
    then: str
    otherwise: str


@dataclass(frozen=True)
class Step:
    id: str
    kind: str  # wait | send | branch | tag | stage | handoff | exit
    wait: Wait | None = None
    send: Send | None = None
    branch: Branch | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    stage: str | None = None
    reason: str | None = None  # stage moves back need one; handoffs carry one


@dataclass(frozen=True)
class Sequence:
    name: str
    trigger: Trigger
    audience: SegmentFilters
    steps: tuple[Step, ...]
    exit_on: frozenset[str] = frozenset({"reply"})
    reentry_after: timedelta | None = None  # None: a contact enrols once, ever
    # Local HH:MM in the contact's zone; sends wait for their end. None: send at any hour.
    quiet_start: str | None = "20:00"
    quiet_end: str | None = "08:00"
    timezone: str = "UTC"  # for numbers whose zone the number does not pin down

    def index(self, step_id: str) -> int:
        return next(i for i, step in enumerate(self.steps) if step.id == step_id)


# type -> the key holding its value, and what that value may be
TRIGGERS: dict[str, tuple[str | None, Any]] = {
    "stage_entered": ("stage", tuple(LifecycleStage)),
    "score_crossed": ("value", int),
    "intent": ("intent", INTENTS),
    "sentiment": ("sentiment", SENTIMENTS),
    "menu_node": ("node", str),
    "tag_added": ("tag", str),
    "date_attribute": ("attribute", str),
    "inactive": ("days", int),
}
STEP_KINDS = ("wait", "send", "branch", "tag", "stage", "handoff", "exit")
CONDITIONS: dict[str, Any] = {
    "replied": bool,
    "score_above": int,
    "intent": INTENTS,
    "sentiment": SENTIMENTS,
    "tag": str,
}


def _object(raw: object, where: str, known: set[str] | None = None) -> dict[str, Any]:
    """An object; with ``known``, one holding only those keys (a misspelt key is refused, not
    silently ignored)."""
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where} must be an object")
    if known is not None and (unknown := sorted(set(raw) - known)):
        raise DefinitionError(
            f"{where}: unknown {', '.join(map(str, unknown))}; known: {', '.join(sorted(known))}"
        )
    return raw


def _text(raw: object, where: str, limit: int = 64) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > limit:
        raise DefinitionError(f"{where} must be text of 1 to {limit} characters")
    return raw.strip()


def _whole(raw: object, where: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise DefinitionError(f"{where} must be a whole number from {low} to {high}")
    return raw


def _hhmm(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not HHMM.match(raw):
        raise DefinitionError(f"{where} must be a time of day, HH:MM")
    return raw


def _value(raw: object, allowed: Any, where: str) -> str | int | bool:
    if allowed is bool:
        if not isinstance(raw, bool):
            raise DefinitionError(f"{where} must be true or false")
        return raw
    if allowed is int:
        return _whole(raw, where, 0, 10_000)
    if allowed is str:
        return _text(raw, where)
    if raw not in allowed:
        raise DefinitionError(f"{where} must be one of {', '.join(allowed)}")
    return str(raw)


def parse_trigger(raw: object) -> Trigger:
    spec = _object(raw, "trigger")
    kind = spec.get("type")
    if kind not in TRIGGERS:
        raise DefinitionError(f"trigger type must be one of {', '.join(TRIGGERS)}")
    key, allowed = TRIGGERS[kind]
    assert key is not None
    extra = {"offset_days", "at"} if kind == "date_attribute" else set()
    _object(spec, f"trigger {kind}", {"type", key} | extra)
    value = _value(spec.get(key), allowed, f"trigger {kind}: {key}")
    if kind == "date_attribute":
        offset = _whole(spec.get("offset_days", 0), "trigger offset_days", -365, 365)
        at = _hhmm(spec["at"], "trigger at") if "at" in spec else None
        return Trigger(kind, value, offset, at)
    if kind == "inactive" and value == 0:
        raise DefinitionError("trigger inactive: days must be at least 1")
    return Trigger(kind, value)


def _wait(raw: object, where: str) -> Wait:
    spec = _object(raw, where)
    if unknown := set(spec) - {"days", "hours", "minutes", "at"}:
        raise DefinitionError(f"{where}: unknown {', '.join(sorted(unknown))}")
    duration = timedelta(
        days=_whole(spec.get("days", 0), f"{where} days", 0, 366),
        hours=_whole(spec.get("hours", 0), f"{where} hours", 0, 24 * 366),
        minutes=_whole(spec.get("minutes", 0), f"{where} minutes", 0, 60 * 24 * 366),
    )
    at = _hhmm(spec["at"], f"{where} at") if "at" in spec else None
    if duration == timedelta(0) and at is None:
        raise DefinitionError(f"{where} needs a duration, a time of day (at), or both")
    if duration > MAX_WAIT:
        raise DefinitionError(f"{where} is longer than a year")
    return Wait(duration, at)


def _send(raw: object, where: str) -> Send:
    spec = _object(raw, where, {"channel", "body", "content_sid", "content_variables"})
    channel = spec.get("channel")
    if channel not in ("sms", "whatsapp"):
        raise DefinitionError(f"{where} channel must be sms or whatsapp")
    sid = spec.get("content_sid")
    if sid is not None and (channel != "whatsapp" or not CONTENT_SID.match(str(sid))):
        raise DefinitionError(f"{where} content_sid is a WhatsApp template's SID (HX + 32 hex)")
    variables = spec.get("content_variables") or {}
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise DefinitionError(f"{where} content_variables maps names to text")
    if "body" not in spec and sid is None:
        raise DefinitionError(f"{where} needs a body (or, on WhatsApp, a content_sid)")
    try:
        body = compile_template(spec["body"]) if "body" in spec else None
        compiled = {name: compile_template(value) for name, value in variables.items()}
    except TemplateError as exc:
        raise DefinitionError(f"{where} body or content_variables: {exc}") from None
    return Send(channel, body, sid, compiled)


def _branch(raw: object, where: str) -> Branch:
    spec = _object(raw, where, {"if", "then", "else"})
    condition = _object(spec.get("if"), f"{where} if")
    if len(condition) != 1 or next(iter(condition)) not in CONDITIONS:
        raise DefinitionError(f"{where} if must be one of {', '.join(CONDITIONS)}")
    name, value = next(iter(condition.items()))
    checked = _value(value, CONDITIONS[name], f"{where} if {name}")
    then = _text(spec.get("then", NEXT), f"{where} then", 40)
    otherwise = _text(spec.get("else", NEXT), f"{where} else", 40)
    return Branch(name, checked, then, otherwise)


def _tags(raw: object, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 20:
        raise DefinitionError(f"{where} must be a list of at most 20 tags")
    return tuple(_text(tag, where) for tag in raw)


def parse_step(raw: object, position: int) -> Step:
    spec = _object(raw, f"step {position + 1}")
    step_id = spec.get("id")
    if not isinstance(step_id, str) or not STEP_ID.match(step_id) or step_id == NEXT:
        raise DefinitionError(
            f"step {position + 1}: id must be lowercase letters, digits, - or _ "
            f"(at most 40), and not '{NEXT}'"
        )
    kinds = [kind for kind in STEP_KINDS if kind in spec]
    if len(kinds) != 1 or set(spec) - {"id", kinds[0]}:
        raise DefinitionError(
            f"step {step_id}: one of {', '.join(STEP_KINDS)} and its id, nothing else"
        )
    kind = kinds[0]
    where = f"step {step_id}"
    body = spec[kind]
    if kind == "wait":
        return Step(step_id, kind, wait=_wait(body, where))
    if kind == "send":
        return Step(step_id, kind, send=_send(body, where))
    if kind == "branch":
        return Step(step_id, kind, branch=_branch(body, where))
    if kind == "tag":
        tags = _object(body, where, {"add", "remove"})
        add, remove = _tags(tags.get("add"), f"{where} add"), _tags(tags.get("remove"), where)
        if not add and not remove:
            raise DefinitionError(f"{where} adds or removes at least one tag")
        return Step(step_id, kind, add_tags=add, remove_tags=remove)
    if kind == "stage":
        move = _object(body, where, {"to", "reason"})
        stage = _value(move.get("to"), tuple(LifecycleStage), f"{where} to")
        reason = _text(move["reason"], f"{where} reason", 200) if "reason" in move else None
        if stage == LifecycleStage.DISQUALIFIED and reason not in DISQUALIFY_REASONS:
            raise DefinitionError(
                f"{where}: disqualifying needs a reason, one of {', '.join(DISQUALIFY_REASONS)}"
            )
        return Step(step_id, kind, stage=str(stage), reason=reason)
    if kind == "handoff":
        handoff = _object(body, where, {"reason"})
        reason = _text(handoff.get("reason", "sequence"), f"{where} reason", 40)
        return Step(step_id, kind, reason=reason)
    _object(body, where, set())  # exit: {}
    return Step(step_id, kind)


def _check_flow(steps: tuple[Step, ...]) -> None:
    """Branch targets exist, and no path through the steps comes back to a step without
    passing a ``wait``: a loop without one would send again at once, for ever. The steps are a
    graph (each leads to the next, a branch to its two targets, an exit nowhere); with the waits
    taken out, it must have no cycle."""
    ids = [step.id for step in steps]
    if len(set(ids)) != len(ids):
        raise DefinitionError("step ids must be unique")
    position = {step_id: i for i, step_id in enumerate(ids)}
    following: list[list[int]] = []
    for i, step in enumerate(steps):
        if step.branch is not None:
            targets = []
            for target in (step.branch.then, step.branch.otherwise):
                if target != NEXT and target not in position:
                    raise DefinitionError(f"step {step.id} jumps to {target}, which is not a step")
                targets.append(i + 1 if target == NEXT else position[target])
            following.append(targets)
        else:
            following.append([] if step.kind == "exit" else [i + 1])
    state = [0] * len(steps)  # 0 unseen, 1 on the current path, 2 done
    for first in range(len(steps)):
        if state[first] or steps[first].kind == "wait":
            continue
        path = [(first, iter(following[first]))]
        state[first] = 1
        while path:
            node, rest = path[-1]
            after = next(rest, None)
            if after is None:
                state[node] = 2
                path.pop()
            elif after < len(steps) and steps[after].kind != "wait":
                if state[after] == 1:
                    raise DefinitionError(
                        f"step {steps[node].id} leads back to {steps[after].id} "
                        "with no wait in between"
                    )
                if state[after] == 0:
                    state[after] = 1
                    path.append((after, iter(following[after])))


MAX_VALUES = 5_000  # a definition of 50 steps holds a few hundred values


def _storable(value: object, depth: int = 0, seen: list[int] | None = None) -> None:
    """JSON a database can keep: objects with text keys, lists, text, numbers, true/false and
    null; no NUL (PostgreSQL's JSONB refuses it), no lone surrogate, no NaN, no nesting deeper
    or values more numerous than a definition has (a YAML alias bomb is refused early)."""
    seen = seen if seen is not None else [0]
    seen[0] += 1
    if depth > 20:
        raise DefinitionError("the definition is nested too deeply")
    if seen[0] > MAX_VALUES:
        raise DefinitionError(f"the definition holds more than {MAX_VALUES} values")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise DefinitionError("numbers must be finite")
        return
    if isinstance(value, dict) and not all(isinstance(key, str) for key in value):
        raise DefinitionError("object keys must be text")
    if not isinstance(value, str | dict | list):
        raise DefinitionError(f"a {type(value).__name__} is not a JSON value")
    if isinstance(value, str):
        if "\x00" in value:
            raise DefinitionError("text may not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DefinitionError("text must be valid Unicode") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, depth + 1, seen)
            _storable(item, depth + 1, seen)
    elif isinstance(value, list):
        for item in value:
            _storable(item, depth + 1, seen)


def parse_sequence(raw: object) -> Sequence:
    """Read and check a definition; raises DefinitionError naming what is wrong."""
    _storable(raw)
    spec = _object(raw, "sequence")
    known = {
        "name",
        "trigger",
        "audience",
        "steps",
        "exit_on",
        "reentry",
        "quiet_hours",
        "timezone",
    }
    if unknown := sorted(set(spec) - known):
        raise DefinitionError(f"unknown keys {', '.join(unknown)}; known: {', '.join(known)}")
    name = _text(spec.get("name"), "name", 200)
    trigger = parse_trigger(spec.get("trigger"))
    try:
        audience = parse_filters(spec.get("audience") or {})
    except SegmentError as exc:
        raise DefinitionError(f"audience: {exc}") from None
    raw_steps = spec.get("steps")
    if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_STEPS:
        raise DefinitionError(f"steps must be a list of 1 to {MAX_STEPS} steps")
    steps = tuple(parse_step(step, i) for i, step in enumerate(raw_steps))
    _check_flow(steps)
    exit_on = spec.get("exit_on", ["reply"])
    if not isinstance(exit_on, list) or any(e not in EXITS for e in exit_on):
        raise DefinitionError(f"exit_on lists some of {', '.join(EXITS)} (opt-out always exits)")
    reentry = spec.get("reentry")
    after = None
    if reentry is not None:
        days = _object(reentry, "reentry", {"after_days"}).get("after_days")
        after = timedelta(days=_whole(days, "reentry after_days", 0, 3650))
    quiet_start, quiet_end = _quiet_hours(spec.get("quiet_hours", {}))
    zone = _text(spec.get("timezone", "UTC"), "timezone")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DefinitionError(f"timezone {zone!r} is not a known time zone") from None
    return Sequence(
        name,
        trigger,
        audience,
        steps,
        frozenset(exit_on),
        after,
        quiet_start,
        quiet_end,
        zone,
    )


def _quiet_hours(raw: object) -> tuple[str | None, str | None]:
    """``{start: "20:00", end: "08:00"}`` (the default), or null for none."""
    if raw is None:
        return None, None
    spec = _object(raw, "quiet_hours")
    if unknown := set(spec) - {"start", "end"}:
        raise DefinitionError(f"quiet_hours: unknown {', '.join(sorted(unknown))}")
    start = _hhmm(spec.get("start", "20:00"), "quiet_hours start")
    end = _hhmm(spec.get("end", "08:00"), "quiet_hours end")
    return start, end
