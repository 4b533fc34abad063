"""Turning form fields into what the services take, and back: numbers that may be too big for
a column, ``name=value`` lines, comma lists, ``datetime-local`` values. A value that is not
what it should be is passed on as text for the service to refuse with its own reason."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime
from typing import Any

from flask import flash, redirect, request
from sqlalchemy.orm import Session


def refused(session: Session, exc: ValueError, target: str):  # type: ignore[no-untyped-def]
    """A service said no: undo what it had set, say why, go back."""
    session.rollback()
    flash(str(exc), "error")
    return redirect(target)


def cursor_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) < 2**31 else None


def int_or_raw(value: str) -> int | str:
    """An integer when it is one (and one a database column can hold); otherwise the text, for
    the service to refuse with its reason."""
    try:
        number = int(value)
    except ValueError:
        return value
    return number if -(2**63) < number < 2**63 else value


def pairs(text: str, what: str, error: type[ValueError]) -> dict[str, str]:
    """``name=value`` lines (blank lines skipped)."""
    pairs = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise error(f"{what}: write one name=value per line ({line.strip()!r})")
        pairs[name.strip()] = value.strip()
    return pairs


def csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def utc(value: str) -> str:
    """A ``datetime-local`` value (no offset) read as UTC; anything else is passed on for the
    service to judge."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def local_input(value: Any, zone: str = "UTC") -> str:
    """An ISO time as a ``datetime-local`` value in ``zone``."""
    if not value:
        return ""
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(zoneinfo.ZoneInfo(zone))
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return ""
    return parsed.strftime("%Y-%m-%dT%H:%M")


@functools.cache
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())
