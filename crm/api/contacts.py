"""Contacts API: list with filters, look up by phone, read, edit, timeline, merge, review a
possible opt-out."""

from __future__ import annotations

from flask import current_app, g, request
from sqlalchemy.orm import Session

from crm.access import changes_contact, sees_contact
from crm.api import api
from crm.api.auth import api_view, json_body
from crm.api.ids import body_id, query_id
from crm.api.serializers import contact_json, interaction_json
from crm.consent import resolve_opt_out_review
from crm.contact_edits import edit_contact
from crm.contact_search import ContactFilters, FilterError, list_contacts
from crm.contacts import ContactNotFound, find_by_phone, get_contact, merge_contacts
from crm.messaging import SendRefused
from crm.models import Contact, Role, User
from crm.phones import to_e164
from crm.scoring import current_score, explain, load_rules
from crm.timeline import read_timeline

MAX_PAGE = 200
WORKERS = frozenset({Role.REP, Role.ADMIN})


def visible_contact(session: Session, contact_id: int, user: User) -> Contact:
    """The contact if ``user`` may see it; another rep's contact is not found."""
    contact = get_contact(session, contact_id)
    if not sees_contact(user, contact):
        raise ContactNotFound(f"contact {contact_id} not found")
    return contact


def changeable_contact(session: Session, contact_id: int, user: User) -> Contact:
    contact = visible_contact(session, contact_id, user)
    if not changes_contact(user, contact):
        raise ContactNotFound(f"contact {contact_id} not found")
    return contact


def _page_args() -> tuple[int, int | None]:
    try:
        limit = int(request.args.get("limit", "50"))
        return limit, query_id(request.args.get("cursor"), "cursor")
    except ValueError as exc:
        if isinstance(exc, FilterError):
            raise
        raise FilterError("limit must be an integer") from None


@api.get("/contacts")
@api_view()
def list_all_contacts(*, session: Session):  # type: ignore[no-untyped-def]
    """Filtered and paginated; ``?phone=`` looks up the one contact owning a number."""
    phone = request.args.get("phone", "")
    if phone:
        e164 = to_e164(phone, current_app.extensions["crm"].settings.default_region)
        contact = find_by_phone(session, e164)
        found = contact is not None and sees_contact(g.user, contact)
        return {"data": [contact_json(contact)] if found else [], "next_cursor": None}
    limit, after = _page_args()
    page, cursor = list_contacts(
        session, g.user, ContactFilters.from_args(request.args), limit=limit, after=after
    )
    return {"data": [contact_json(c) for c in page], "next_cursor": cursor}


@api.get("/contacts/<id:contact_id>")
@api_view()
def show_contact(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    contact = visible_contact(session, contact_id, g.user)
    return {
        **contact_json(contact),
        "score_now": round(current_score(contact, load_rules()) + (contact.fit_points or 0.0)),
        "score_reasons": [str(r) for r in explain(session, contact)],
    }


@api.patch("/contacts/<id:contact_id>")
@api_view(WORKERS)
def update_contact(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    contact = changeable_contact(session, contact_id, g.user)
    edit_contact(session, contact, g.user, json_body())
    session.flush()
    session.refresh(contact)
    return contact_json(contact)


@api.get("/contacts/<id:contact_id>/timeline")
@api_view()
def contact_timeline(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    visible_contact(session, contact_id, g.user)
    try:
        limit = int(request.args.get("limit", "50"))
    except ValueError:
        raise FilterError("limit must be an integer") from None
    if not 1 <= limit <= MAX_PAGE:
        raise FilterError(f"limit must be between 1 and {MAX_PAGE}")
    page = read_timeline(
        session=session, contact_id=contact_id, limit=limit, cursor=request.args.get("cursor")
    )
    return {"data": [interaction_json(i) for i in page.items], "next_cursor": page.next_cursor}


@api.post("/contacts/<id:contact_id>/merge")
@api_view(WORKERS)
def merge(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    body = json_body()
    other = body_id(body, "merge_contact_id")  # the contact merged into this one
    changeable_contact(session, contact_id, g.user)
    changeable_contact(session, other, g.user)
    survivor = merge_contacts(
        session=session, survivor_id=contact_id, merged_id=other, actor=f"user:{g.user.id}"
    )
    session.refresh(survivor)
    return contact_json(survivor)


@api.post("/contacts/<id:contact_id>/opt-out-review")
@api_view(WORKERS)
def review_opt_out(contact_id: int, *, session: Session):  # type: ignore[no-untyped-def]
    """Confirm (opt out of SMS and WhatsApp) or dismiss an opt-out the model read in free text."""
    decision = json_body().get("decision")
    if decision not in ("confirm", "dismiss"):
        raise SendRefused("decision must be 'confirm' or 'dismiss'")
    contact = changeable_contact(session, contact_id, g.user)
    resolve_opt_out_review(
        session=session, contact=contact, confirm=decision == "confirm", actor=f"user:{g.user.id}"
    )
    session.flush()
    session.refresh(contact)
    return contact_json(contact)
