"""Segment builder pages: the segment filters as a form, with a live count as they change.

Saving goes through the API's checks (a name, then ``crm.segments.parse_filters``); the count
is ``crm.segments.count`` on the filters being composed.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from crm.campaigns import CampaignError
from crm.models import LifecycleStage, Segment
from crm.segments import CHANNELS as CONSENT_CHANNELS
from crm.segments import CONSENT_VALUES, SENTIMENTS, SegmentError, count, parse_filters
from crm.web import web
from crm.web.auth import MARKETING, page
from crm.web.form_fields import csv_list, int_or_raw, local_input, pairs, utc


def _segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        abort(404, f"Segment {segment_id} not found.")
    return segment


def filters_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """The builder's fields as ``crm.segments`` filters (a JSON object, as the API takes)."""
    filters: dict[str, Any] = {}
    for name in ("stages", "sentiment"):
        if values := form.getlist(name):
            filters[name] = values
    for name in ("score_min", "score_max"):
        if value := form.get(name, "").strip():
            filters[name] = int_or_raw(value)
    for name in ("tags", "exclude_tags", "countries"):
        if values := csv_list(form.get(name, "")):
            filters[name] = values
    consent = {
        channel: form[f"consent_{channel}"]
        for channel in CONSENT_CHANNELS
        if form.get(f"consent_{channel}")
    }
    if consent:
        filters["consent"] = consent
    for name in ("last_inbound_after", "last_inbound_before"):
        if value := form.get(name, "").strip():
            filters[name] = utc(value)
    attributes: dict[str, Any] = {}
    for name, value in pairs(form.get("attributes", ""), "attributes", SegmentError).items():
        attributes[name] = {"true": True, "false": False}.get(value.lower(), value)
    if attributes:
        filters["attributes"] = attributes
    return filters


def form_from_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """Saved filters as the builder's field values."""
    consent = filters.get("consent") or {}
    attributes = filters.get("attributes") or {}
    return {
        "stages": list(filters.get("stages") or []),
        "sentiment": list(filters.get("sentiment") or []),
        "score_min": "" if filters.get("score_min") is None else filters["score_min"],
        "score_max": "" if filters.get("score_max") is None else filters["score_max"],
        "tags": ", ".join(filters.get("tags") or []),
        "exclude_tags": ", ".join(filters.get("exclude_tags") or []),
        "countries": ", ".join(filters.get("countries") or []),
        **{f"consent_{channel}": consent.get(channel, "") for channel in CONSENT_CHANNELS},
        "last_inbound_after": local_input(filters.get("last_inbound_after")),
        "last_inbound_before": local_input(filters.get("last_inbound_before")),
        "attributes": "\n".join(
            f"{name}={str(value).lower() if isinstance(value, bool) else value}"
            for name, value in attributes.items()
        ),
    }


def _builder(segment: Segment | None, values: dict[str, Any], name: str, **extra: Any) -> str:
    return render_template(
        "web/segment_form.html",
        segment=segment,
        values=values,
        name=name,
        stages=list(LifecycleStage),
        sentiments=SENTIMENTS,
        consent_channels=CONSENT_CHANNELS,
        consent_values=CONSENT_VALUES,
        **extra,
    )


def _live_count(session: Session, raw: dict[str, Any]) -> tuple[int | None, str | None]:
    try:
        return count(session, parse_filters(raw)), None
    except SegmentError as exc:
        return None, str(exc)


def _save_segment(session: Session, segment: Segment | None):  # type: ignore[no-untyped-def]
    """Create or update from the builder's form: the API's checks (name, then filters)."""
    name = request.form.get("name", "")
    try:
        filters = filters_from_form(request.form)
        if not name.strip() or len(name) > 200:
            raise CampaignError("name is required, at most 200 characters")
        parse_filters(filters)  # raises SegmentError with the reason
    except ValueError as exc:
        session.rollback()
        shown = _builder(segment, _flat(request.form), name, error=str(exc), count_error=str(exc))
        return shown, 422
    if segment is None:
        segment = Segment(name="", filters={}, created_by=g.user.id)
        session.add(segment)
    segment.name = name.strip()
    segment.filters = filters
    session.flush()
    flash(f"Segment “{segment.name}” saved.", "success")
    return redirect(url_for("web.segment", segment_id=segment.id))


def _flat(form: MultiDict[str, str]) -> dict[str, Any]:
    """A posted form as the builder's values: lists for the multi-choice fields."""
    values: dict[str, Any] = {key: form.get(key, "") for key in form}
    values["stages"] = form.getlist("stages")
    values["sentiment"] = form.getlist("sentiment")
    return values


@web.get("/segments/new")
@page(MARKETING)
def segment_new(*, session: Session):  # type: ignore[no-untyped-def]
    size, error = _live_count(session, {})
    return _builder(None, form_from_filters({}), "", size=size, count_error=error)


@web.post("/segments/new")
@page(MARKETING)
def segment_create(*, session: Session):  # type: ignore[no-untyped-def]
    return _save_segment(session, None)


@web.get("/segments/<id:segment_id>")
@page(MARKETING)
def segment(segment_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    found = _segment(session, segment_id)
    size, error = _live_count(session, found.filters)
    return _builder(
        found, form_from_filters(found.filters), found.name, size=size, count_error=error
    )


@web.post("/segments/<id:segment_id>")
@page(MARKETING)
def segment_update(segment_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    return _save_segment(session, _segment(session, segment_id))


@web.post("/segments/<id:segment_id>/delete")
@page(MARKETING)
def segment_delete(segment_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    found = _segment(session, segment_id)
    session.delete(found)
    flash(f"Segment “{found.name}” deleted.", "success")
    return redirect(url_for("web.campaigns"))


@web.post("/segments/count")
@page(MARKETING)
def segment_count(*, session: Session):  # type: ignore[no-untyped-def]
    """The live count for the filters being composed (not saved), or why they cannot be used.
    Answered 200 either way: the reason is the answer, shown in place of the count."""
    try:
        size, error = _live_count(session, filters_from_form(request.form))
    except SegmentError as exc:
        size, error = None, str(exc)
    return render_template("web/segment_count.html", size=size, count_error=error)


@web.get("/segments/<id:segment_id>/count")
@page(MARKETING)
def segment_size(segment_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """A saved segment's size, loaded after the list so the list itself stays quick."""
    size, error = _live_count(session, _segment(session, segment_id).filters)
    return render_template("web/segment_size.html", size=size, count_error=error)
