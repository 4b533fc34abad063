"""Sequence pages: the list, a sequence's steps and results, writing and editing one, and
activate / pause / resume / archive.

A sequence is written as YAML (the format of the shipped examples in
``crm/config/sequences/``), checked by the same reader as the API, and refused with its reason
when it cannot run. Every action calls the service the JSON API calls (``crm.sequences``).
"""

from __future__ import annotations

from typing import Any

import yaml
from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.models import (
    Campaign,
    CampaignRecipient,
    RecipientState,
    Sequence,
    SequenceEnrollment,
    SequenceStatus,
)
from crm.sequence_definition import DefinitionError
from crm.sequence_examples import shipped
from crm.sequence_results import results
from crm.sequences import SequenceError, create_sequence, definition_of, set_status, update_sequence
from crm.web import web
from crm.web.auth import MARKETING, page
from crm.web.form_fields import refused

MAX_YAML = 32 * 1024  # under the request body limit, so the reason can be shown
PAGE_SIZE = 50
ENROLLMENTS_SHOWN = 25
ACTIONS = {
    "activate": SequenceStatus.ACTIVE,
    "resume": SequenceStatus.ACTIVE,
    "pause": SequenceStatus.PAUSED,
    "archive": SequenceStatus.ARCHIVED,
}


def _sequence(session: Session, sequence_id: int) -> Sequence:
    found = session.get(Sequence, sequence_id)
    if found is None:
        abort(404, f"Sequence {sequence_id} not found.")
    return found


def examples() -> dict[str, str]:
    """The shipped examples, by file stem: a marketer starts from one."""
    return {name: path.read_text(encoding="utf-8") for name, path in shipped().items()}


def read_yaml(text: str) -> dict[str, Any]:
    if len(text.encode("utf-8")) > MAX_YAML:
        raise DefinitionError(f"the definition is longer than {MAX_YAML // 1024} KB")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" on line {where.line + 1}" if where is not None else ""
        raise DefinitionError(f"not valid YAML{line}") from None
    if not isinstance(raw, dict):
        raise DefinitionError("a sequence is a YAML mapping: name, trigger, audience, steps")
    return raw


def as_yaml(definition: dict[str, Any]) -> str:
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)


@web.get("/sequences")
@page(MARKETING)
def sequences(*, session: Session):  # type: ignore[no-untyped-def]
    """Every sequence but the archived (``?archived=1`` shows those), with its enrolments by
    status and its messages sent and replied: two grouped queries for the page."""
    archived = request.args.get("archived") == "1"
    query = select(Sequence).order_by(Sequence.id.desc()).limit(PAGE_SIZE)
    query = query.where(
        (Sequence.status == SequenceStatus.ARCHIVED)
        if archived
        else (Sequence.status != SequenceStatus.ARCHIVED)
    )
    rows = list(session.scalars(query))
    ids = [s.id for s in rows]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for sequence_id, status, count in session.execute(
            select(SequenceEnrollment.sequence_id, SequenceEnrollment.status, func.count())
            .where(SequenceEnrollment.sequence_id.in_(ids))
            .group_by(SequenceEnrollment.sequence_id, SequenceEnrollment.status)
        ):
            counts[sequence_id][status] = count
        for sequence_id, sent, replied in session.execute(
            select(
                Campaign.sequence_id,
                func.count(CampaignRecipient.id),
                func.count(CampaignRecipient.replied_at),
            )
            .join(CampaignRecipient, CampaignRecipient.campaign_id == Campaign.id)
            .where(
                Campaign.sequence_id.in_(ids),
                CampaignRecipient.state == RecipientState.SENT.value,
            )
            .group_by(Campaign.sequence_id)
        ):
            counts[sequence_id] |= {"sent": sent, "replied": replied}
    return render_template("web/sequences.html", sequences=rows, counts=counts, archived=archived)


@web.get("/sequences/new")
@page(MARKETING)
def sequence_new(*, session: Session):  # type: ignore[no-untyped-def]
    shipped = examples()
    start = request.args.get("from", "")
    return render_template(
        "web/sequence_form.html",
        sequence=None,
        text=shipped.get(start, ""),
        examples=sorted(shipped),
        error=None,
    )


@web.post("/sequences/new")
@page(MARKETING)
def sequence_create(*, session: Session):  # type: ignore[no-untyped-def]
    text = request.form.get("definition", "")
    try:
        created = create_sequence(
            session, read_yaml(text), g.user, activate=request.form.get("activate") == "on"
        )
    except (DefinitionError, SequenceError) as exc:
        session.rollback()
        page_html = render_template(
            "web/sequence_form.html",
            sequence=None,
            text=text,
            examples=sorted(examples()),
            error=str(exc),
        )
        return page_html, 422
    flash(f"Sequence “{created.name}” saved ({created.status}).", "success")
    return redirect(url_for("web.sequence", sequence_id=created.id))


@web.get("/sequences/<id:sequence_id>")
@page(MARKETING)
def sequence(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    found = _sequence(session, sequence_id)
    enrolments = list(
        session.execute(
            select(SequenceEnrollment)
            .where(SequenceEnrollment.sequence_id == found.id)
            .order_by(SequenceEnrollment.id.desc())
            .limit(ENROLLMENTS_SHOWN)
        ).scalars()
    )
    return render_template(
        "web/sequence.html",
        sequence=found,
        definition=definition_of(found),
        figures=results(session, found),
        enrolments=enrolments,
    )


@web.get("/sequences/<id:sequence_id>/edit")
@page(MARKETING)
def sequence_edit(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    found = _sequence(session, sequence_id)
    if found.status == SequenceStatus.ARCHIVED:
        abort(409, "An archived sequence cannot be edited.")
    return render_template(
        "web/sequence_form.html",
        sequence=found,
        text=as_yaml(found.definition),
        examples=[],
        error=None,
    )


@web.post("/sequences/<id:sequence_id>/edit")
@page(MARKETING)
def sequence_update(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    found = _sequence(session, sequence_id)
    text = request.form.get("definition", "")
    try:
        moved = update_sequence(session, found, read_yaml(text))
    except (DefinitionError, SequenceError) as exc:
        session.rollback()
        found = _sequence(session, sequence_id)
        page_html = render_template(
            "web/sequence_form.html", sequence=found, text=text, examples=[], error=str(exc)
        )
        return page_html, 422
    note = "".join(f" {n} on removed step {step} moved on." for step, n in moved.items())
    flash(f"Saved as version {found.version}.{note}", "success")
    return redirect(url_for("web.sequence", sequence_id=found.id))


@web.post("/sequences/<id:sequence_id>/status")
@page(MARKETING)
def sequence_status(sequence_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    found = _sequence(session, sequence_id)
    action = request.form.get("action", "")
    target = url_for("web.sequence", sequence_id=found.id)
    if action not in ACTIONS:
        abort(400, "Unknown action.")
    try:
        set_status(session, found, ACTIONS[action])
    except SequenceError as exc:
        return refused(session, exc, target)
    flash(f"Sequence {found.status}.", "success")
    return redirect(target)
