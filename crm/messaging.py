"""Outbound messages: validate and queue a send, perform it in a worker, apply status callbacks.

A send is accepted in two steps so nothing accepted is lost: the API stores a ``pending``
interaction and an outbox row in one transaction; a worker sends it through the channel
adapter. The state machine pending -> sending -> sent|failed makes a resend after a worker crash
impossible: a job that finds a message already ``sending`` marks its outcome unknown instead of
sending it again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.base import ChannelAdapter, OutboundMessage, SendError, StatusUpdate
from channels.twilio import STATUS_RANK
from crm import outbox
from crm.consent import ensure_can_send, is_opted_out, set_consent
from crm.contacts import MergeError, get_contact
from crm.models import ConsentStatus, Direction, Identity, Interaction
from crm.models.base import utcnow
from crm.phones import to_e164
from crm.timeline import add_entry, advance_status

log = logging.getLogger(__name__)

SENDABLE_CHANNELS = ("sms", "whatsapp")
MAX_BODY_CHARS = 1600  # Twilio's limit for one message body
WHATSAPP_WINDOW = timedelta(hours=24)


class SendRefused(ValueError):
    """The send cannot be accepted; the message says why (answered with 422)."""


def _recipient(
    session: Session, contact_id: int, channel: str, to: str | None, default_region: str
) -> str:
    numbers = list(
        session.scalars(
            select(Identity.value).where(
                Identity.contact_id == contact_id, Identity.kind == "phone"
            )
        )
    )
    if to:
        e164 = to_e164(to, default_region)
        if e164 not in numbers:
            raise SendRefused(f"{e164} is not a number of contact {contact_id}")
        return e164
    if not numbers:
        raise SendRefused(f"contact {contact_id} has no phone number")
    # The number the customer last wrote from on this channel, else their first number.
    last_from = session.scalar(
        select(Interaction.meta)
        .where(
            Interaction.contact_id == contact_id,
            Interaction.channel == channel,
            Interaction.direction == Direction.INBOUND.value,
        )
        .order_by(Interaction.created_at.desc())
        .limit(1)
    )
    if last_from:
        raw = str(last_from.get("from", "")).removeprefix("whatsapp:")
        if raw in numbers:
            return raw
    return numbers[0]


def whatsapp_window_closes(session: Session, contact_id: int) -> datetime | None:
    """When WhatsApp's 24-hour customer-service window closes, or None if it is closed."""
    last_inbound = session.scalar(
        select(Interaction.created_at)
        .where(
            Interaction.contact_id == contact_id,
            Interaction.channel == "whatsapp",
            Interaction.direction == Direction.INBOUND.value,
        )
        .order_by(Interaction.created_at.desc())
        .limit(1)
    )
    closes = last_inbound + WHATSAPP_WINDOW if last_inbound is not None else None
    return closes if closes is not None and closes > utcnow() else None


def in_whatsapp_window(session: Session, contact_id: int) -> bool:
    return whatsapp_window_closes(session, contact_id) is not None


def queue_message(
    *,
    session: Session,
    contact_id: int,
    channel: str,
    body: str,
    provider: str,
    default_region: str,
    to: str | None = None,
    author_id: int | None = None,
    content_sid: str | None = None,
    content_variables: dict[str, str] | None = None,
) -> Interaction:
    """Accept a message for sending. Raises SendRefused, OptedOut, InvalidPhoneNumber or
    ContactNotFound with a message fit for the API.

    ``content_sid`` sends an approved WhatsApp template (``body`` is its text as the customer
    reads it, for the timeline); it is the only thing WhatsApp allows outside the 24-hour
    window."""
    if channel not in SENDABLE_CHANNELS:
        raise SendRefused(f"channel must be one of {', '.join(SENDABLE_CHANNELS)}")
    text = (body or "").strip()
    if not text:
        raise SendRefused("body is empty")
    if len(text) > MAX_BODY_CHARS:
        raise SendRefused(f"body is longer than {MAX_BODY_CHARS} characters")
    contact = get_contact(session, contact_id)
    if contact.merged_into_id is not None:
        raise MergeError(f"contact {contact_id} was merged into {contact.merged_into_id}")
    ensure_can_send(session, contact.id, channel)
    e164 = _recipient(session, contact.id, channel, to, default_region)
    if content_sid and channel != "whatsapp":
        raise SendRefused("templates (content_sid) are for WhatsApp only")
    if channel == "whatsapp" and not content_sid and not in_whatsapp_window(session, contact.id):
        raise SendRefused(
            "outside WhatsApp's 24-hour window: the customer has not written in 24 h, "
            "so only an approved template can be sent"
        )
    interaction = add_entry(
        session=session,
        contact_id=contact.id,
        channel=channel,
        direction=Direction.OUTBOUND,
        body=text,
        provider=provider,
        delivery_status="pending",
        author_id=author_id,
        meta={"to": e164}
        | (
            {"content_sid": content_sid, "content_variables": content_variables or {}}
            if content_sid
            else {}
        ),
    )
    outbox.add(session, "send", interaction_id=interaction.id)
    return interaction


def provider_for(session: Session, contact_id: int, channel: str, default: str) -> str:
    """The provider the customer last wrote through on ``channel``: replies go back the same
    way (an Africa's Talking SMS customer is answered through Africa's Talking)."""
    provider = session.scalar(
        select(Interaction.provider)
        .where(
            Interaction.contact_id == contact_id,
            Interaction.channel == channel,
            Interaction.direction == Direction.INBOUND.value,
            Interaction.provider.is_not(None),
        )
        .order_by(Interaction.created_at.desc())
        .limit(1)
    )
    return provider if provider and provider not in {"demo", "simulator"} else default


def queue_bot_reply(
    *,
    session: Session,
    contact_id: int,
    channel: str,
    body: str,
    provider: str,
    to: str,
    meta: dict[str, object],
    consent_exempt: bool,
) -> Interaction:
    """Queue the bot's answer for a provider that cannot take it in the webhook's response.

    ``consent_exempt`` lets the opt-out confirmation reach a contact who just opted out.
    """
    interaction = add_entry(
        session=session,
        contact_id=contact_id,
        channel=channel,
        direction=Direction.OUTBOUND,
        body=body,
        provider=provider,
        delivery_status="pending",
        meta={"to": to, **meta, "consent_exempt": consent_exempt},
    )
    outbox.add(session, "send", interaction_id=interaction.id)
    return interaction


def perform_send(
    *, session: Session, interaction_id: int, adapter: ChannelAdapter, status_callback: str | None
) -> None:
    """Send one pending message. Commits its own state changes; re-raises retryable errors
    after putting the message back to pending so the job's retry can try again."""
    interaction = session.get(Interaction, interaction_id)
    if interaction is None:
        return
    if interaction.delivery_status == "sending":
        interaction.delivery_status = "failed"
        interaction.error_code = "unknown_outcome"
        interaction.meta = {**interaction.meta, "error": "worker stopped while sending; not resent"}
        session.commit()
        return
    if interaction.delivery_status != "pending":
        return
    exempt = bool(interaction.meta.get("consent_exempt"))  # the opt-out confirmation itself
    if not exempt and is_opted_out(session, interaction.contact_id, interaction.channel):
        interaction.delivery_status = "failed"
        interaction.error_code = "opted_out"
        session.commit()
        return
    interaction.delivery_status = "sending"
    session.commit()

    message = OutboundMessage(
        channel=interaction.channel,
        to=interaction.meta["to"],
        body=interaction.body,
        status_callback=status_callback,
        content_sid=interaction.meta.get("content_sid"),
        content_variables=interaction.meta.get("content_variables"),
    )
    try:
        result = adapter.send(message)
    except SendError as exc:
        if exc.retryable:
            interaction.delivery_status = "pending"
            interaction.meta = {
                **interaction.meta,
                "last_error": str(exc),
                "last_error_code": exc.code,
            }
            session.commit()
            raise
        interaction.delivery_status = "failed"
        interaction.error_code = exc.code or "error"
        interaction.meta = {**interaction.meta, "error": str(exc)}
        if exc.opted_out:
            set_consent(
                session=session,
                contact=get_contact(session, interaction.contact_id),
                channel=interaction.channel,
                status=ConsentStatus.OPTED_OUT,
                source=f"provider:{exc.code or 'opted_out'}",
            )
        session.commit()
        return
    interaction.provider = result.provider
    interaction.provider_message_id = result.provider_message_id
    interaction.delivery_status = result.status if result.status in STATUS_RANK else "sent"
    if result.sender:
        interaction.address = result.sender
    session.commit()


def apply_status(*, session: Session, update: StatusUpdate) -> Interaction | None:
    """Apply a delivery status callback: forward only; a provider opt-out opts the contact out."""
    changed = advance_status(
        session=session,
        ranks=STATUS_RANK,
        status=update.status,
        error_code=update.error_code,
        provider=update.provider,
        provider_message_id=update.provider_message_id,
        interaction_id=update.interaction_id,
    )
    if update.opted_out:
        interaction = changed or _find(session, update)
        if interaction is not None:
            set_consent(
                session=session,
                contact=get_contact(session, interaction.contact_id),
                channel=interaction.channel,
                status=ConsentStatus.OPTED_OUT,
                source=f"provider:{update.error_code or 'opted_out'}",
            )
    return changed


def _find(session: Session, update: StatusUpdate) -> Interaction | None:
    if update.interaction_id is not None:
        return session.get(Interaction, update.interaction_id)
    return session.scalar(
        select(Interaction).where(
            Interaction.provider == update.provider,
            Interaction.provider_message_id == update.provider_message_id,
        )
    )
