"""Contacts: resolve by identity, create, update, merge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm.models import (
    ConsentStatus,
    Contact,
    ContactTag,
    Direction,
    Identity,
    Interaction,
    LifecycleStage,
)
from crm.sequence_triggers import note
from crm.timeline import add_entry

PHONE = "phone"

# Order used when merging: the survivor keeps the further stage. Disqualified is not a rung.
_STAGE_ORDER = [
    LifecycleStage.SUBSCRIBER,
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.OPPORTUNITY,
    LifecycleStage.CUSTOMER,
]


class ContactNotFound(LookupError):
    pass


class MergeError(ValueError):
    pass


def find_by_phone(session: Session, e164: str) -> Contact | None:
    return session.scalar(
        select(Contact).join(Identity).where(Identity.kind == PHONE, Identity.value == e164)
    )


def get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ContactNotFound(f"contact {contact_id} not found")
    return contact


@dataclass(frozen=True)
class Resolved:
    contact: Contact
    created: bool


def resolve_by_phone(
    *, session: Session, e164: str, name: str | None = None, channel: str | None = None
) -> Resolved:
    """The contact owning this number, created (with the number as identity) if there is none.

    Two requests creating the same new contact at once both end with the same contact: the
    loser's identity insert hits the unique constraint inside a savepoint and re-reads.
    """
    contact = find_by_phone(session, e164)
    if contact is not None:
        return Resolved(contact, created=False)
    try:
        with session.begin_nested():
            contact = Contact(name=name, first_touch_channel=channel, attributes={})
            session.add(contact)
            session.flush()
            session.add(Identity(contact_id=contact.id, kind=PHONE, value=e164))
            session.flush()
    except IntegrityError:
        contact = find_by_phone(session, e164)
        if contact is None:
            raise
        return Resolved(contact, created=False)
    return Resolved(contact, created=True)


def add_identity(*, session: Session, contact: Contact, e164: str) -> bool:
    """Attach a number to a contact. False if it already belongs to this contact.

    Raises MergeError if the number belongs to someone else (merge them instead).
    """
    owner = find_by_phone(session, e164)
    if owner is not None:
        if owner.id == contact.id:
            return False
        raise MergeError(f"{e164} belongs to contact {owner.id}; merge the contacts instead")
    session.add(Identity(contact_id=contact.id, kind=PHONE, value=e164))
    session.flush()
    return True


def touched(contact: Contact, channel: str, at: datetime) -> None:
    """The contact reached us (a call, a USSD session): their last touch, which inactivity
    triggers read. Messages are recorded by the enrichment job, with their campaign."""
    if contact.last_touch_at is None or contact.last_touch_at <= at:
        contact.last_touch_channel = channel
        contact.last_touch_at = at


def set_tags(*, session: Session, contact: Contact, tags: list[str]) -> None:
    existing = set(contact.tag_names)
    for tag in tags:
        clean = tag.strip().lower()[:64]
        if clean and clean not in existing:
            contact.tags.append(ContactTag(tag=clean))
            existing.add(clean)
            note(session, "tag_added", contact, clean)


def merge_contacts(*, session: Session, survivor_id: int, merged_id: int, actor: str) -> Contact:
    """Merge ``merged_id`` into ``survivor_id``: identities, timeline, tags and consent move;
    empty fields are filled from the merged contact; the merge goes on the timeline. The merged
    contact stays as a tombstone pointing at the survivor."""
    if survivor_id == merged_id:
        raise MergeError("cannot merge a contact into itself")
    survivor = get_contact(session, survivor_id)
    merged = get_contact(session, merged_id)
    for contact in (survivor, merged):
        if contact.merged_into_id is not None:
            raise MergeError(
                f"contact {contact.id} was already merged into {contact.merged_into_id}"
            )

    moved_numbers = [identity.value for identity in merged.identities]
    session.execute(
        update(Identity).where(Identity.contact_id == merged.id).values(contact_id=survivor.id)
    )
    moved = session.execute(
        update(Interaction)
        .where(Interaction.contact_id == merged.id)
        .values(contact_id=survivor.id)
    ).rowcount

    set_tags(session=session, contact=survivor, tags=merged.tag_names)
    _merge_consent(session, survivor, merged)
    survivor.name = survivor.name or merged.name
    survivor.email = survivor.email or merged.email
    _merge_signals(survivor, merged)
    survivor.owner_id = survivor.owner_id or merged.owner_id
    survivor.first_touch_channel = survivor.first_touch_channel or merged.first_touch_channel
    survivor.first_touch_campaign_id = (
        survivor.first_touch_campaign_id or merged.first_touch_campaign_id
    )
    if merged.created_at < survivor.created_at:
        # First touch belongs to whichever contact was touched first.
        survivor.first_touch_channel = merged.first_touch_channel or survivor.first_touch_channel
        survivor.first_touch_campaign_id = (
            merged.first_touch_campaign_id or survivor.first_touch_campaign_id
        )
    survivor.attributes = {**(merged.attributes or {}), **(survivor.attributes or {})}
    survivor.score = max(survivor.score, merged.score)
    survivor.lifecycle_stage = _further_stage(survivor.lifecycle_stage, merged.lifecycle_stage)
    merged.merged_into_id = survivor.id
    session.flush()
    session.expire(survivor, ["identities"])

    add_entry(
        session=session,
        contact_id=survivor.id,
        channel="system",
        direction=Direction.INTERNAL,
        body=f"Merged contact #{merged.id} ({merged.name or 'no name'}) into this contact",
        meta={
            "event": "merge",
            "merged_contact_id": merged.id,
            "identities": moved_numbers,
            "interactions_moved": moved,
            "actor": actor,
        },
    )
    return survivor


def _merge_consent(session: Session, survivor: Contact, merged: Contact) -> None:
    """Opt-outs always survive a merge: the more restrictive answer wins per channel."""
    mine = {c.channel: c for c in survivor.consents}
    for theirs in list(merged.consents):
        current = mine.get(theirs.channel)
        if current is None:
            theirs.contact_id = survivor.id
        elif theirs.status == ConsentStatus.OPTED_OUT and current.status != ConsentStatus.OPTED_OUT:
            current.status = theirs.status
            current.source = theirs.source
            current.changed_at = theirs.changed_at
            session.delete(theirs)
        else:
            session.delete(theirs)
    session.flush()
    session.expire(survivor, ["consents"])
    session.expire(merged, ["consents"])


def _further_stage(a: str, b: str) -> str:
    order = {stage.value: rank for rank, stage in enumerate(_STAGE_ORDER)}
    if a not in order:
        return a
    if b not in order:
        return a
    return a if order[a] >= order[b] else b


def _merge_signals(survivor: Contact, merged: Contact) -> None:
    """The model's roll-ups: the most recent of the two wins; a pending opt-out review of
    either stays pending (a person still has to decide)."""
    if merged.sentiment_at and (
        not survivor.sentiment_at or merged.sentiment_at > survivor.sentiment_at
    ):
        survivor.sentiment = merged.sentiment
        survivor.sentiment_score = merged.sentiment_score
        survivor.sentiment_at = merged.sentiment_at
    if merged.last_intent_at and (
        not survivor.last_intent_at or merged.last_intent_at > survivor.last_intent_at
    ):
        survivor.last_intent = merged.last_intent
        survivor.last_intent_at = merged.last_intent_at
    if survivor.opt_out_review_at is None and merged.opt_out_review_at is not None:
        survivor.opt_out_review_at = merged.opt_out_review_at
        survivor.opt_out_review_interaction_id = merged.opt_out_review_interaction_id
