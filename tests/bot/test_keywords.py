from __future__ import annotations

import pytest

from bot.keywords import Keyword, match_keyword, provider_keyword
from bot.replies import InboundFacts, ReplyTexts, decide_reply

TEXTS = ReplyTexts(help="help", opt_out="bye", opt_in="welcome back", welcome="hello")


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP", Keyword.OPT_OUT),
        ("stop!", Keyword.OPT_OUT),
        ("  Unsubscribe. ", Keyword.OPT_OUT),
        ("“Stop”", Keyword.OPT_OUT),
        ("optout", Keyword.OPT_OUT),
        ("revoke", Keyword.OPT_OUT),
        ("start", Keyword.OPT_IN),
        ("Yes", Keyword.OPT_IN),
        ("UNSTOP", Keyword.OPT_IN),
        ("help?", Keyword.HELP),
        ("INFO", Keyword.HELP),
        ("please stop texting me", None),
        ("stop it now", None),
        ("yes please", None),
        ("", None),
        ("🛑", None),
    ],
)
def test_only_the_keyword_alone_counts(body: str, keyword: Keyword | None):
    assert match_keyword(body) == keyword


def test_provider_opt_out_type_maps_to_keywords():
    assert provider_keyword("STOP") is Keyword.OPT_OUT
    assert provider_keyword("start") is Keyword.OPT_IN
    assert provider_keyword(None) is None


def facts(**changes: object) -> InboundFacts:
    base = {
        "keyword": None,
        "handled_by_provider": False,
        "opted_out": False,
        "first_contact": False,
    }
    return InboundFacts(**{**base, **changes})  # type: ignore[arg-type]


def test_replies():
    assert decide_reply(facts(first_contact=True), TEXTS) == "hello"
    assert decide_reply(facts(), TEXTS) is None
    assert decide_reply(facts(keyword=Keyword.OPT_OUT, opted_out=True), TEXTS) == "bye"
    assert decide_reply(facts(keyword=Keyword.OPT_OUT, handled_by_provider=True), TEXTS) is None
    assert decide_reply(facts(keyword=Keyword.HELP), TEXTS) == "help"
    # an opted-out contact gets nothing but the opt-out confirmation
    assert decide_reply(facts(keyword=Keyword.HELP, opted_out=True), TEXTS) is None
    assert decide_reply(facts(first_contact=True, opted_out=True), TEXTS) is None
