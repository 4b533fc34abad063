"""Sequence definitions (issue 8): the shipped examples read, and a bad definition is refused
with a reason that names where it is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from crm.sequence_definition import (
    STEP_KINDS,
    TRIGGERS,
    DefinitionError,
    parse_sequence,
)

SHIPPED = Path(__file__).parents[2] / "crm" / "config" / "sequences"


def definition(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "name": "Test",
        "trigger": {"type": "tag_added", "tag": "vip"},
        "steps": list(steps) or [{"id": "done", "exit": {}}],
        **fields,
    }


def test_the_three_shipped_sequences_read():
    files = sorted(SHIPPED.glob("*.yaml"))
    assert [f.name for f in files] == [
        "price_follow_up.yaml",
        "welcome_after_ussd.yaml",
        "win_back.yaml",
    ]
    read = {f.stem: parse_sequence(yaml.safe_load(f.read_text(encoding="utf-8"))) for f in files}
    assert read["price_follow_up"].trigger.value == "pricing"
    assert read["price_follow_up"].reentry_after == timedelta(days=30)
    assert read["welcome_after_ussd"].trigger.type == "menu_node"
    assert read["win_back"].exit_on == frozenset()
    kinds = {step.kind for sequence in read.values() for step in sequence.steps}
    assert kinds == set(STEP_KINDS)  # together they use every step type


TRIGGER_CASES = [
    ({"type": "stage_entered", "stage": "mql"}, "mql"),
    ({"type": "score_crossed", "value": 50}, 50),
    ({"type": "intent", "intent": "pricing"}, "pricing"),
    ({"type": "sentiment", "sentiment": "negative"}, "negative"),
    ({"type": "menu_node", "node": "details_saved"}, "details_saved"),
    ({"type": "tag_added", "tag": "vip"}, "vip"),
    ({"type": "date_attribute", "attribute": "renewal_on", "offset_days": -3}, "renewal_on"),
    ({"type": "inactive", "days": 60}, 60),
]


@pytest.mark.parametrize(("trigger", "value"), TRIGGER_CASES)
def test_every_trigger_type_reads(trigger: dict[str, Any], value: object):
    assert parse_sequence(definition(trigger=trigger)).trigger.value == value


def test_every_trigger_type_is_covered_above():
    assert {trigger["type"] for trigger, _ in TRIGGER_CASES} == set(TRIGGERS)


def test_every_step_type_reads():
    sequence = parse_sequence(
        definition(
            {"id": "wait", "wait": {"hours": 2, "at": "09:00"}},
            {"id": "sms", "send": {"channel": "sms", "body": "Hi {{ first_name }}"}},
            {
                "id": "wa",
                "send": {
                    "channel": "whatsapp",
                    "content_sid": "HX" + "a" * 32,
                    "content_variables": {"1": "first_name"},
                },
            },
            {"id": "check", "branch": {"if": {"replied": True}, "then": "done"}},
            {"id": "tags", "tag": {"add": ["warm"], "remove": ["cold"]}},
            {"id": "stage", "stage": {"to": "sql"}},
            {"id": "rep", "handoff": {"reason": "follow_up"}},
            {"id": "done", "exit": {}},
        )
    )
    assert [s.kind for s in sequence.steps] == [
        "wait", "send", "send", "branch", "tag", "stage", "handoff", "exit"
    ]  # fmt: skip
    assert sequence.steps[0].wait.duration == timedelta(hours=2)
    assert sequence.steps[3].branch.otherwise == "next"
    assert sequence.index("done") == 7


def test_a_loop_back_needs_a_wait():
    looping = [
        {"id": "nudge", "send": {"channel": "sms", "body": "Hello"}},
        {"id": "again", "branch": {"if": {"replied": False}, "then": "nudge"}},
    ]
    with pytest.raises(DefinitionError, match="again leads back to nudge with no wait"):
        parse_sequence(definition(*looping))
    waiting = [{"id": "pause", "wait": {"days": 1}}, *looping]
    waiting[2] = {"id": "again", "branch": {"if": {"replied": False}, "then": "pause"}}
    assert parse_sequence(definition(*waiting)).steps[2].branch.then == "pause"


def test_a_wait_a_branch_can_jump_over_does_not_break_a_loop():
    """a -> b jumps to d -> d jumps back to a: the wait c is never on that path."""
    sneaky = [
        {"id": "a", "send": {"channel": "sms", "body": "Hello"}},
        {"id": "b", "branch": {"if": {"replied": False}, "then": "d", "else": "c"}},
        {"id": "c", "wait": {"days": 1}},
        {"id": "d", "branch": {"if": {"tag": "vip"}, "then": "a", "else": "next"}},
    ]
    with pytest.raises(DefinitionError, match="leads back to a with no wait"):
        parse_sequence(definition(*sneaky))


def test_odd_values_are_refused_before_anything_is_stored():
    base = {"name": "x", "trigger": {"type": "tag_added", "tag": "x"}}
    step = [{"id": "s", "exit": {}}]
    with pytest.raises(DefinitionError, match="reentry: unknown x"):
        parse_sequence({**base, "steps": step, "reentry": {"after_days": 1, "x": 2}})
    with pytest.raises(DefinitionError, match="finite"):
        parse_sequence({**base, "steps": step, "notes": float("nan")})
    with pytest.raises(DefinitionError, match="not a JSON value"):
        parse_sequence({**base, "steps": step, "since": datetime(2024, 1, 1, tzinfo=UTC)})
    bomb: list[object] = ["x"] * 10
    for _ in range(5):
        bomb = [bomb] * 10  # 10^6 leaves from a few objects, as YAML aliases build
    with pytest.raises(DefinitionError, match="more than 5000 values"):
        parse_sequence({**base, "steps": step, "bomb": bomb})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"trigger": {"type": "birthday"}}, "trigger type must be one of"),
        ({"trigger": {"type": "stage_entered", "stage": "vip"}}, "stage must be one of"),
        ({"trigger": {"type": "inactive", "days": 0}}, "at least 1"),
        ({"audience": {"stages": ["nobody"]}}, "audience:"),
        ({"exit_on": ["opt_out"]}, "exit_on lists"),
        ({"reentry": {"after_days": -1}}, "reentry after_days"),
        ({"colour": "red"}, "unknown keys colour"),
        ({"steps": []}, "steps must be a list of 1 to"),
        ({"steps": [{"id": "Bad Id", "exit": {}}]}, "id must be lowercase"),
        ({"steps": [{"id": "next", "exit": {}}]}, "not 'next'"),
        ({"steps": [{"id": "a", "exit": {}}, {"id": "a", "exit": {}}]}, "unique"),
        ({"steps": [{"id": "a", "wait": {}, "exit": {}}]}, "one of wait"),
        ({"steps": [{"id": "a", "wait": {}}]}, "needs a duration"),
        ({"steps": [{"id": "a", "wait": {"days": 400}}]}, "from 0 to 366"),
        ({"steps": [{"id": "a", "wait": {"at": "25:00"}}]}, "HH:MM"),
        ({"steps": [{"id": "a", "send": {"channel": "fax", "body": "x"}}]}, "sms or whatsapp"),
        ({"steps": [{"id": "a", "send": {"channel": "sms"}}]}, "needs a body"),
        (
            {"steps": [{"id": "a", "send": {"channel": "sms", "body": "{{ nickname }}"}}]},
            "step a body or content_variables:",
        ),
        (
            {"steps": [{"id": "a", "send": {"channel": "sms", "content_sid": "HX" + "a" * 32}}]},
            "content_sid is a WhatsApp",
        ),
        ({"steps": [{"id": "a", "branch": {"if": {"moon": "full"}}}]}, "if must be one of"),
        ({"steps": [{"id": "a", "branch": {"if": {"replied": True}, "then": "z"}}]}, "not a step"),
        ({"steps": [{"id": "a", "tag": {}}]}, "at least one tag"),
        ({"steps": [{"id": "a", "stage": {"to": "vip"}}]}, "to must be one of"),
    ],
)
def test_a_bad_definition_is_refused_with_its_reason(change: dict[str, Any], reason: str):
    with pytest.raises(DefinitionError, match=reason):
        parse_sequence({**definition(), **change})


@pytest.mark.parametrize(
    ("text", "reason"),
    [("Promo\x00", "NUL characters"), ("\ud800", "valid Unicode")],
)
def test_text_a_database_cannot_keep_is_refused(text: str, reason: str):
    with pytest.raises(DefinitionError, match=reason):
        parse_sequence({"name": text, "trigger": {"type": "tag_added", "tag": "x"}, "steps": []})
