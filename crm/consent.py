"""Per-channel consent: opt-out, opt-in, and the check every send goes through."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import ChannelConsent, ConsentStatus, Contact, Direction
from crm.models.base import utcnow
from crm.sequence_exits import exit_contacts
from crm.timeline import add_entry


class OptedOut(Exception):
    """Sending to this contact on this channel is not allowed: they opted out."""


def consent_status(session: Session, contact_id: int, channel: str) -> str | None:
    return session.scalar(
        select(ChannelConsent.status).where(
            ChannelConsent.contact_id == contact_id, ChannelConsent.channel == channel
        )
    )


def is_opted_out(session: Session, contact_id: int, channel: str) -> bool:
    return consent_status(session, contact_id, channel) == ConsentStatus.OPTED_OUT


def ensure_can_send(session: Session, contact_id: int, channel: str) -> None:
    if is_opted_out(session, contact_id, channel):
        raise OptedOut(f"contact {contact_id} has opted out of {channel}")


def set_consent(
    *, session: Session, contact: Contact, channel: str, status: ConsentStatus, source: str
) -> bool:
    """Record a consent change and put it on the timeline. Returns False if nothing changed."""
    current = session.scalar(
        select(ChannelConsent).where(
            ChannelConsent.contact_id == contact.id, ChannelConsent.channel == channel
        )
    )
    if current is not None and current.status == status:
        return False
    if current is None:
        session.add(
            ChannelConsent(contact_id=contact.id, channel=channel, status=status, source=source)
        )
    else:
        current.status = status
        current.source = source
        current.changed_at = utcnow()  # when it last changed: opt-out checks compare it
    verb = "opted out of" if status is ConsentStatus.OPTED_OUT else "opted in to"
    add_entry(
        session=session,
        contact_id=contact.id,
        channel="system",
        direction=Direction.INTERNAL,
        body=f"Contact {verb} {channel} ({source})",
        meta={"event": "consent", "channel": channel, "status": str(status), "source": source},
    )
    if status is ConsentStatus.OPTED_OUT:
        exit_contacts(session, [contact.id], "opt_out")  # every sequence, at once
    return True


MARKETING_CHANNELS = ("sms", "whatsapp")


class NothingToReview(Exception):
    """The contact has no opt-out waiting for review."""


def marketing_paused(contact: Contact) -> bool:
    """True while a possible opt-out read by the model waits for a person: campaigns and
    sequences skip the contact (conversations with a rep go on)."""
    return contact.opt_out_review_at is not None


def resolve_opt_out_review(
    *, session: Session, contact: Contact, confirm: bool, actor: str
) -> list[str]:
    """A person's decision on a flagged opt-out. Confirming opts the contact out of every
    marketing channel; dismissing resumes marketing. Returns the channels opted out."""
    if contact.opt_out_review_at is None:
        raise NothingToReview(f"contact {contact.id} has no opt-out waiting for review")
    source_id = contact.opt_out_review_interaction_id
    changed = []
    if confirm:
        for channel in MARKETING_CHANNELS:
            if set_consent(
                session=session,
                contact=contact,
                channel=channel,
                status=ConsentStatus.OPTED_OUT,
                source=f"review:{actor}",
            ):
                changed.append(channel)
    contact.opt_out_review_at = None
    contact.opt_out_review_interaction_id = None
    decision = "confirmed" if confirm else "dismissed"
    add_entry(
        session=session,
        contact_id=contact.id,
        channel="system",
        direction=Direction.INTERNAL,
        body=f"Possible opt-out {decision} by {actor}",
        meta={
            "event": "opt_out_review",
            "decision": decision,
            "actor": actor,
            "source_interaction_id": source_id,
            "opted_out": changed,
        },
    )
    return changed
