"""How many messages a second each sender may send: the rule the campaign workers apply
(``workers.send_rate`` schedules the sends) and the admin pages show."""

from __future__ import annotations

import re

from channels.twilio import MESSAGING_SERVICE_SID

DEFAULT_LONG_CODE_PER_SECOND = 1
DEFAULT_SERVICE_PER_SECOND = 100
# Twilio lets a WhatsApp sender send 10 text messages a second unless raised (up to 50) on
# request; it is a budget of its own, apart from the same number's SMS.
DEFAULT_WHATSAPP_PER_SECOND = 10
WHATSAPP_KEY = "whatsapp:"

_SHORT_CODE = re.compile(r"[0-9]{5,6}")


def is_high_throughput(sender: str) -> bool:
    """Whether ``sender`` is a Messaging Service SID (``MG`` + 32 hex) or a short code (5-6
    digits), which providers let send far faster than a long code."""
    return bool(MESSAGING_SERVICE_SID.fullmatch(sender) or _SHORT_CODE.fullmatch(sender))


def rate_key(channel: str, sender: str) -> str:
    """The budget a send draws on: the sender's, and for WhatsApp ``whatsapp:<sender>``
    (the same number's SMS and WhatsApp are limited apart)."""
    return WHATSAPP_KEY + sender if channel == "whatsapp" else sender


def limit_for(
    sender: str,
    configured: dict[str, int],
    default_long_code: int = DEFAULT_LONG_CODE_PER_SECOND,
    default_service: int = DEFAULT_SERVICE_PER_SECOND,
) -> int:
    """Messages per second allowed for ``sender`` (a :func:`rate_key`).

    The rule, first match wins:

    1. ``configured[sender]``, when the operator set one (exact string, ``whatsapp:`` prefix
       included for a WhatsApp sender);
    2. ``DEFAULT_WHATSAPP_PER_SECOND`` (10) for a WhatsApp sender;
    3. ``default_service`` (100) for a Messaging Service SID or a short code;
    4. ``default_long_code`` (1) for anything else: an E.164 long code such as ``+15005550006``,
       and, to be safe, any sender we do not recognise.
    """
    if sender in configured:
        return configured[sender]
    if sender.startswith(WHATSAPP_KEY):
        return DEFAULT_WHATSAPP_PER_SECOND
    if is_high_throughput(sender):
        return default_service
    return default_long_code
