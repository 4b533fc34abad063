"""What the bot answers to an inbound message, decided from plain facts (no HTTP, no database)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.keywords import Keyword


@dataclass(frozen=True)
class ReplyTexts:
    help: str
    opt_out: str
    opt_in: str
    welcome: str


@dataclass(frozen=True)
class InboundFacts:
    keyword: Keyword | None
    handled_by_provider: bool  # Twilio Advanced Opt-Out already answered the keyword
    opted_out: bool  # the contact's consent on this channel after the keyword was applied
    first_contact: bool
    auto_reply: str | None = None  # a matching auto-reply rule's answer
    rep_handling: bool = False  # a rep is talking with this contact: the bot stays quiet


def decide_reply(facts: InboundFacts, texts: ReplyTexts) -> str | None:
    """The reply text, or None for no reply.

    An opted-out contact gets nothing but the opt-out confirmation; a keyword the provider
    already answered is not answered twice; compliance keywords are answered even while a rep
    handles the conversation, nothing else is.
    """
    if facts.keyword is not None:
        if facts.handled_by_provider:
            return None
        if facts.keyword is Keyword.OPT_OUT:
            return texts.opt_out
        if facts.opted_out:
            return None
        return texts.opt_in if facts.keyword is Keyword.OPT_IN else texts.help
    if facts.opted_out or facts.rep_handling:
        return None
    if facts.auto_reply:
        return facts.auto_reply
    if facts.first_contact and texts.welcome:
        return texts.welcome
    return None
