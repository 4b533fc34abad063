"""Jinja filters and globals the pages share: times, money, chips."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask

from crm.models.base import utcnow


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """ "3 min ago", "2 h ago", "5 d ago": what a rep scanning a list needs."""
    if when is None:
        return ""
    seconds = int(((now or utcnow()) - when).total_seconds())
    if seconds < 0:
        return "in " + until(when, now)
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def until(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return ""
    seconds = max(0, int((when - (now or utcnow())).total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400} d"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60}:{seconds % 60:02d}"


def stamp(when: datetime | None) -> str:
    """An absolute time in UTC, ISO 8601, for ``<time datetime>`` and tooltips."""
    return when.isoformat(timespec="seconds") if when else ""


def in_zone(when: datetime | None, zone: str | None) -> datetime | None:
    """``when`` on the clock of ``zone`` (an IANA name); unchanged if the zone is unknown."""
    if when is None or not zone:
        return when
    try:
        return when.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return when


def short_time(when: datetime | None) -> str:
    return when.strftime("%d %b %H:%M") if when else ""


def money(amount: Decimal | float | int | None, currency: str = "") -> str:
    if amount is None:
        return ""
    return f"{currency} {Decimal(amount):,.2f}".strip()


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def register(app: Flask) -> None:
    filters: dict[str, Any] = {
        "ago": ago,
        "until": until,
        "stamp": stamp,
        "short_time": short_time,
        "in_zone": in_zone,
        "money": money,
        "percent": percent,
    }
    app.jinja_env.filters.update(filters)
    app.jinja_env.globals["now"] = utcnow
