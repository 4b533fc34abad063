"""When a campaign message may go out to one recipient: the schedule and quiet hours, in the
recipient's local time.

A recipient's time zone comes from their number (libphonenumber's time zone data); a number
whose prefix spans several zones (+1 without a known area code) uses the campaign's zone.
Quiet hours (default 20:00-08:00, may wrap midnight) delay a send to their end: a message waits,
it is never dropped.
"""

from __future__ import annotations

import functools
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones


@functools.lru_cache(maxsize=4096)
def zone_of(phone: str, fallback: str) -> ZoneInfo:
    """The recipient's zone, or ``fallback`` when the number does not pin one down."""
    try:
        zones = phone_timezones.time_zones_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        zones = ()
    name = zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else fallback
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return ZoneInfo("UTC")


def _in_quiet_hours(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # wraps midnight, e.g. 20:00-08:00


def after_quiet_hours(
    moment: datetime, zone: ZoneInfo, start: time | None, end: time | None
) -> datetime:
    """``moment`` if it is outside quiet hours in ``zone``, else the end of those quiet hours."""
    if start is None or end is None:
        return moment
    local = moment.astimezone(zone)
    if not _in_quiet_hours(local.time(), start, end):
        return moment
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(moment.tzinfo)


def earliest_send(
    *,
    now: datetime,
    phone: str,
    campaign_zone: str,
    send_at: datetime | None,
    in_contact_timezone: bool,
    quiet_start: str | None,
    quiet_end: str | None,
) -> datetime:
    """The first moment the message may go to ``phone`` (UTC)."""
    zone = zone_of(phone, campaign_zone)
    moment = now
    if send_at is not None:
        if in_contact_timezone:
            # The same wall-clock time everywhere: 09:00 in Accra, then 09:00 in Nairobi...
            wall = send_at.astimezone(ZoneInfo(campaign_zone)).replace(tzinfo=None)
            moment = max(now, wall.replace(tzinfo=zone).astimezone(now.tzinfo))
        else:
            moment = max(now, send_at.astimezone(now.tzinfo))
    start = time.fromisoformat(quiet_start) if quiet_start else None
    end = time.fromisoformat(quiet_end) if quiet_end else None
    return after_quiet_hours(moment, zone, start, end)
