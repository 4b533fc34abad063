"""Segments and campaigns API (marketers and admins): compose, count, preview.

A sequence's send steps each send through a campaign of their own (``Campaign.sequence_id``):
those are not broadcasts. They are left out of the list, and their sequence alone starts,
pauses and stops them: changing one here is refused (409); reading one and its results is not.
"""

from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.api import api
from crm.api.auth import api_view, json_body
from crm.campaign_launch import cancel, pause, progress, request_launch, resume
from crm.campaign_results import results
from crm.campaigns import CampaignError, apply_fields, create_campaign, preview_campaign
from crm.models import Campaign, CampaignStatus, Role, Segment
from crm.segments import count, parse_filters

MARKETING = frozenset({Role.MARKETER, Role.ADMIN})


class CampaignNotFound(LookupError):
    pass


class ManagedBySequence(RuntimeError):
    """A sequence step's campaign: only its sequence changes it (409)."""


def segment_json(segment: Segment, size: int | None = None) -> dict[str, Any]:
    return {
        "id": segment.id,
        "name": segment.name,
        "filters": segment.filters,
        "count": size,
        "created_at": segment.created_at.isoformat(),
    }


def campaign_json(campaign: Campaign, progress: dict[str, int] | None = None) -> dict[str, Any]:
    """``progress`` (recipients by state, delivered...) only where it was asked for."""
    return {
        "id": campaign.id,
        "name": campaign.name,
        "channel": campaign.channel,
        "sender": campaign.sender,
        "segment_id": campaign.segment_id,
        "variants": campaign.variants,
        "content_sid": campaign.content_sid,
        "content_variables": campaign.content_variables,
        "status": campaign.status,
        "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
        "in_contact_timezone": campaign.in_contact_timezone,
        "timezone": campaign.timezone,
        "quiet_start": campaign.quiet_start,
        "quiet_end": campaign.quiet_end,
        "created_at": campaign.created_at.isoformat(),
        "launched_at": campaign.launched_at.isoformat() if campaign.launched_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
        "summary": campaign.summary or {},
        "progress": progress,
        "sequence_id": campaign.sequence_id,
        "sequence_step": campaign.sequence_step,
    }


def _segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise CampaignNotFound(f"segment {segment_id} not found")
    return segment


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(f"campaign {campaign_id} not found")
    return campaign


def _broadcast(session: Session, campaign_id: int) -> Campaign:
    """A campaign to change: a broadcast, not a sequence step's."""
    campaign = _campaign(session, campaign_id)
    if campaign.sequence_id is not None:
        raise ManagedBySequence(
            f"campaign {campaign_id} is managed by sequence {campaign.sequence_id} "
            f"(step {campaign.sequence_step}): pause, edit or archive the sequence instead"
        )
    return campaign


def _segment_fields(segment: Segment, body: dict[str, Any]) -> None:
    if unknown := sorted(set(body) - {"name", "filters"}):
        raise CampaignError(f"cannot set {', '.join(unknown)}; fields: name, filters")
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise CampaignError("name is required, at most 200 characters")
        segment.name = name.strip()
    if "filters" in body:
        parse_filters(body["filters"])  # raises SegmentError with the reason
        segment.filters = body["filters"]


@api.get("/segments")
@api_view(MARKETING)
def list_segments(*, session: Session):  # type: ignore[no-untyped-def]
    segments = session.scalars(select(Segment).order_by(Segment.id.desc()).limit(200))
    return {"data": [segment_json(s) for s in segments]}


@api.post("/segments/count")
@api_view(MARKETING)
def count_segment(*, session: Session):  # type: ignore[no-untyped-def]
    """The live count for filters being composed (not saved)."""
    filters = parse_filters(json_body().get("filters", {}))
    return {"count": count(session, filters)}


@api.post("/segments")
@api_view(MARKETING)
def create_segment(*, session: Session):  # type: ignore[no-untyped-def]
    body = json_body()
    if "name" not in body:
        raise CampaignError("name is required")
    segment = Segment(name="", filters={}, created_by=g.user.id)
    _segment_fields(segment, body)
    session.add(segment)
    session.flush()
    return segment_json(segment, count(session, parse_filters(segment.filters))), 201


@api.get("/segments/<id:segment_id>")
@api_view(MARKETING)
def show_segment(segment_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    segment = _segment(session, segment_id)
    return segment_json(segment, count(session, parse_filters(segment.filters)))


@api.patch("/segments/<id:segment_id>")
@api_view(MARKETING)
def update_segment(segment_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    segment = _segment(session, segment_id)
    _segment_fields(segment, json_body())
    session.flush()
    return segment_json(segment, count(session, parse_filters(segment.filters)))


@api.delete("/segments/<id:segment_id>")
@api_view(MARKETING)
def delete_segment(segment_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    session.delete(_segment(session, segment_id))
    return "", 204


@api.get("/campaigns")
@api_view(MARKETING)
def list_campaigns(*, session: Session):  # type: ignore[no-untyped-def]
    broadcasts = select(Campaign).where(Campaign.sequence_id.is_(None))
    campaigns = session.scalars(broadcasts.order_by(Campaign.id.desc()).limit(200))
    return {"data": [campaign_json(c) for c in campaigns]}


@api.post("/campaigns")
@api_view(MARKETING)
def create(*, session: Session):  # type: ignore[no-untyped-def]
    return campaign_json(create_campaign(session, json_body(), g.user)), 201


@api.get("/campaigns/<id:campaign_id>")
@api_view(MARKETING)
def show_campaign(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """With live progress once launched (poll it; the CLI's --follow does)."""
    campaign = _campaign(session, campaign_id)
    launched = campaign.launched_at is not None
    return campaign_json(campaign, progress(session, campaign) if launched else None)


@api.patch("/campaigns/<id:campaign_id>")
@api_view(MARKETING)
def update_campaign(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    campaign = _broadcast(session, campaign_id)
    apply_fields(session, campaign, json_body())
    session.flush()
    return campaign_json(campaign)


@api.delete("/campaigns/<id:campaign_id>")
@api_view(MARKETING)
def delete_campaign(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    campaign = _broadcast(session, campaign_id)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise CampaignError(
            f"campaign {campaign_id} is {campaign.status}: it is kept for its results"
        )
    session.delete(campaign)
    return "", 204


@api.post("/campaigns/<id:campaign_id>/preview")
@api_view(MARKETING)
def preview(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Rendered samples, parts and cost, exclusions with reasons: before pressing send."""
    return preview_campaign(session, _campaign(session, campaign_id)).as_json()


@api.post("/campaigns/<id:campaign_id>/launch")
@api_view(MARKETING)
def launch_campaign(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Queue the launch: a worker materializes the recipients and starts sending (at send_at,
    outside quiet hours)."""
    campaign = _broadcast(session, campaign_id)
    request_launch(session, campaign)
    session.flush()
    return campaign_json(campaign, progress(session, campaign)), 202


@api.post("/campaigns/<id:campaign_id>/pause")
@api_view(MARKETING)
def pause_campaign(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    campaign = _broadcast(session, campaign_id)
    pause(session, campaign)
    return campaign_json(campaign, progress(session, campaign))


@api.post("/campaigns/<id:campaign_id>/resume")
@api_view(MARKETING)
def resume_campaign(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    campaign = _broadcast(session, campaign_id)
    resume(session, campaign)
    return campaign_json(campaign, progress(session, campaign))


@api.post("/campaigns/<id:campaign_id>/cancel")
@api_view(MARKETING)
def cancel_campaign(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    campaign = _broadcast(session, campaign_id)
    cancel(session, campaign)
    session.flush()
    return campaign_json(campaign, progress(session, campaign) if campaign.launched_at else None)


@api.get("/campaigns/<id:campaign_id>/results")
@api_view(MARKETING)
def campaign_results(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Delivery, reply and opt-out rates, handoffs and revenue attributed to the campaign."""
    return results(session, _campaign(session, campaign_id))
