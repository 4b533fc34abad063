"""Per-channel consent: opt-out, opt-in, and the check every send goes through."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import ChannelConsent, ConsentStatus, Contact, Direction
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
    verb = "opted out of" if status is ConsentStatus.OPTED_OUT else "opted in to"
    add_entry(
        session=session,
        contact_id=contact.id,
        channel="system",
        direction=Direction.INTERNAL,
        body=f"Contact {verb} {channel} ({source})",
        meta={"event": "consent", "channel": channel, "status": str(status), "source": source},
    )
    return True
