"""The inbox's rows: a page of conversations with what each row shows, in a fixed number of
queries (threads, their last message, contacts and phones, active handoffs).

Ordering is newest inbound first, keyset-paginated on ``(last_inbound_at, id)``. Threads with
no inbound message yet (a rep wrote first) come after all others, ordered by id: two phases,
so each can walk an index instead of sorting NULLs.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from crm.conversations import inbox_query
from crm.ids import is_id
from crm.models import Contact, Conversation, Handoff, Identity, Interaction, LifecycleStage, User
from crm.models.handoffs import ACTIVE

VIEWS = ("mine", "unassigned", "hot", "all")
PAGE_SIZE = 50
HOT_STAGES = (LifecycleStage.MQL.value, LifecycleStage.SQL.value)


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Row:
    conversation: Conversation
    contact: Contact
    phone: str
    last: Interaction | None
    handoff: Handoff | None
    assignee: str

    @property
    def hot(self) -> bool:
        return self.handoff is not None or self.contact.lifecycle_stage in HOT_STAGES


@dataclass(frozen=True)
class RowPage:
    rows: list[Row]
    next_cursor: str | None


def _encode(at: datetime | None, conversation_id: int) -> str:
    raw = json.dumps([at.isoformat() if at else None, conversation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime | None, int]:
    try:
        at, conversation_id = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        when = datetime.fromisoformat(at) if at is not None else None
        conversation_id = int(conversation_id)
    except (ValueError, TypeError) as exc:
        raise BadCursor("cursor is not valid") from exc
    if not is_id(conversation_id) or (when is not None and when.tzinfo is None):
        raise BadCursor("cursor is not valid")
    return when, conversation_id


def _hot() -> Any:
    active = exists().where(
        Handoff.contact_id == Conversation.contact_id, Handoff.status.in_(ACTIVE)
    )
    staged = exists().where(
        Contact.id == Conversation.contact_id, Contact.lifecycle_stage.in_(HOT_STAGES)
    )
    return or_(active, staged)


def threads(
    session: Session,
    user: User,
    *,
    view: str = "mine",
    status: str | None = "open",
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> RowPage:
    base = inbox_query(user, view="all" if view == "hot" else view, status=status)
    base = base.order_by(None)
    if view == "hot":
        base = base.where(_hot())
    after_at, after_id = _decode(cursor) if cursor else (None, None)
    found: list[Conversation] = []
    if after_id is None or after_at is not None:
        inbound = base.where(Conversation.last_inbound_at.is_not(None))
        if after_at is not None:
            inbound = inbound.where(
                or_(
                    Conversation.last_inbound_at < after_at,
                    and_(Conversation.last_inbound_at == after_at, Conversation.id < after_id),
                )
            )
        order = (Conversation.last_inbound_at.desc(), Conversation.id.desc())
        found = list(session.scalars(inbound.order_by(*order).limit(limit + 1)))
    if len(found) <= limit:
        silent = base.where(Conversation.last_inbound_at.is_(None))
        if after_id is not None and after_at is None:
            silent = silent.where(Conversation.id < after_id)
        more = limit + 1 - len(found)
        found += session.scalars(silent.order_by(Conversation.id.desc()).limit(more))
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        tail = found[-1]
        next_cursor = _encode(tail.last_inbound_at, tail.id)
    return RowPage(rows=rows_for(session, found), next_cursor=next_cursor)


def rows_for(session: Session, conversations: list[Conversation]) -> list[Row]:
    """Everything the rows show, in four queries whatever the page size."""
    if not conversations:
        return []
    contact_ids = list({c.contact_id for c in conversations})
    contacts = {
        c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(contact_ids)))
    }
    phones: dict[int, str] = {}
    for contact_id, value in session.execute(
        select(Identity.contact_id, Identity.value)
        .where(Identity.contact_id.in_(contact_ids))
        .order_by(Identity.id)
    ):
        phones.setdefault(contact_id, value)
    # The newest message of each thread from the customer or a person on the team (the bot's
    # automatic answers say nothing a rep needs): one correlated subquery per row, each a
    # short walk down the timeline index (contact_id, created_at, id).
    latest = (
        select(Interaction.id)
        .where(
            Interaction.contact_id == Conversation.contact_id,
            Interaction.channel == Conversation.channel,
            or_(Interaction.direction == "inbound", Interaction.author_id.is_not(None)),
        )
        .order_by(Interaction.created_at.desc(), Interaction.id.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    last_ids = dict(
        session.execute(
            select(Conversation.id, latest).where(
                Conversation.id.in_([c.id for c in conversations])
            )
        ).all()
    )
    wanted = [i for i in last_ids.values() if i is not None]
    messages = (
        {m.id: m for m in session.scalars(select(Interaction).where(Interaction.id.in_(wanted)))}
        if wanted
        else {}
    )
    handoffs = {
        h.contact_id: h
        for h in session.scalars(
            select(Handoff).where(Handoff.contact_id.in_(contact_ids), Handoff.status.in_(ACTIVE))
        )
    }
    assignee_ids = {c.assignee_id for c in conversations if c.assignee_id is not None}
    names = (
        dict(session.execute(select(User.id, User.name).where(User.id.in_(assignee_ids))).all())
        if assignee_ids
        else {}
    )
    return [
        Row(
            conversation=c,
            contact=contacts[c.contact_id],
            phone=phones.get(c.contact_id, ""),
            last=messages.get(last_ids.get(c.id) or 0),
            handoff=handoffs.get(c.contact_id),
            assignee=names.get(c.assignee_id, "") if c.assignee_id else "",
        )
        for c in conversations
    ]
