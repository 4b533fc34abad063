"""Contacts pages: the list (search and the segment filters, keyset-paginated) and one contact's
page (profile, consent, score and its explanation, deals, conversations, recent activity) with
its forms: edit, review a possible opt-out, open a deal.

The checks are the API's own (``crm.api.contacts`` and ``crm.api.deals``): a rep gets 404 for
another rep's contact, marketers read only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from crm.access import changes_contact
from crm.api.contacts import changeable_contact, visible_contact
from crm.api.ids import query_id
from crm.consent import NothingToReview, resolve_opt_out_review
from crm.contact_edits import EditError, edit_contact
from crm.contact_search import ContactFilters, FilterError, list_contacts
from crm.contacts import ContactNotFound
from crm.conversations import visible_to
from crm.deals import DealError, close_date, deal_owner, load_pipeline, open_deal
from crm.lifecycle import DISQUALIFY_REASONS, ORDER
from crm.models import (
    Channel,
    Contact,
    Conversation,
    Deal,
    Interaction,
    LifecycleStage,
    Role,
    Segment,
    User,
)
from crm.scoring import current_score, explain, load_rules
from crm.segments import parse_filters
from crm.timeline import read_timeline
from crm.web import web
from crm.web.auth import ALL_ROLES, WORKERS, page
from crm.web.pipeline import visible_deals

PAGE_SIZE = 50
FILTERS = ("q", "stage", "score_min", "score_max", "owner", "tag", "channel", "segment")
# Channels a contact writes to us on (the list's channel filter) and is asked consent for.
CHANNELS = (Channel.SMS, Channel.WHATSAPP, Channel.VOICE, Channel.USSD)
CONSENT_CHANNELS = (Channel.SMS, Channel.WHATSAPP, Channel.VOICE)
RECENT = 10
MAX_DEALS = 50
MAX_OWNERS = 500


def _names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    """Display names of these users, in one query."""
    wanted = {i for i in user_ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.name, User.email).where(User.id.in_(wanted)))
    return {user_id: name or email for user_id, name, email in rows}


@web.get("/contacts")
@page(ALL_ROLES)
def contacts(*, session: Session):  # type: ignore[no-untyped-def]
    args = {key: request.args.get(key, "") for key in FILTERS}
    rows: list[Contact] = []
    next_cursor: int | None = None
    status = 200
    try:
        filters = ContactFilters.from_args(request.args)
        segment_id = query_id(request.args.get("segment"), "segment")
        if segment_id is not None and g.user.role == Role.REP:
            raise FilterError("segments are for marketers and admins")
        if segment_id is not None:
            segment = session.get(Segment, segment_id)
            if segment is None:
                raise FilterError(f"no segment {segment_id}")
            filters = dataclasses.replace(filters, segment=parse_filters(segment.filters))
        after = query_id(request.args.get("cursor"), "cursor")
        rows, next_cursor = list_contacts(session, g.user, filters, limit=PAGE_SIZE, after=after)
    except FilterError as exc:
        flash(str(exc), "error")
        status = 400
    kept = {key: value for key, value in args.items() if value}
    return render_template(
        "web/contacts.html",
        rows=rows,
        args=args,
        filtered=bool(kept),
        owners=_names(session, (c.owner_id for c in rows)),
        # Saved segments are marketing's (the API lists them to marketers and admins only).
        segments=(
            session.scalars(select(Segment).order_by(Segment.name).limit(100)).all()
            if g.user.role != Role.REP
            else []
        ),
        stages=list(LifecycleStage),
        channels=CHANNELS,
        paged=bool(request.args.get("cursor")),
        first_url=url_for("web.contacts", **kept),
        next_url=url_for("web.contacts", **kept, cursor=next_cursor) if next_cursor else None,
    ), status


def _visible(session: Session, contact_id: int) -> Contact:
    try:
        return visible_contact(session, contact_id, g.user)
    except ContactNotFound:
        abort(404, "No such contact.")


def _changeable(session: Session, contact_id: int) -> Contact:
    try:
        return changeable_contact(session, contact_id, g.user)
    except ContactNotFound:
        abort(404, "No such contact.")


@web.get("/contacts/<id:contact_id>")
@page(ALL_ROLES)
def contact(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    found = _visible(session, contact_id)
    if found.merged_into_id is not None:
        flash(f"Contact {contact_id} was merged into this one.", "info")
        return redirect(url_for("web.contact", contact_id=found.merged_into_id))
    return render_template("web/contact.html", **_contact_page(session, found))


def _contact_page(session: Session, contact: Contact) -> dict[str, Any]:
    user: User = g.user
    may_edit = user.role in WORKERS and changes_contact(user, contact)
    rules = load_rules()
    consents = {c.channel: c for c in contact.consents}
    extra = sorted(set(consents) - set(CONSENT_CHANNELS))
    deals = session.execute(
        select(Deal, User.name)
        .outerjoin(User, User.id == Deal.owner_id)
        .where(Deal.contact_id == contact.id, visible_deals(user))
        .order_by(Deal.id.desc())
        .limit(MAX_DEALS)
    ).all()
    threads = session.execute(
        select(Conversation, User.name)
        .outerjoin(User, User.id == Conversation.assignee_id)
        .where(Conversation.contact_id == contact.id, visible_to(user))
        .order_by(Conversation.last_inbound_at.desc().nulls_last(), Conversation.id)
    ).all()
    flagged = contact.opt_out_review_interaction_id
    pipeline = load_pipeline()
    return {
        "contact": contact,
        "may_edit": may_edit,
        "owner_name": _names(session, [contact.owner_id]).get(contact.owner_id or 0),
        "phones": [i.value for i in contact.identities if i.kind == "phone"],
        "consent_channels": [*CONSENT_CHANNELS, *extra],
        "consents": consents,
        "flagged_message": session.get(Interaction, flagged) if flagged else None,
        "score_now": round(current_score(contact, rules) + (contact.fit_points or 0.0)),
        "reasons": explain(session, contact, rules),
        "ladder": ORDER,
        "deals": deals,
        "threads": threads,
        "conversation_links": user.role in WORKERS,
        "recent": read_timeline(session=session, contact_id=contact.id, limit=RECENT).items,
        "pipeline": pipeline,
        "deal_stages": [s for s in pipeline.stages if s not in pipeline.lost],
        "stages": list(LifecycleStage),
        "disqualify_reasons": DISQUALIFY_REASONS,
        "owner_choices": _owner_choices(session, contact) if may_edit else [],
    }


def _owner_choices(session: Session, contact: Contact) -> list[tuple[int, str]]:
    """Whom the user may make the owner (besides nobody): an admin any active rep or admin, a
    rep themself. The current owner is always listed, so saving unchanged changes nothing."""
    user: User = g.user
    if user.role == Role.ADMIN:
        rows = session.execute(
            select(User.id, User.name, User.email)
            .where(User.active.is_(True), User.role.in_([Role.REP, Role.ADMIN]))
            .order_by(User.name, User.id)
            .limit(MAX_OWNERS)
        )
        choices = [(user_id, name or email) for user_id, name, email in rows]
    else:
        choices = [(user.id, f"Me ({user.name or user.email})")]
    if contact.owner_id is not None and contact.owner_id not in {i for i, _ in choices}:
        current = _names(session, [contact.owner_id])
        choices.insert(0, (contact.owner_id, current.get(contact.owner_id, "?")))
    return choices


def _owner_value(raw: str) -> object:
    """The owner select's value as the services take it: None, an int, or the raw text (which
    they refuse with their own message)."""
    raw = raw.strip()
    if not raw:
        return None
    return int(raw) if raw.isdecimal() else raw


def _form_changes(contact: Contact, form: MultiDict[str, str]) -> dict[str, Any]:
    """The edit form as the JSON object ``edit_contact`` takes, holding only what changed (an
    unchanged owner must not reassign the contact's threads)."""
    changes: dict[str, Any] = {}
    for field in ("name", "email"):
        if field in form and form[field].strip() != (getattr(contact, field) or ""):
            changes[field] = form[field]
    if "tags" in form:
        tags = [t.strip() for t in form["tags"].split(",") if t.strip()]
        if {t.lower()[:64] for t in tags} != set(contact.tag_names):
            changes["tags"] = tags
    if "owner_id" in form:
        owner = _owner_value(form["owner_id"])
        if owner != contact.owner_id:
            changes["owner_id"] = owner
    stage = form.get("lifecycle_stage", "")
    if stage and stage != contact.lifecycle_stage:
        changes["lifecycle_stage"] = stage
        changes["lifecycle_reason"] = form.get("lifecycle_reason", "").strip() or None
    attributes = _attribute_changes(
        contact.attributes or {}, form.getlist("attr_key"), form.getlist("attr_value")
    )
    if attributes:
        changes["attributes"] = attributes
    return changes


def _attribute_changes(
    current: dict[str, Any], keys: list[str], values: list[str]
) -> dict[str, str | None]:
    """Rows of (name, value) inputs: a changed value is set, an emptied one removed (null)."""
    changes: dict[str, str | None] = {}
    for key, value in zip(keys, values, strict=False):
        key, value = key.strip(), value.strip()
        if not key:
            if value:
                raise EditError(f"the attribute with value {value!r} needs a name")
            continue
        if key in current:
            if not value:
                changes[key] = None
            elif value != str(current[key]):
                changes[key] = value
        elif value:
            changes[key] = value
    return changes


def _back(contact_id: int, anchor: str | None = None):  # type: ignore[no-untyped-def]
    return redirect(url_for("web.contact", contact_id=contact_id, _anchor=anchor))


@web.post("/contacts/<id:contact_id>")
@page(WORKERS)
def contact_update(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """The edit form, through ``edit_contact`` as the API's PATCH; all or nothing."""
    found = _changeable(session, contact_id)
    try:
        changes = _form_changes(found, request.form)
        if not changes:
            flash("Nothing to save: no field changed.", "info")
            return _back(contact_id)
        with session.begin_nested():  # an invalid edit leaves nothing half-applied
            edit_contact(session, found, g.user, changes)
    except EditError as exc:
        flash(str(exc), "error")
        return _back(contact_id, "edit")
    flash("Contact saved.", "success")
    return _back(contact_id)


@web.post("/contacts/<id:contact_id>/opt-out-review")
@page(WORKERS)
def contact_opt_out_review(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    decision = request.form.get("decision")
    found = _changeable(session, contact_id)
    if decision not in ("confirm", "dismiss"):
        flash("Choose to confirm or dismiss the opt-out.", "error")
        return _back(contact_id)
    try:
        opted_out = resolve_opt_out_review(
            session=session, contact=found, confirm=decision == "confirm", actor=f"user:{g.user.id}"
        )
    except NothingToReview as exc:
        flash(str(exc), "error")
        return _back(contact_id)
    if decision == "dismiss":
        flash("Opt-out dismissed: marketing to this contact resumes.", "success")
    elif opted_out:
        flash(f"Opted out of {', '.join(opted_out)}.", "success")
    else:
        flash("Opt-out confirmed (already opted out everywhere).", "success")
    return _back(contact_id)


@web.post("/contacts/<id:contact_id>/deals")
@page(WORKERS)
def contact_new_deal(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """A new deal for this contact, checked as the API's ``POST /deals``."""
    found = _changeable(session, contact_id)
    form = request.form
    stage = form.get("stage") or None
    try:
        if stage in load_pipeline().lost:
            raise DealError("open a deal in an open or won stage; lose it with an update")
        with session.begin_nested():
            deal = open_deal(
                session,
                found,
                title=form.get("title", ""),
                amount=form.get("amount", "").strip() or 0,
                currency=form.get("currency", "").strip() or None,
                stage=stage,
                owner_id=deal_owner(session, g.user, _owner_value(form.get("owner_id", ""))),
                expected_close_on=close_date(form.get("expected_close_on") or None),
                actor=f"user:{g.user.id}",
            )
    except DealError as exc:
        flash(str(exc), "error")
        return _back(contact_id, "new-deal")
    flash(f"Deal “{deal.title}” opened in {deal.stage}.", "success")
    return _back(contact_id, "deals")
