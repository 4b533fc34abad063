"""Campaign pages: the list, composer, preview, launch, live progress and results (the segment
builder is ``crm.web.segment_pages``).

Every action calls the service the JSON API calls (``crm.api.campaigns``) with the same
checks; this module only turns form fields into the API's JSON shapes and back. A refused
action (any ``ValueError`` from a service) rolls back what it had set and is shown with its
reason: a flashed error and a redirect, or the form again with status 422.
"""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime
from typing import Any

import redis
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from crm.campaign_launch import (
    cancel,
    delivery_counts,
    pause,
    request_launch,
    resume,
    state_counts,
)
from crm.campaign_render import NAMES
from crm.campaign_results import results
from crm.campaigns import CHANNELS, EDITABLE, CampaignError, apply_fields, create_campaign
from crm.campaigns import preview_campaign as build_preview
from crm.ids import is_id
from crm.models import (
    Campaign,
    CampaignStatus,
    RecipientState,
    Segment,
)
from crm.web import web
from crm.web.auth import MARKETING, page
from crm.web.form_fields import (
    cursor_arg,
    int_or_raw,
    local_input,
    pairs,
    refused,
    time_zones,
)

PAGE_SIZE = 25
SEGMENTS_SHOWN = 50
SEGMENT_CHOICES = 200  # the composer's segment list: the API's list size
MAX_VARIANTS = 5
# Still moving: the progress fragment keeps polling.
ACTIVE = (CampaignStatus.LAUNCHING, CampaignStatus.RUNNING, CampaignStatus.PAUSED)
# Why contacts are left out of a campaign: crm.audience's reasons and the preview's own two.
EXCLUSION_WHY = {
    "opted_out": "Opted out of this channel.",
    "no_whatsapp_consent": "No WhatsApp opt-in: WhatsApp marketing needs an explicit one.",
    "opt_out_review": "A possible opt-out read in their messages waits for a person's review.",
    "no_phone": "No phone number on record.",
    "invalid_number": "Their phone number is not a valid number.",
    "duplicate": "Merged into another contact (the surviving contact is messaged).",
    "needs_template": "Outside WhatsApp's 24-hour window: only an approved template reaches them.",
    "render_failed": "The message could not be rendered for them.",
}


# --- helpers ------------------------------------------------------------------------------


def _campaign(session: Session, campaign_id: int, *, steps: bool = False) -> Campaign:
    """A broadcast; a sequence step's campaign (run by its sequence, not from these pages)
    only where ``steps`` (its results)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        abort(404, f"Campaign {campaign_id} not found.")
    if campaign.sequence_id is not None and not steps:
        abort(404, f"Campaign {campaign_id} is managed by sequence {campaign.sequence_id}.")
    return campaign


# --- campaigns list -----------------------------------------------------------------------


@web.get("/campaigns")
@page(MARKETING)
def campaigns(*, session: Session):  # type: ignore[no-untyped-def]
    """Newest first, keyset-paged by id. Each launched campaign's progress cell loads after
    the page (``campaign_row_progress``): counting a page of campaigns' recipients at once is
    half a million rows with 25 campaigns of 20,000."""
    before = cursor_arg("before")
    query = (
        select(Campaign)
        .where(Campaign.sequence_id.is_(None))  # broadcasts; sequence steps are their own
        .order_by(Campaign.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before:
        query = query.where(Campaign.id < before)
    rows = list(session.scalars(query))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    segment_ids = {c.segment_id for c in rows if c.segment_id}
    segment_names: dict[int, str] = {}
    if segment_ids:
        found = select(Segment.id, Segment.name).where(Segment.id.in_(segment_ids))
        segment_names = {row.id: row.name for row in session.execute(found)}
    segments_before = cursor_arg("segments_before")
    segment_query = select(Segment).order_by(Segment.id.desc()).limit(SEGMENTS_SHOWN + 1)
    if segments_before:
        segment_query = segment_query.where(Segment.id < segments_before)
    segments = list(session.scalars(segment_query))
    return render_template(
        "web/campaigns.html",
        campaigns=rows,
        segment_names=segment_names,
        next_before=rows[-1].id if more else None,
        first_page=before is None,
        segments=segments[:SEGMENTS_SHOWN],
        next_segments=segments[SEGMENTS_SHOWN - 1].id if len(segments) > SEGMENTS_SHOWN else None,
    )


@web.get("/campaigns/<id:campaign_id>/sent")
@page(MARKETING)
def campaign_row_progress(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """A list row's progress: recipients by state, one index-only count; polled while the
    campaign moves."""
    found = _campaign(session, campaign_id)
    states = state_counts(session, found)
    return render_template(
        "web/campaign_cell.html",
        campaign=found,
        sent=states[RecipientState.SENT.value],
        total=states["total"],
        polling=found.status in ACTIVE,
    )


# --- composer -----------------------------------------------------------------------------


def campaign_data(form: MultiDict[str, str]) -> dict[str, Any]:
    """The composer's fields as the API's campaign JSON (``crm.campaigns.FIELDS``)."""
    data: dict[str, Any] = {
        "name": form.get("name", ""),
        "channel": form.get("channel", ""),
        "sender": form.get("sender", "").strip() or None,
        "content_sid": form.get("content_sid", "").strip() or None,
        "in_contact_timezone": form.get("in_contact_timezone") == "on",
        "timezone": form.get("timezone", "").strip() or "UTC",
        "quiet_start": form.get("quiet_start", "").strip() or None,
        "quiet_end": form.get("quiet_end", "").strip() or None,
    }
    segment_id = form.get("segment_id", "").strip()
    data["segment_id"] = int_or_raw(segment_id) if segment_id else None
    data["content_variables"] = pairs(
        form.get("content_variables", ""), "template variables", CampaignError
    )
    rows = []
    for i in range(MAX_VARIANTS):
        body = form.get(f"variant_body_{i}", "")
        if i and not body.strip():
            continue  # an unused A/B row
        row: dict[str, Any] = {"name": form.get(f"variant_name_{i}", "").strip(), "body": body}
        if weight := form.get(f"variant_weight_{i}", "").strip():
            row["weight"] = int_or_raw(weight)
        rows.append(row)
    if len(rows) == 1:
        rows[0].pop("weight", None)  # one message: all of the audience
    data["variants"] = rows
    if form.get("schedule") == "later":
        local = form.get("send_at", "").strip()
        if not local:
            raise CampaignError("choose when to send, or send now")
        try:
            zone = zoneinfo.ZoneInfo(data["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise CampaignError(f"unknown time zone {data['timezone']!r}") from None
        try:
            data["send_at"] = datetime.fromisoformat(local).replace(tzinfo=zone).isoformat()
        except ValueError:
            data["send_at"] = local  # the service says what is wrong with it
    else:
        data["send_at"] = None
    return data


def _composer_values(campaign: Campaign | None) -> dict[str, Any]:
    if campaign is None:
        return {
            "name": "",
            "channel": "sms",
            "sender": "",
            "segment_id": request.args.get("segment_id", ""),
            "variants": [{"name": "A", "body": "", "weight": ""}],
            "content_sid": "",
            "content_variables": "",
            "schedule": "now",
            "send_at": "",
            "timezone": "UTC",
            "in_contact_timezone": False,
            "quiet_start": "20:00",
            "quiet_end": "08:00",
        }
    return {
        "name": campaign.name,
        "channel": campaign.channel,
        "sender": campaign.sender or "",
        "segment_id": str(campaign.segment_id or ""),
        "variants": [dict(v) for v in campaign.variants]
        or [{"name": "A", "body": "", "weight": ""}],
        "content_sid": campaign.content_sid or "",
        "content_variables": "\n".join(
            f"{k}={v}" for k, v in (campaign.content_variables or {}).items()
        ),
        "schedule": "later" if campaign.send_at else "now",
        "send_at": local_input(campaign.send_at, campaign.timezone),
        "timezone": campaign.timezone,
        "in_contact_timezone": campaign.in_contact_timezone,
        "quiet_start": campaign.quiet_start or "",
        "quiet_end": campaign.quiet_end or "",
    }


def _posted_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """What was typed, to show the form again after a refusal."""
    values: dict[str, Any] = {key: form.get(key, "") for key in form}
    values["in_contact_timezone"] = form.get("in_contact_timezone") == "on"
    values["variants"] = [
        {
            "name": form.get(f"variant_name_{i}", ""),
            "body": form.get(f"variant_body_{i}", ""),
            "weight": form.get(f"variant_weight_{i}", ""),
        }
        for i in range(MAX_VARIANTS)
        if i == 0 or form.get(f"variant_body_{i}", "").strip()
    ]
    return values


def _composer(session: Session, campaign: Campaign | None, values: dict[str, Any], **extra: Any):  # type: ignore[no-untyped-def]
    segments = list(
        session.execute(
            select(Segment.id, Segment.name).order_by(Segment.id.desc()).limit(SEGMENT_CHOICES)
        ).all()
    )
    # The chosen segment is always offered, however old: else saving would clear it.
    chosen = values.get("segment_id")
    offered = {row.id for row in segments}
    if str(chosen).isdecimal() and is_id(int(chosen)) and int(chosen) not in offered:
        segments += session.execute(
            select(Segment.id, Segment.name).where(Segment.id == int(chosen))
        ).all()
    settings = current_app.extensions["crm"].settings
    variants = list(values["variants"])
    while len(variants) < MAX_VARIANTS:
        variants.append({"name": "", "body": "", "weight": ""})
    return render_template(
        "web/campaign_form.html",
        campaign=campaign,
        values=values,
        variants=variants,
        segments=segments,
        channels=CHANNELS,
        time_zones=time_zones(),
        names=NAMES,
        default_senders={
            "sms": settings.twilio_from_number or "",
            "whatsapp": settings.twilio_whatsapp_from or "",
        },
        **extra,
    )


@web.get("/campaigns/new")
@page(MARKETING)
def campaign_new(*, session: Session):  # type: ignore[no-untyped-def]
    return _composer(session, None, _composer_values(None))


@web.post("/campaigns/new")
@page(MARKETING)
def campaign_create(*, session: Session):  # type: ignore[no-untyped-def]
    try:
        campaign = create_campaign(session, campaign_data(request.form), g.user)
    except ValueError as exc:
        session.rollback()
        return _composer(session, None, _posted_values(request.form), error=str(exc)), 422
    flash(
        f"Campaign “{campaign.name}” saved as a draft: check the preview, then launch.", "success"
    )
    return redirect(url_for("web.campaign", campaign_id=campaign.id))


@web.get("/campaigns/<id:campaign_id>/edit")
@page(MARKETING)
def campaign_edit(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    campaign = _campaign(session, campaign_id)
    if campaign.status not in EDITABLE:
        flash(f"Campaign is {campaign.status}: it cannot be edited.", "error")
        return redirect(url_for("web.campaign", campaign_id=campaign_id))
    return _composer(session, campaign, _composer_values(campaign))


@web.post("/campaigns/<id:campaign_id>/edit")
@page(MARKETING)
def campaign_update(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    campaign = _campaign(session, campaign_id)
    try:
        apply_fields(session, campaign, campaign_data(request.form))
        session.flush()
    except ValueError as exc:
        session.rollback()  # apply_fields may have set some fields before refusing
        campaign = _campaign(session, campaign_id)
        return _composer(session, campaign, _posted_values(request.form), error=str(exc)), 422
    flash("Campaign saved.", "success")
    return redirect(url_for("web.campaign", campaign_id=campaign_id))


# --- campaign page, preview, actions ------------------------------------------------------


DELIVERY_CACHE_SECONDS = 5


def _delivery(session: Session, campaign: Campaign, live: bool) -> dict[str, int]:
    """Delivery counts, shared for a few seconds by every open progress panel while the
    campaign sends: they cost a lookup per sent recipient (about 70 ms at 40k), and the
    panel polls every second; the bar itself only needs the cheap state counts."""
    if not live:
        return delivery_counts(session, campaign)
    store = current_app.extensions["crm"].redis
    key = f"crm:campaign-delivery:{campaign.id}"
    try:
        cached = store.get(key)
        if cached is not None:
            return json.loads(cached)
        counts = delivery_counts(session, campaign)
        store.set(key, json.dumps(counts), ex=DELIVERY_CACHE_SECONDS)
        return counts
    except redis.RedisError:
        return delivery_counts(session, campaign)


def _progress_view(session: Session, campaign: Campaign) -> dict[str, Any]:
    """The API's progress figures, and what the bar shows: recipients handled of all."""
    live = campaign.status in ACTIVE
    figures = state_counts(session, campaign) | _delivery(session, campaign, live)
    handled = figures["sent"] + figures["failed"] + figures["skipped"]
    total = figures["total"]
    finished = campaign.status not in ACTIVE
    # Nobody to send to: done at once, a full bar.
    percent = handled * 100 // total if total else (100 if finished else 0)
    return {
        "figures": figures,
        "handled": handled,
        "total": total,
        "percent": percent,
        "polling": not finished,
    }


@web.get("/campaigns/<id:campaign_id>")
@page(MARKETING)
def campaign(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    found = _campaign(session, campaign_id)
    chosen = session.get(Segment, found.segment_id) if found.segment_id else None
    launched = found.launched_at is not None
    inline_preview = None
    if not launched and request.args.get("preview"):
        inline_preview = _preview(session, found)  # without JS: computed in the page
    # The progress counts every recipient (and joins their messages' delivery status): it
    # loads after the page, and in the page only for a browser without JavaScript.
    run = _progress_view(session, found) if launched and request.args.get("progress") else None
    return render_template(
        "web/campaign.html",
        campaign=found,
        segment=chosen,
        editable=found.status in EDITABLE,
        launched=launched,
        run=run,
        inline_preview=inline_preview,
        why=EXCLUSION_WHY,
    )


def _preview(session: Session, campaign: Campaign) -> dict[str, Any]:
    try:
        preview = build_preview(session, campaign)
    except ValueError as exc:  # CampaignError, SegmentError...: no segment, no message yet
        return {"preview": None, "error": str(exc), "culprits": []}
    culprits = [
        {**entry, "code": " ".join(f"U+{ord(c):04X}" for c in entry["character"])}
        for entry in preview.ucs2_characters.values()
    ]
    return {"preview": preview, "error": None, "culprits": culprits}


@web.get("/campaigns/<id:campaign_id>/preview")
@page(MARKETING)
def campaign_preview(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Rendered samples, parts, cost and exclusions with reasons (``preview_campaign``): loaded
    after the page, since it renders every recipient's message."""
    found = _campaign(session, campaign_id)
    if not request.headers.get("HX-Request"):
        return redirect(url_for("web.campaign", campaign_id=campaign_id, preview=1))
    return render_template(
        "web/campaign_preview.html", campaign=found, why=EXCLUSION_WHY, **_preview(session, found)
    )


@web.get("/campaigns/<id:campaign_id>/progress")
@page(MARKETING)
def campaign_progress(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Polled every second while the campaign moves; the answer for a finished campaign has no
    trigger, so polling stops."""
    found = _campaign(session, campaign_id)
    if found.launched_at is None:  # its launch went back to draft (e.g. segment deleted)
        if request.headers.get("HX-Request"):
            return "", 200, {"HX-Refresh": "true"}
        return redirect(url_for("web.campaign", campaign_id=campaign_id))
    return render_template(
        "web/campaign_progress.html",
        campaign=found,
        run=_progress_view(session, found),
        why=EXCLUSION_WHY,
    )


@web.post("/campaigns/<id:campaign_id>/launch")
@page(MARKETING)
def campaign_launch(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Queue the launch (status ``launching``); a worker writes the recipients and sends."""
    found = _campaign(session, campaign_id)
    back = url_for("web.campaign", campaign_id=campaign_id)
    try:
        request_launch(session, found)
        session.flush()
    except ValueError as exc:
        return refused(session, exc, back)
    when = "at the scheduled time" if found.send_at else "as soon as a worker has the recipients"
    quiet = " (outside quiet hours)" if found.quiet_start else ""
    flash(f"Launch queued: sending starts {when}{quiet}.", "success")
    return redirect(back)


def _action(campaign_id: int, session: Session, act: Any, done: str):  # type: ignore[no-untyped-def]
    found = _campaign(session, campaign_id)
    back = url_for("web.campaign", campaign_id=campaign_id)
    try:
        act(session, found)
        session.flush()
    except ValueError as exc:
        return refused(session, exc, back)
    flash(done, "success")
    return redirect(back)


@web.post("/campaigns/<id:campaign_id>/pause")
@page(MARKETING)
def campaign_pause(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _action(campaign_id, session, pause, "Paused: nothing pending is lost.")


@web.post("/campaigns/<id:campaign_id>/resume")
@page(MARKETING)
def campaign_resume(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _action(campaign_id, session, resume, "Resumed.")


@web.post("/campaigns/<id:campaign_id>/cancel")
@page(MARKETING)
def campaign_cancel(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _action(campaign_id, session, cancel, "Cancelled: pending messages will not be sent.")


@web.post("/campaigns/<id:campaign_id>/delete")
@page(MARKETING)
def campaign_delete(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Only a draft or scheduled campaign: a launched one is kept for its results (the API's
    rule)."""
    found = _campaign(session, campaign_id)
    if found.status not in EDITABLE:
        return refused(
            session,
            CampaignError(f"campaign {campaign_id} is {found.status}: it is kept for its results"),
            url_for("web.campaign", campaign_id=campaign_id),
        )
    session.delete(found)
    flash(f"Campaign “{found.name}” deleted.", "success")
    return redirect(url_for("web.campaigns"))


# --- results ------------------------------------------------------------------------------

METRICS = (
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("replied", "Replied"),
    ("opted_out", "Opted out"),
    ("handoffs", "Handoffs"),
)


def bars(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """One bar per figure, as a share of the messages sent."""
    sent = figures["sent"]
    return [
        {
            "key": key,
            "label": label,
            "count": figures[key],
            "share": figures[key] / sent if sent else 0.0,
        }
        for key, label in METRICS
    ]


@web.get("/campaigns/<id:campaign_id>/results")
@page(MARKETING)
def campaign_results(campaign_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    found = _campaign(session, campaign_id, steps=True)
    figures = results(session, found)
    return render_template(
        "web/campaign_results.html",
        campaign=found,
        figures=figures,
        overall=bars(figures),
        variants=[{"name": v["name"], "figures": v, "bars": bars(v)} for v in figures["variants"]],
        metrics=METRICS,
    )
