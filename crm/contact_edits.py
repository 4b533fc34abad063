"""Changing a contact from the API or a page: profile fields, owner, tags, attributes, stage."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crm import lifecycle, routing, scoring
from crm.contacts import set_tags
from crm.conversations import assign_contact
from crm.ids import is_id
from crm.models import Contact, Role, User
from crm.models.base import utcnow
from crm.users import takes_work

EDITABLE = ("name", "email", "owner_id", "tags", "attributes", "lifecycle_stage")
MAX_ATTRIBUTES = 100


class EditError(ValueError):
    """An edit that is not valid or not allowed (answered with 422)."""


def edit_contact(session: Session, contact: Contact, user: User, changes: dict[str, Any]) -> None:
    """Apply ``changes`` (a JSON object) to ``contact`` as ``user``; all or nothing."""
    unknown = sorted(set(changes) - set(EDITABLE) - {"lifecycle_reason"})
    if unknown:
        raise EditError(f"cannot change {', '.join(unknown)}; editable: {', '.join(EDITABLE)}")
    if contact.merged_into_id is not None:
        raise EditError(f"contact {contact.id} was merged into {contact.merged_into_id}")
    if "name" in changes:
        contact.name = _text(changes["name"], "name", 200)
    if "email" in changes:
        email = _text(changes["email"], "email", 320)
        if email is not None and "@" not in email:
            raise EditError("email must be an email address")
        contact.email = email
    if "owner_id" in changes:
        _set_owner(session, contact, user, changes["owner_id"])
    if "tags" in changes:
        tags = changes["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
            raise EditError("tags must be a list of non-empty strings")
        wanted = {t.strip().lower()[:64] for t in tags}
        contact.tags = [t for t in contact.tags if t.tag in wanted]  # replace, not add
        set_tags(session=session, contact=contact, tags=tags)
    if "attributes" in changes:
        contact.attributes = _merge_attributes(contact.attributes or {}, changes["attributes"])
    if "lifecycle_stage" in changes:
        reason = changes.get("lifecycle_reason")
        if reason is not None and not isinstance(reason, str):
            raise EditError("lifecycle_reason must be a string")
        try:
            lifecycle.move(
                session,
                contact,
                str(changes["lifecycle_stage"]),
                actor=f"user:{user.id}",
                reason=reason,
            )
        except lifecycle.TransitionError as exc:
            raise EditError(str(exc)) from None
    rescore(session, contact)


def rescore(session: Session, contact: Contact) -> None:
    """Fit points follow the edit; a contact they lift over the threshold is a new MQL, queued
    for a rep like any other."""
    rules = scoring.load_rules()
    now = utcnow()
    if not scoring.refit(contact, rules, now):
        return
    points = scoring.current_score(contact, rules, now) + contact.fit_points
    if lifecycle.promote_on_score(session, contact, rules.mql_threshold, points):
        routing.request_handoff(session, contact.id, routing.Trigger(routing.MQL, ""))


def _text(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value.strip()) > limit:
        raise EditError(f"{name} must be a string of at most {limit} characters, or null")
    return value.strip() or None


def _set_owner(session: Session, contact: Contact, user: User, owner_id: object) -> None:
    if owner_id is not None and not is_id(owner_id):
        raise EditError("owner_id must be a user id or null")
    if user.role != Role.ADMIN and owner_id not in (user.id, None):
        raise EditError("a rep can take a contact or give it back, not assign it to others")
    if owner_id is not None and not takes_work(session, owner_id):  # type: ignore[arg-type]
        raise EditError(f"user {owner_id} is not an active rep or admin")
    contact.owner_id = owner_id  # type: ignore[assignment]
    if owner_id is not None:
        assign_contact(session, contact.id, owner_id)  # their threads follow the contact


def _merge_attributes(current: dict[str, Any], changes: object) -> dict[str, Any]:
    """Merge a JSON object into the attributes; a null value removes the key."""
    if not isinstance(changes, dict):
        raise EditError("attributes must be a JSON object")
    merged = dict(current)
    for key, value in changes.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 64:
            raise EditError("attribute names are non-empty strings of at most 64 characters")
        if isinstance(value, (dict, list)):
            raise EditError(f"attribute {key!r}: values are strings, numbers, booleans or null")
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_ATTRIBUTES:
        raise EditError(f"at most {MAX_ATTRIBUTES} attributes")
    return merged
