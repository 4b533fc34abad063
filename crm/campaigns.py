"""Campaigns: compose, check and change a campaign before launch.

A campaign is edited only while it is a draft (or scheduled, which is a draft with a time).
Its variants are compiled when saved (``crm.campaign_preview.parse_variants``), so a template
error is refused at once with where it is. WhatsApp marketing outside the 24-hour window needs
an approved template (a ``content_sid``); the preview counts who it cannot reach without one.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from crm.campaign_preview import Preview, build_preview, parse_variants
from crm.campaign_render import TemplateError
from crm.ids import is_id
from crm.models import Campaign, CampaignStatus, Segment, User
from crm.segments import parse_filters

CHANNELS = ("sms", "whatsapp")
EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
FIELDS = (
    "name",
    "channel",
    "sender",
    "segment_id",
    "variants",
    "body",
    "content_sid",
    "content_variables",
    "send_at",
    "in_contact_timezone",
    "timezone",
    "quiet_start",
    "quiet_end",
)
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
_SENDER = re.compile(r"^(\+[1-9]\d{6,14}|MG[0-9a-fA-F]{32}|\d{3,8}|[A-Za-z0-9 ]{1,11})$")


class CampaignError(ValueError):
    """A campaign that is not valid, or a change its state does not allow (answered 422)."""


def _set_text(campaign: Campaign, data: dict[str, Any], name: str, limit: int) -> None:
    value = data[name]
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise CampaignError(f"{name} must be a string of at most {limit} characters")
    if isinstance(value, str) and "\x00" in value:  # PostgreSQL cannot store it
        raise CampaignError(f"{name} may not contain NUL characters")
    setattr(campaign, name, value.strip() if isinstance(value, str) else None)


def _hhmm(value: object, name: str) -> str | None:
    if value is None:
        return None
    try:
        return time.fromisoformat(str(value)).strftime("%H:%M")
    except ValueError:
        raise CampaignError(f"{name} must be a time of day, HH:MM") from None


def apply_fields(session: Session, campaign: Campaign, data: dict[str, Any]) -> None:
    """Set the given fields on a campaign being composed; all checked, nothing half-set."""
    if unknown := sorted(set(data) - set(FIELDS)):
        raise CampaignError(f"cannot set {', '.join(unknown)}; fields: {', '.join(FIELDS)}")
    if campaign.status not in EDITABLE:
        raise CampaignError(f"campaign {campaign.id} is {campaign.status}: it cannot be edited")
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise CampaignError("name is required")
        _set_text(campaign, data, "name", 200)
    if "channel" in data:
        if data["channel"] not in CHANNELS:
            raise CampaignError(f"channel must be one of {', '.join(CHANNELS)}")
        campaign.channel = data["channel"]
    if "sender" in data:
        sender = data["sender"]
        if sender is not None and (not isinstance(sender, str) or not _SENDER.fullmatch(sender)):
            raise CampaignError(
                "sender must be an E.164 number, a short code, a Messaging Service SID or an "
                "alphanumeric sender id"
            )
        campaign.sender = sender
    if "segment_id" in data:
        segment_id = data["segment_id"]
        if segment_id is not None and (
            not is_id(segment_id) or session.get(Segment, segment_id) is None
        ):
            raise CampaignError(f"no segment {segment_id}")
        campaign.segment_id = segment_id
    if "body" in data and "variants" in data:
        raise CampaignError("give body (one message) or variants (A/B), not both")
    if "body" in data:
        data = {**data, "variants": [{"name": "A", "body": data["body"], "weight": 100}]}
    if "variants" in data:
        try:
            variants = parse_variants(data["variants"])
        except TemplateError as exc:
            raise CampaignError(str(exc)) from None
        # Stored as the preview and the launch read them: names normalized, weights explicit.
        campaign.variants = [
            {"name": v.name, "body": v.template.source, "weight": v.weight} for v in variants
        ]
    if "content_sid" in data:
        sid = data["content_sid"]
        if sid is not None and (not isinstance(sid, str) or not _CONTENT_SID.fullmatch(sid)):
            raise CampaignError("content_sid must be a Twilio Content SID (HX + 32 hex)")
        campaign.content_sid = sid
    if "content_variables" in data:
        variables = data["content_variables"]
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise CampaignError("content_variables maps template variables to strings")
        campaign.content_variables = variables
    if "send_at" in data:
        campaign.send_at = _when(data["send_at"])
        campaign.status = (
            CampaignStatus.SCHEDULED.value if campaign.send_at else CampaignStatus.DRAFT.value
        )
    if "in_contact_timezone" in data:
        if not isinstance(data["in_contact_timezone"], bool):
            raise CampaignError("in_contact_timezone must be true or false")
        campaign.in_contact_timezone = data["in_contact_timezone"]
    if "timezone" in data:
        try:
            ZoneInfo(str(data["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise CampaignError(f"unknown time zone {data['timezone']!r}") from None
        campaign.timezone = str(data["timezone"])
    for name in ("quiet_start", "quiet_end"):
        if name in data:
            setattr(campaign, name, _hhmm(data[name], name))
    if (campaign.quiet_start is None) != (campaign.quiet_end is None):
        raise CampaignError("quiet hours need both quiet_start and quiet_end (or neither)")


def _when(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise CampaignError("send_at must be an ISO 8601 time with an offset") from None
    if parsed.tzinfo is None:
        raise CampaignError("send_at needs a UTC offset, e.g. +00:00")
    return parsed


def create_campaign(session: Session, data: dict[str, Any], user: User) -> Campaign:
    for required in ("name", "channel"):
        if required not in data:
            raise CampaignError(f"{required} is required")
    campaign = Campaign(
        name="",
        channel="sms",
        variants=[],
        content_variables={},
        status=CampaignStatus.DRAFT.value,
        in_contact_timezone=False,
        timezone="UTC",
        quiet_start="20:00",
        quiet_end="08:00",
        summary={},
        created_by=user.id,
    )
    apply_fields(session, campaign, data)
    session.add(campaign)
    session.flush()
    return campaign


def ready_to_send(campaign: Campaign) -> None:
    """What a launch needs: a segment and a message (or a template on WhatsApp)."""
    if campaign.segment_id is None:
        raise CampaignError("choose a segment first")
    if not campaign.variants and not campaign.content_sid:
        raise CampaignError("write the message first")


def preview_campaign(session: Session, campaign: Campaign, samples: int = 5) -> Preview:
    ready_to_send(campaign)
    segment = session.get_one(Segment, campaign.segment_id)
    variants = parse_variants(campaign.variants) if campaign.variants else []
    if not variants:
        raise CampaignError("a WhatsApp template campaign needs a fallback body to preview")
    return build_preview(
        session,
        filters=parse_filters(segment.filters),
        channel=campaign.channel,
        variants=variants,
        content_sid=campaign.content_sid,
        samples=samples,
    )
