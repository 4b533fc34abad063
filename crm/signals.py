"""Hot-lead signals: a customer asked for a person (USSD or voice callback, "agent" by text).

A signal is a timeline entry the rep can see; a request for a person or a call back also hands
the lead to a rep (``crm.routing``). Recording it twice for the same source interaction is a
no-op.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Channel, Contact, Direction, Interaction
from crm.routing import Trigger, hand_off
from crm.timeline import add_entry

CALLBACK_REQUEST = "callback_request"
HUMAN_REQUEST = "human_request"


def record_signal(
    *,
    session: Session,
    contact_id: int,
    kind: str,
    source_channel: str,
    source_interaction_id: int | None,
    summary: str,
    detail: dict[str, Any] | None = None,
) -> Interaction | None:
    """Put a hot-lead signal on the contact's timeline; None if this source already has one."""
    if source_interaction_id is not None:
        existing = session.scalar(
            select(Interaction.id).where(
                Interaction.contact_id == contact_id,
                Interaction.channel == Channel.SYSTEM,
                Interaction.provider == "signal",
                Interaction.provider_message_id == f"{kind}:{source_interaction_id}",
            )
        )
        if existing is not None:
            return None
    entry = add_entry(
        session=session,
        contact_id=contact_id,
        channel=Channel.SYSTEM,
        direction=Direction.INTERNAL,
        body=summary,
        provider="signal",
        provider_message_id=(
            f"{kind}:{source_interaction_id}" if source_interaction_id is not None else None
        ),
        meta={
            "event": "signal",
            "signal": kind,
            "source_channel": source_channel,
            "source_interaction_id": source_interaction_id,
            **(detail or {}),
        },
    )
    if kind in (CALLBACK_REQUEST, HUMAN_REQUEST):
        contact = session.get_one(Contact, contact_id)
        hand_off(session, contact, Trigger(kind, summary, source_interaction_id))
    return entry
