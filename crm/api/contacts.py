"""Contacts API: look up by phone, read, timeline, merge, review a possible opt-out."""

from __future__ import annotations

from flask import current_app, g, request
from sqlalchemy.orm import Session

from crm.api import api
from crm.api.auth import api_view, json_body
from crm.api.serializers import contact_json, interaction_json
from crm.consent import resolve_opt_out_review
from crm.contacts import find_by_phone, get_contact, merge_contacts
from crm.messaging import SendRefused
from crm.models import Role
from crm.phones import to_e164
from crm.scoring import explain
from crm.timeline import read_timeline

MAX_PAGE = 200


@api.get("/contacts")
@api_view()
def list_contacts(*, session: Session):  # type: ignore[no-untyped-def]
    phone = request.args.get("phone", "")
    if not phone:
        raise SendRefused("query parameter 'phone' is required, e.g. ?phone=%2B233241234567")
    e164 = to_e164(phone, current_app.extensions["crm"].settings.default_region)
    contact = find_by_phone(session, e164)
    return {"data": [contact_json(contact)] if contact else []}


@api.get("/contacts/<int:contact_id>")
@api_view()
def show_contact(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    contact = get_contact(session, contact_id)
    return {**contact_json(contact), "score_reasons": [str(r) for r in explain(session, contact)]}


@api.get("/contacts/<int:contact_id>/timeline")
@api_view()
def contact_timeline(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    get_contact(session, contact_id)
    try:
        limit = int(request.args.get("limit", "50"))
    except ValueError:
        raise SendRefused("limit must be an integer") from None
    if not 1 <= limit <= MAX_PAGE:
        raise SendRefused(f"limit must be between 1 and {MAX_PAGE}")
    page = read_timeline(
        session=session, contact_id=contact_id, limit=limit, cursor=request.args.get("cursor")
    )
    return {"data": [interaction_json(i) for i in page.items], "next_cursor": page.next_cursor}


@api.post("/contacts/<int:contact_id>/merge")
@api_view(frozenset({Role.REP, Role.ADMIN}))
def merge(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    body = json_body()
    other = body.get("merge_contact_id")
    if not isinstance(other, int) or isinstance(other, bool):
        raise SendRefused(
            "merge_contact_id (integer) is required: the contact merged into this one"
        )
    survivor = merge_contacts(
        session=session, survivor_id=contact_id, merged_id=other, actor=f"user:{g.user.id}"
    )
    session.refresh(survivor)
    return contact_json(survivor)


@api.post("/contacts/<int:contact_id>/opt-out-review")
@api_view(frozenset({Role.REP, Role.ADMIN}))
def review_opt_out(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Confirm (opt out of SMS and WhatsApp) or dismiss an opt-out the model read in free text."""
    decision = json_body().get("decision")
    if decision not in ("confirm", "dismiss"):
        raise SendRefused("decision must be 'confirm' or 'dismiss'")
    contact = get_contact(session, contact_id)
    resolve_opt_out_review(
        session=session, contact=contact, confirm=decision == "confirm", actor=f"user:{g.user.id}"
    )
    session.flush()
    session.refresh(contact)
    return contact_json(contact)
