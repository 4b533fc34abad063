"""Segments: each filter, their combination as one query, and clear errors for bad filters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.contacts import set_tags
from crm.models import ChannelConsent, Contact, Identity
from crm.models.base import utcnow
from crm.runtime import Runtime
from crm.segments import SegmentError, count, parse_filters, segment_query

PEOPLE = [
    # name, phone, stage, score, tags, sentiment, attributes, days since last inbound
    ("Ama", "+233241000001", "lead", 10, ["vip"], "positive", {"town": "Kumasi"}, 1),
    ("Kofi", "+233241000002", "mql", 55, ["wholesale"], "neutral", {"town": "Accra"}, 10),
    ("Wanjiru", "+254712000003", "mql", 70, ["vip", "wholesale"], "negative", {"kids": 2}, 40),
    ("Chinedu", "+2348031000004", "customer", 90, [], None, {"vip": True}, None),
    ("Zoe", "+15005550005", "subscriber", 0, ["lapsed"], "neutral", {}, 100),
]


@pytest.fixture
def people(runtime: Runtime) -> dict[str, int]:
    now = utcnow()
    ids = {}
    with runtime.session() as session:
        for name, phone, stage, score, tags, sentiment, attributes, days in PEOPLE:
            contact = Contact(
                name=name,
                lifecycle_stage=stage,
                score=score,
                sentiment=sentiment,
                attributes=attributes,
                last_touch_at=now - timedelta(days=days) if days is not None else None,
            )
            session.add(contact)
            session.flush()
            session.add(Identity(contact_id=contact.id, kind="phone", value=phone))
            set_tags(session=session, contact=contact, tags=tags)
            ids[name] = contact.id
        session.add_all(
            [
                ChannelConsent(
                    contact_id=ids["Ama"], channel="whatsapp", status="opted_in", source="test"
                ),
                ChannelConsent(
                    contact_id=ids["Kofi"], channel="sms", status="opted_out", source="test"
                ),
            ]
        )
        merged = Contact(name="Old Ama", lifecycle_stage="lead", merged_into_id=ids["Ama"])
        session.add(merged)
    return ids


def names(rt: Runtime, raw: dict, people: dict[str, int]) -> list[str]:
    by_id = {v: k for k, v in people.items()}
    filters = parse_filters(raw)
    with rt.session() as session:
        found = [by_id[i] for i in session.scalars(segment_query(filters))]
        assert count(session, filters) == len(found)
    return found


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, ["Ama", "Kofi", "Wanjiru", "Chinedu", "Zoe"]),  # never the merged tombstone
        ({"stages": ["mql"]}, ["Kofi", "Wanjiru"]),
        ({"score_min": 55, "score_max": 70}, ["Kofi", "Wanjiru"]),
        ({"tags": ["VIP"]}, ["Ama", "Wanjiru"]),
        ({"tags": ["wholesale"], "exclude_tags": ["vip"]}, ["Kofi"]),
        ({"consent": {"whatsapp": "opted_in"}}, ["Ama"]),
        ({"consent": {"sms": "opted_out"}}, ["Kofi"]),
        ({"consent": {"sms": "unknown"}}, ["Ama", "Wanjiru", "Chinedu", "Zoe"]),
        ({"sentiment": ["neutral", "negative"]}, ["Kofi", "Wanjiru", "Zoe"]),
        ({"countries": ["gh"]}, ["Ama", "Kofi"]),
        ({"countries": ["KE", "NG"]}, ["Wanjiru", "Chinedu"]),
        ({"countries": ["CA"]}, ["Zoe"]),  # +1 is shared: the calling code decides
        ({"attributes": {"town": "Kumasi"}}, ["Ama"]),
        ({"attributes": {"kids": 2}}, ["Wanjiru"]),
        ({"attributes": {"vip": True}}, ["Chinedu"]),
        ({"stages": ["mql", "lead"], "tags": ["wholesale"], "countries": ["GH"]}, ["Kofi"]),
    ],
)
def test_each_filter_and_their_combination(
    runtime: Runtime, people: dict[str, int], raw: dict, expected: list[str]
):
    assert names(runtime, raw, people) == expected


def test_last_inbound_windows(runtime: Runtime, people: dict[str, int]):
    now = utcnow()
    recent = {"last_inbound_after": (now - timedelta(days=30)).isoformat()}
    assert names(runtime, recent, people) == ["Ama", "Kofi"]
    quiet = {"last_inbound_before": (now - timedelta(days=30)).isoformat()}
    assert names(runtime, quiet, people) == ["Wanjiru", "Zoe"]  # never wrote: in neither


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ([], "JSON object"),
        ({"stage": ["mql"]}, "unknown filters stage"),
        ({"stages": ["hot"]}, "hot not among"),
        ({"stages": "mql"}, "list of strings"),
        ({"score_min": "40"}, "integer"),
        ({"score_min": 60, "score_max": 50}, "above"),
        ({"consent": {"sms": "maybe"}}, "consent"),
        ({"consent": {"fax": "opted_in"}}, "consent"),
        ({"countries": ["Ghana"]}, "ISO region"),
        ({"last_inbound_after": "yesterday"}, "ISO 8601"),
        ({"last_inbound_after": "2026-11-01T00:00:00"}, "UTC offset"),
        ({"attributes": {"town": ["a", "b"]}}, "attributes"),
        ({"tags": ["x"] * 201}, "at most 200"),
    ],
)
def test_bad_filters_say_what_is_wrong(raw: object, words: str):
    with pytest.raises(SegmentError, match=words):
        parse_filters(raw)
