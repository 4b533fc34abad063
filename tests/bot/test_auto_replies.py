from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.auto_replies import HANDOFF, AutoReplies, load_auto_replies, parse_auto_replies
from bot.keywords import Keyword
from bot.menu import MenuError
from bot.replies import InboundFacts, ReplyTexts, decide_reply

TEXTS = ReplyTexts(help="help", opt_out="bye", opt_in="welcome back", welcome="hello")
HANDOFF_REPLY = "Thanks! One of our team will get back to you shortly."


@pytest.fixture(scope="module")
def shipped() -> AutoReplies:
    return load_auto_replies()


def test_the_shipped_rules_load(shipped: AutoReplies):
    names = [rule.name for rule in shipped.rules]
    assert names == [HANDOFF, "opening_hours", "location"]


@pytest.mark.parametrize(
    "body",
    [
        "I want to talk to an agent",
        "AGENT",
        "Agent please!",
        "can a Real Person help me",
        "Please CALL ME back",
        "is there a human there?",
    ],
)
def test_asking_for_a_person_matches_the_handoff(shipped: AutoReplies, body: str):
    match = shipped.match(body)
    assert match is not None
    assert match.rule == HANDOFF
    assert match.handoff is True
    assert match.reply == HANDOFF_REPLY


@pytest.mark.parametrize(
    "body",
    ["agenda", "What is on the agenda?", "reagent", "humanity", "recall me", "hello", ""],
)
def test_a_phrase_inside_a_word_does_not_match(shipped: AutoReplies, body: str):
    assert shipped.match(body) is None


def test_a_rule_gives_its_reply(shipped: AutoReplies):
    match = shipped.match("What are your Opening Hours?")
    assert match is not None
    assert match.rule == "opening_hours"
    assert match.handoff is False
    assert match.reply == "We are open Monday to Saturday, 8am to 6pm."

    location = shipped.match("where is your shop")
    assert location is not None
    assert location.rule == "location"
    assert location.reply.startswith("Find us at 12 Ring Road")


def test_the_first_match_wins(shipped: AutoReplies):
    # both opening hours and location match; opening hours comes first
    both = shipped.match("Where are you and are you open today?")
    assert both is not None
    assert both.rule == "opening_hours"
    # the handoff is checked before every rule
    handoff = shipped.match("What are your opening hours? Or can I speak to someone")
    assert handoff is not None
    assert handoff.rule == HANDOFF


def test_rule_order_follows_the_file():
    rules = parse_auto_replies(
        {
            "rules": [
                {"name": "first", "phrases": ["price"], "reply": "One"},
                {"name": "second", "phrases": ["price list"], "reply": "Two"},
            ]
        }
    )
    match = rules.match("send the price list")
    assert match is not None
    assert (match.rule, match.reply) == ("first", "One")


def test_without_a_handoff_nothing_hands_off():
    rules = parse_auto_replies({"rules": [{"name": "hi", "phrases": ["hi"], "reply": " Hey! "}]})
    assert rules.match("agent") is None
    match = rules.match("Hi there")
    assert match is not None
    assert match.reply == "Hey!"
    assert match.handoff is False


def rejection(raw: Any) -> str:
    with pytest.raises(MenuError) as info:
        parse_auto_replies(raw)
    return str(info.value)


def test_a_rule_without_phrases_is_rejected():
    assert "'hours'" in rejection({"rules": [{"name": "hours", "reply": "8 to 6"}]})
    assert "'hours'" in rejection({"rules": [{"name": "hours", "phrases": [], "reply": "8"}]})
    assert "'handoff'" in rejection({"handoff": {"phrases": "agent", "reply": "ok"}})


def test_a_rule_without_a_reply_is_rejected():
    assert "'hours'" in rejection({"rules": [{"name": "hours", "phrases": ["open"]}]})
    assert "'hours'" in rejection(
        {"rules": [{"name": "hours", "phrases": ["open"], "reply": "  "}]}
    )


def test_duplicate_rule_names_are_rejected():
    message = rejection(
        {
            "rules": [
                {"name": "hours", "phrases": ["open"], "reply": "8 to 6"},
                {"name": "hours", "phrases": ["close"], "reply": "6pm"},
            ]
        }
    )
    assert "'hours'" in message
    assert "unique" in message


def test_a_rule_named_handoff_or_unnamed_is_rejected():
    assert "unique" in rejection({"rules": [{"name": HANDOFF, "phrases": ["x"], "reply": "y"}]})
    assert "unique" in rejection({"rules": [{"phrases": ["x"], "reply": "y"}]})


def test_an_unknown_field_in_a_rule_is_rejected():
    assert "'hours'" in rejection(
        {"rules": [{"name": "hours", "phrases": ["open"], "reply": "8", "lang": "en"}]}
    )


def test_load_auto_replies_names_the_file(tmp_path: Path):
    missing = tmp_path / "absent.yaml"
    with pytest.raises(MenuError) as info:
        load_auto_replies(missing)
    assert str(missing) in str(info.value)

    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - {name: x, phrases: [a], reply: b\n", encoding="utf-8")
    with pytest.raises(MenuError) as info:
        load_auto_replies(broken)
    assert str(broken) in str(info.value)


def facts(**changes: object) -> InboundFacts:
    base = {
        "keyword": None,
        "handled_by_provider": False,
        "opted_out": False,
        "first_contact": False,
    }
    return InboundFacts(**{**base, **changes})  # type: ignore[arg-type]


def test_an_auto_reply_is_sent_when_no_keyword_matched():
    assert decide_reply(facts(auto_reply="We open at 8."), TEXTS) == "We open at 8."
    # it answers the question rather than the generic welcome
    assert decide_reply(facts(auto_reply="We open at 8.", first_contact=True), TEXTS) == (
        "We open at 8."
    )


def test_no_auto_reply_while_a_rep_is_handling():
    assert decide_reply(facts(auto_reply="We open at 8.", rep_handling=True), TEXTS) is None
    assert decide_reply(facts(first_contact=True, rep_handling=True), TEXTS) is None


def test_no_auto_reply_to_an_opted_out_contact():
    assert decide_reply(facts(auto_reply="We open at 8.", opted_out=True), TEXTS) is None


def test_a_keyword_beats_an_auto_reply():
    assert decide_reply(facts(keyword=Keyword.HELP, auto_reply="We open at 8."), TEXTS) == "help"


def test_the_stop_confirmation_is_sent_while_a_rep_is_handling():
    stop = facts(keyword=Keyword.OPT_OUT, opted_out=True, rep_handling=True)
    assert decide_reply(stop, TEXTS) == "bye"
    start = facts(keyword=Keyword.OPT_IN, rep_handling=True)
    assert decide_reply(start, TEXTS) == "welcome back"
