"""The contact timeline: storing interactions once, reading them newest first."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, or_, select, update
from sqlalchemy.orm import Session

from crm.db import insert_skipping_conflicts
from crm.models import Direction, Interaction
from crm.models.base import utcnow

MAX_ID = 2**63 - 1  # BIGINT; larger ids cannot come from us


class InvalidCursor(ValueError):
    pass


def add_entry(
    *,
    session: Session,
    contact_id: int,
    channel: str,
    direction: Direction | str,
    body: str,
    meta: dict[str, Any] | None = None,
    provider: str | None = None,
    provider_message_id: str | None = None,
    delivery_status: str | None = None,
    address: str | None = None,
    author_id: int | None = None,
) -> Interaction:
    """Add an interaction we produced ourselves (a note, a system event, an outbound message)."""
    interaction = Interaction(
        contact_id=contact_id,
        channel=str(channel),
        direction=str(direction),
        body=body,
        meta=meta or {},
        provider=provider,
        provider_message_id=provider_message_id,
        delivery_status=delivery_status,
        address=address,
        author_id=author_id,
        created_at=utcnow(),
    )
    session.add(interaction)
    session.flush()
    return interaction


def status_rank(column: Any, ranks: dict[str, int]) -> Any:
    """A status column's place on the provider's ladder, in SQL (-1 when unknown)."""
    return case(ranks, value=column, else_=-1)


def advance_status(
    *,
    session: Session,
    ranks: dict[str, int],
    status: str,
    error_code: str | None,
    provider: str,
    provider_message_id: str,
    interaction_id: int | None = None,
) -> Interaction | None:
    """Move a message's delivery status forward, never back, in one atomic UPDATE.

    The message is found by our own id when the callback URL carried it (a callback can beat
    the commit of the provider's message id), else by (provider, provider message id).
    Returns the interaction if its status changed.
    """
    if interaction_id is not None:
        target = Interaction.id == interaction_id
    else:
        target = and_(
            Interaction.provider == provider,
            Interaction.provider_message_id == provider_message_id,
        )
    changes: dict[str, Any] = {"delivery_status": status}
    if error_code:
        changes["error_code"] = error_code
    if interaction_id is not None:
        changes["provider_message_id"] = case(
            (Interaction.provider_message_id.is_(None), provider_message_id),
            else_=Interaction.provider_message_id,
        )
    result = session.execute(
        update(Interaction)
        .where(target, status_rank(Interaction.delivery_status, ranks) < ranks[status])
        .values(**changes)
        .returning(Interaction.id)
    )
    changed_id = result.scalar_one_or_none()
    return session.get(Interaction, changed_id) if changed_id is not None else None


@dataclass(frozen=True)
class TimelinePage:
    items: list[Interaction]
    next_cursor: str | None


def encode_cursor(created_at: datetime, interaction_id: int) -> str:
    raw = json.dumps([created_at.isoformat(), interaction_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, interaction_id = json.loads(base64.urlsafe_b64decode(padded))
        created_at, last_id = datetime.fromisoformat(created), int(interaction_id)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if created_at.tzinfo is None or not 0 < last_id <= MAX_ID:
        raise InvalidCursor("cursor is not valid")
    return created_at, last_id


def timeline_query(contact_id: int) -> Select[tuple[Interaction]]:
    return (
        select(Interaction)
        .where(Interaction.contact_id == contact_id)
        .order_by(Interaction.created_at.desc(), Interaction.id.desc())
    )


def read_timeline(
    *, session: Session, contact_id: int, limit: int = 50, cursor: str | None = None
) -> TimelinePage:
    """Newest first, keyset-paginated on (created_at, id): stable while new rows arrive."""
    query = timeline_query(contact_id)
    if cursor:
        created_at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                Interaction.created_at < created_at,
                and_(Interaction.created_at == created_at, Interaction.id < last_id),
            )
        )
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return TimelinePage(items=rows, next_cursor=next_cursor)


def rep_is_handling(session: Session, contact_id: int, *, hours: int) -> bool:
    """Whether a person on the team wrote to this contact in the last ``hours``: the bot does
    not talk over a rep."""
    since = utcnow() - timedelta(hours=hours)
    return (
        session.scalar(
            select(Interaction.id)
            .where(
                Interaction.contact_id == contact_id,
                Interaction.direction == Direction.OUTBOUND.value,
                Interaction.author_id.is_not(None),
                Interaction.created_at >= since,
            )
            .limit(1)
        )
        is not None
    )


def insert_once(session: Session, values: dict[str, Any]) -> int | None:
    """Insert an interaction unless one with its (provider, provider message id) exists: the id,
    or None when it existed (a retried webhook, or a concurrent one that won)."""
    statement = (
        insert_skipping_conflicts(session, Interaction, ["provider", "provider_message_id"])
        .values(**values)
        .returning(Interaction.id)
    )
    return session.execute(statement).scalar_one_or_none()
