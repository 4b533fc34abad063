"""Hot-lead signals: a customer asked for a person (USSD or voice callback, "agent" by text).

A signal is a timeline entry the rep can see; a request for a person or a call back also
queues the lead for a rep (``crm.routing``), and a call back request scores (``crm.scoring``).
Recording it twice for the same source interaction is a no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from crm.models import Channel, Contact, Direction
from crm.models.base import utcnow
from crm.routing import Trigger, request_handoff
from crm.scoring import Event, apply_events
from crm.timeline import insert_once

CALLBACK_REQUEST = "callback_request"
HUMAN_REQUEST = "human_request"


def signal_values(
    *,
    contact_id: int,
    kind: str,
    source_channel: str,
    source_interaction_id: int | None,
    summary: str,
    detail: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """A signal's timeline row. Its key, ``<kind>:<source interaction id>``, makes a second
    signal of the same kind for the same message a conflict, skipped on insert."""
    return {
        "contact_id": contact_id,
        "channel": Channel.SYSTEM.value,
        "direction": Direction.INTERNAL.value,
        "body": summary,
        "provider": "signal",
        "provider_message_id": (
            f"{kind}:{source_interaction_id}" if source_interaction_id is not None else None
        ),
        "metadata": {
            "event": "signal",
            "signal": kind,
            "source_channel": source_channel,
            "source_interaction_id": source_interaction_id,
            **(detail or {}),
        },
        "created_at": created_at or utcnow(),
    }


def record_signal(
    *,
    session: Session,
    contact_id: int,
    kind: str,
    source_channel: str,
    source_interaction_id: int | None,
    summary: str,
    detail: dict[str, Any] | None = None,
) -> int | None:
    """Put a signal on the contact's timeline (and hand a request for a person to a rep); the
    entry's id, or None if this source already has one."""
    entry_id = insert_once(
        session,
        signal_values(
            contact_id=contact_id,
            kind=kind,
            source_channel=source_channel,
            source_interaction_id=source_interaction_id,
            summary=summary,
            detail=detail,
        ),
    )
    if entry_id is not None and kind in (CALLBACK_REQUEST, HUMAN_REQUEST):
        if kind == CALLBACK_REQUEST and source_interaction_id is not None:
            contact = session.get_one(Contact, contact_id)
            event = Event(
                CALLBACK_REQUEST, f"interaction:{source_interaction_id}", utcnow(), source_channel
            )
            apply_events(session, {contact: [event]})
        request_handoff(session, contact_id, Trigger(kind, summary, source_interaction_id))
    return entry_id
