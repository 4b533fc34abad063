"""Walking a menu from the inputs so far: paging, Back, errors, captures, screen lengths."""

from __future__ import annotations

from bot.menu import load_menu, parse_menu
from bot.menu_walk import Captured, ussd_screen, validate_input, walk

LONG = parse_menu(
    {
        "start": "list",
        "nodes": {
            "list": {
                "prompt": "Pick a town, {first_name}:",
                "options": [
                    {"key": i, "label": f"Town number {i} with a long name", "goto": "done"}
                    for i in range(1, 21)
                ],
            },
            "done": {"prompt": "Done", "end": True},
        },
    }
)


def test_long_lists_page_and_every_option_is_reachable_within_the_screen_limit():
    seen, inputs = [], []
    for _ in range(10):
        text, _ = ussd_screen(LONG, walk(LONG, inputs), {"first_name": "Ama" * 30})
        assert len("CON " + text) <= LONG.screen_chars
        seen += [line.split(" ")[0] for line in text.splitlines()[1:] if "Town" in line]
        if "98 More" not in text:
            break
        inputs.append("98")
    assert seen == [str(i) for i in range(1, 21)]
    back = walk(LONG, [*inputs, "0"])
    assert back.position.page == len(inputs) - 1


def test_an_invalid_choice_keeps_the_screen_and_has_no_effects():
    menu = load_menu()
    result = walk(menu, ["4x"])
    assert (result.node_id, result.error) == ("main", "Invalid choice.")
    assert not result.effects.callback


def test_effects_belong_to_the_last_input_only():
    menu = load_menu()
    captured = walk(menu, ["3", "Ama Owusu"])
    assert captured.effects.captured == Captured("name", "Ama Owusu")
    later = walk(menu, ["3", "Ama Owusu", "4"])
    assert later.effects.captured == Captured("household_size", "4")
    assert [c.attribute for c in later.captured] == ["name", "household_size"]


def test_validators():
    assert validate_input("number", "1,200") == "1200"
    assert validate_input("number", "twelve") is None
    assert validate_input("name", "Zoë N'Dour") == "Zoë N'Dour"
    assert validate_input("name", "😀😀") is None
    assert validate_input("email", "AMA@Example.com") == "ama@example.com"
    assert validate_input("text", "   ") is None
