"""Segments: saved filters over contacts, compiled to one SQL query.

Filters (all optional, combined with AND):

- ``stages``: lifecycle stages (any of); ``score_min`` / ``score_max``
- ``tags``: any of these tags; ``exclude_tags``: none of these
- ``consent``: ``{"sms": "opted_in" | "opted_out" | "unknown", "whatsapp": ...}``
- ``last_inbound_after`` / ``last_inbound_before``: ISO 8601 times (the contact's latest
  inbound message, any channel)
- ``sentiment``: rolled-up sentiments (any of: negative, neutral, positive)
- ``countries``: ISO regions (``GH``, ``KE``...) by the E.164 calling code of a phone number (a
  calling code shared by several countries, like +1, matches all of them)
- ``attributes``: ``{"town": "Kumasi"}``, custom attributes equal to these values

Merged contacts (tombstones) are never in a segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import Select, and_, exists, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from crm.models import ChannelConsent, ConsentStatus, Contact, ContactTag, Identity, LifecycleStage

CONSENT_VALUES = ("opted_in", "opted_out", "unknown")
SENTIMENTS = ("negative", "neutral", "positive")
CHANNELS = ("sms", "whatsapp", "voice", "ussd")
MAX_LIST = 200


class SegmentError(ValueError):
    """A filter that cannot be used; the message says which and why (answered with 422)."""


@dataclass(frozen=True)
class SegmentFilters:
    stages: tuple[str, ...] = ()
    score_min: int | None = None
    score_max: int | None = None
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    consent: dict[str, str] = field(default_factory=dict)
    last_inbound_after: datetime | None = None
    last_inbound_before: datetime | None = None
    sentiment: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    attributes: dict[str, str | int | float | bool] = field(default_factory=dict)


KNOWN = frozenset(SegmentFilters.__dataclass_fields__)


def _strings(
    raw: dict[str, Any], name: str, allowed: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    value = raw.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SegmentError(f"{name} must be a list of strings")
    if len(value) > MAX_LIST:
        raise SegmentError(f"{name}: at most {MAX_LIST} values")
    if allowed is not None and (bad := [v for v in value if v not in allowed]):
        raise SegmentError(f"{name}: {', '.join(bad)} not among {', '.join(allowed)}")
    return tuple(v.strip() for v in value)


def _int(raw: dict[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SegmentError(f"{name} must be an integer")
    return value


def _time(raw: dict[str, Any], name: str) -> datetime | None:
    value = raw.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise SegmentError(f"{name} must be an ISO 8601 time with an offset") from None
    if parsed.tzinfo is None:
        raise SegmentError(f"{name} needs a UTC offset, e.g. 2026-11-01T00:00:00+00:00")
    return parsed


def parse_filters(raw: object) -> SegmentFilters:
    """Validate a segment's filters (a JSON object)."""
    if not isinstance(raw, dict):
        raise SegmentError("filters must be a JSON object")
    if unknown := sorted(set(raw) - KNOWN):
        raise SegmentError(
            f"unknown filters {', '.join(unknown)}; known: {', '.join(sorted(KNOWN))}"
        )
    consent = raw.get("consent", {})
    if not isinstance(consent, dict) or any(
        channel not in CHANNELS or status not in CONSENT_VALUES
        for channel, status in consent.items()
    ):
        raise SegmentError(
            f"consent maps a channel ({', '.join(CHANNELS)}) to {', '.join(CONSENT_VALUES)}"
        )
    countries = tuple(c.upper() for c in _strings(raw, "countries"))
    if bad := [c for c in countries if not phonenumbers.country_code_for_region(c)]:
        raise SegmentError(f"countries: {', '.join(bad)} are not ISO region codes")
    attributes = raw.get("attributes", {})
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in attributes.items()
    ):
        raise SegmentError("attributes maps names to a string, number or boolean")
    filters = SegmentFilters(
        stages=_strings(raw, "stages", tuple(LifecycleStage)),
        score_min=_int(raw, "score_min"),
        score_max=_int(raw, "score_max"),
        tags=tuple(t.lower() for t in _strings(raw, "tags")),
        exclude_tags=tuple(t.lower() for t in _strings(raw, "exclude_tags")),
        consent=dict(consent),
        last_inbound_after=_time(raw, "last_inbound_after"),
        last_inbound_before=_time(raw, "last_inbound_before"),
        sentiment=_strings(raw, "sentiment", SENTIMENTS),
        countries=countries,
        attributes=dict(attributes),
    )
    if (
        filters.score_min is not None
        and filters.score_max is not None
        and filters.score_min > filters.score_max
    ):
        raise SegmentError("score_min is above score_max")
    return filters


# Subqueries use aliases: a query that joins these tables itself (crm.audience joins the
# contact's phone and consent) must not have them correlated away.


def _has_tag(tags: tuple[str, ...]):  # type: ignore[no-untyped-def]
    tag = aliased(ContactTag)
    return exists().where(tag.contact_id == Contact.id, tag.tag.in_(tags))


def _consent(channel: str, status: str):  # type: ignore[no-untyped-def]
    consent = aliased(ChannelConsent)
    row = exists().where(consent.contact_id == Contact.id, consent.channel == channel)
    if status == "unknown":
        return not_(row)
    wanted = ConsentStatus.OPTED_IN if status == "opted_in" else ConsentStatus.OPTED_OUT
    return exists().where(
        consent.contact_id == Contact.id,
        consent.channel == channel,
        consent.status == wanted.value,
    )


def _in_countries(countries: tuple[str, ...]):  # type: ignore[no-untyped-def]
    codes = sorted({phonenumbers.country_code_for_region(c) for c in countries})
    phone = aliased(Identity)
    return exists().where(
        phone.contact_id == Contact.id,
        phone.kind == "phone",
        or_(*(phone.value.like(f"+{code}%") for code in codes)),
    )


def conditions(filters: SegmentFilters, *, with_merged: bool = False) -> list[Any]:
    """The WHERE conditions of a segment, on ``contacts`` (merged tombstones left out unless
    ``with_merged``: the audience counts them as duplicates)."""
    where: list[Any] = [] if with_merged else [Contact.merged_into_id.is_(None)]
    if filters.stages:
        where.append(Contact.lifecycle_stage.in_(filters.stages))
    if filters.score_min is not None:
        where.append(Contact.score >= filters.score_min)
    if filters.score_max is not None:
        where.append(Contact.score <= filters.score_max)
    if filters.tags:
        where.append(_has_tag(filters.tags))
    if filters.exclude_tags:
        where.append(not_(_has_tag(filters.exclude_tags)))
    where.extend(_consent(channel, status) for channel, status in filters.consent.items())
    if filters.last_inbound_after is not None:
        where.append(Contact.last_touch_at >= filters.last_inbound_after)
    if filters.last_inbound_before is not None:
        where.append(Contact.last_touch_at < filters.last_inbound_before)
    if filters.sentiment:
        where.append(Contact.sentiment.in_(filters.sentiment))
    if filters.countries:
        where.append(_in_countries(filters.countries))
    for name, value in filters.attributes.items():
        where.append(_attribute_equals(name, value))
    return where


def _attribute_equals(name: str, value: str | int | float | bool):  # type: ignore[no-untyped-def]
    """Compared as text, so a contact whose value is not a number (imports store strings)
    never makes the database fail a cast: 2 matches "2" and 2, true matches "true" and true
    (which SQLite's JSON functions read as 1)."""
    stored = func.lower(Contact.attributes[name].as_string())
    if isinstance(value, bool):
        return stored.in_(("true", "1") if value else ("false", "0"))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return stored == str(value).lower()


def segment_query(filters: SegmentFilters) -> Select[tuple[int]]:
    """The ids of the contacts in the segment, in id order."""
    return select(Contact.id).where(and_(*conditions(filters))).order_by(Contact.id)


def count(session: Session, filters: SegmentFilters) -> int:
    """The live count shown in the composer."""
    return (
        session.scalar(select(func.count()).select_from(Contact).where(and_(*conditions(filters))))
        or 0
    )
