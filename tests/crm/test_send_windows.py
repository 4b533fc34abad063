"""Schedules and quiet hours in the recipient's local time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm.send_windows import earliest_send, zone_of

ACCRA = "+233241000001"  # UTC+0
NAIROBI = "+254712000002"  # UTC+3
US_ANY = "+15005550005"  # +1 spans many zones: the campaign's zone applies


def at(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def send(now: datetime, phone: str, **kwargs: object) -> datetime:
    options = {
        "campaign_zone": "UTC",
        "send_at": None,
        "in_contact_timezone": False,
        "quiet_start": "20:00",
        "quiet_end": "08:00",
        **kwargs,
    }
    return earliest_send(now=now, phone=phone, **options)  # type: ignore[arg-type]


def test_zones_come_from_the_number_unless_it_spans_several():
    assert str(zone_of(ACCRA, "UTC")) == "Africa/Accra"
    assert str(zone_of(NAIROBI, "UTC")) == "Africa/Nairobi"
    assert str(zone_of(US_ANY, "America/New_York")) == "America/New_York"


@pytest.mark.parametrize(
    ("now", "phone", "expected"),
    [
        (at(12), ACCRA, at(12)),  # midday: now
        (at(19, 59), ACCRA, at(19, 59)),
        (at(20), ACCRA, at(8, day=24)),  # quiet: waits for 08:00 local
        (at(3), ACCRA, at(8)),  # after midnight, still quiet
        (at(16), NAIROBI, at(16)),  # 19:00 in Nairobi
        (at(17), NAIROBI, at(5, day=24)),  # 20:00 in Nairobi -> 08:00 there = 05:00 UTC
        (at(4, 59), NAIROBI, at(5)),
    ],
)
def test_quiet_hours_delay_sends_to_their_end_in_local_time(
    now: datetime, phone: str, expected: datetime
):
    assert send(now, phone) == expected


def test_no_quiet_hours_and_a_window_that_does_not_wrap():
    assert send(at(23), ACCRA, quiet_start=None, quiet_end=None) == at(23)
    assert send(at(13), ACCRA, quiet_start="12:00", quiet_end="14:00") == at(14)
    assert send(at(15), ACCRA, quiet_start="12:00", quiet_end="14:00") == at(15)


def test_a_schedule_in_the_contacts_time_zone_is_the_same_wall_clock_everywhere():
    nine = at(9, day=25)  # 09:00 in the campaign's zone (UTC)
    assert send(at(12), ACCRA, send_at=nine, in_contact_timezone=True) == at(9, day=25)
    assert send(at(12), NAIROBI, send_at=nine, in_contact_timezone=True) == at(6, day=25)
    assert send(at(12), NAIROBI, send_at=nine) == at(9, day=25)  # one moment for all
    assert send(at(12), ACCRA, send_at=at(6, day=20)) == at(12)  # in the past: now
