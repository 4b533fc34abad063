"""Menu definitions are checked when they are loaded, and the error names the bad node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.menu import MenuError, load_menu, parse_menu


def menu(**nodes: Any) -> dict[str, Any]:
    return {
        "start": "main",
        "nodes": {
            "main": {"prompt": "Hi", "options": [{"key": 1, "label": "Bye", "goto": "bye"}]},
            "bye": {"prompt": "Bye", "end": True},
            **nodes,
        },
    }


def test_the_shipped_menu_loads():
    loaded = load_menu()
    assert loaded.start == "main"
    assert loaded.node("callback").callback is True


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (
            {"x": {"prompt": "X", "options": [{"key": 1, "label": "Y", "goto": "nowhere"}]}},
            "node 'x': option '1' goes to unknown node 'nowhere'",
        ),
        (
            {
                "x": {
                    "prompt": "X",
                    "options": [
                        {"key": 1, "label": "A", "goto": "bye"},
                        {"key": 1, "label": "B", "goto": "bye"},
                    ],
                }
            },
            "node 'x': duplicate option key '1'",
        ),
        (
            {"x": {"prompt": "X", "options": [{"key": 98, "label": "A", "goto": "bye"}]}},
            "node 'x': option key '98' is reserved",
        ),
        ({"x": {"prompt": "X" * 200, "end": True}}, "node 'x': screen needs 200 characters"),
        (
            {"x": {"prompt": "X", "capture": {"attribute": "age", "validator": "date"}}},
            "node 'x': unknown validator 'date'",
        ),
        (
            {
                "x": {
                    "prompt": "X",
                    "capture": {"attribute": "age", "validator": "number"},
                    "next": "missing",
                }
            },
            "node 'x': next goes to unknown node 'missing'",
        ),
        ({"x": {"prompt": "Hi {password}", "end": True}}, "node 'x': unknown placeholder"),
        ({"x": {"prompt": "X", "end": True, "colour": "red"}}, "node 'x': unknown field"),
    ],
)
def test_bad_definitions_are_rejected_naming_the_node(nodes: dict[str, Any], message: str):
    with pytest.raises(MenuError) as error:
        parse_menu(menu(**nodes))
    assert message in str(error.value)


def test_screen_length_is_checked_against_the_configured_limit():
    long_prompt = {"x": {"prompt": "X" * 200, "end": True}}
    assert parse_menu(menu(**long_prompt), screen_chars=300).node("x").end


def test_a_file_with_a_mistake_names_the_file(tmp_path: Path):
    broken = tmp_path / "menu.yaml"
    broken.write_text("start: main\nnodes: [unclosed\n", encoding="utf-8")
    with pytest.raises(MenuError, match=r"menu\.yaml: not valid YAML"):
        load_menu(broken)
    with pytest.raises(MenuError, match="cannot read menu file"):
        load_menu(tmp_path / "missing.yaml")
