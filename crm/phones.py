"""Phone numbers in E.164, through the ``phonenumbers`` library."""

from __future__ import annotations

import functools

import phonenumbers


class InvalidPhoneNumber(ValueError):
    pass


@functools.lru_cache(maxsize=65536)
def to_e164(raw: str, default_region: str) -> str:
    """Normalize ``raw`` to E.164, reading numbers without a country code in ``default_region``.

    Raises :class:`InvalidPhoneNumber` with a message fit for an API error. Cached: the same
    customers write again and again, and parsing is the costliest step of a webhook.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("phone number is empty")
    if len(text) > 40:
        raise InvalidPhoneNumber("phone number is too long")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"not a phone number: {text!r} ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"not a valid phone number: {text!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None
