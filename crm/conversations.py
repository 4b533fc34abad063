"""Conversations: the inbox's threads, one per contact and channel you can reply on.

Inbound messages open (or reopen) the thread and make it unread; the enrichment job does this
for a whole batch in one statement, off the webhook's path. A rep's reply marks the thread read,
takes it if nobody had it, and is the lead's first touch (``crm.handoffs``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, and_, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crm.access import visible_contacts
from crm.db import insert_skipping_conflicts
from crm.ids import is_id
from crm.models import Contact, Conversation, ConversationStatus, Role, User
from crm.models.base import utcnow
from crm.sequence_exits import exit_contacts
from crm.users import takes_work

THREADED_CHANNELS = frozenset({"sms", "whatsapp"})


class ConversationError(ValueError):
    """The change is not valid or not allowed (answered with 422)."""


@dataclass(frozen=True)
class Arrival:
    contact_id: int
    channel: str
    at: datetime
    owner_id: int | None


def record_arrivals(session: Session, arrivals: Iterable[Arrival]) -> None:
    """Open the threads of these inbound messages, or bring them forward: newer
    ``last_inbound_at`` (so unread), and a snoozed or closed thread reopens."""
    latest: dict[tuple[int, str], Arrival] = {}
    for arrival in arrivals:
        if arrival.channel not in THREADED_CHANNELS:
            continue
        key = (arrival.contact_id, arrival.channel)
        if key not in latest or latest[key].at < arrival.at:
            latest[key] = arrival
    if not latest:
        return
    now = utcnow()
    # One statement: a new thread, or an existing one brought forward (and reopened).
    session.execute(
        _arrivals_upsert(session.get_bind().dialect.name),
        [
            {
                "contact_id": a.contact_id,
                "channel": a.channel,
                "assignee_id": a.owner_id,
                "status": ConversationStatus.OPEN.value,
                "last_inbound_at": a.at,
                "created_at": now,
                "updated_at": now,
            }
            for a in latest.values()
        ],
    )


@functools.cache
def _arrivals_upsert(dialect_name: str) -> Insert:
    """Built once per dialect: building it (``excluded`` proxies every column) costs more
    Python than running it."""
    table = Conversation.__table__
    statement = (postgresql if dialect_name == "postgresql" else sqlite).insert(table)
    newer = statement.excluded.last_inbound_at
    return statement.on_conflict_do_update(
        index_elements=["contact_id", "channel"],
        set_={
            "last_inbound_at": newer,
            "status": ConversationStatus.OPEN.value,
            "snoozed_until": None,
            "updated_at": statement.excluded.updated_at,
        },
        where=or_(table.c.last_inbound_at.is_(None), table.c.last_inbound_at < newer),
    )


def assign_contact(session: Session, contact_id: int, user_id: int) -> None:
    """The contact's threads go to ``user_id`` (a handoff routed the lead to them)."""
    session.execute(
        update(Conversation)
        .where(Conversation.contact_id == contact_id)
        .values(assignee_id=user_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def thread(session: Session, contact_id: int, channel: str) -> Conversation:
    """The contact's thread on ``channel``, created if it has none."""
    found = session.scalar(
        select(Conversation).where(
            Conversation.contact_id == contact_id, Conversation.channel == channel
        )
    )
    if found is not None:
        return found
    session.execute(
        insert_skipping_conflicts(session, Conversation.__table__, ["contact_id", "channel"]),
        [
            {
                "contact_id": contact_id,
                "channel": channel,
                "status": ConversationStatus.OPEN.value,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        ],
    )
    return session.scalars(
        select(Conversation).where(
            Conversation.contact_id == contact_id, Conversation.channel == channel
        )
    ).one()


def record_reply(
    session: Session, contact_id: int, channel: str, user: User, at: datetime | None = None
) -> Conversation | None:
    """A user wrote to the contact: the thread is read, and theirs if it was nobody's."""
    exit_contacts(session, [contact_id], "rep", now=at)  # sequences that stop for a rep
    if channel not in THREADED_CHANNELS:
        return None
    at = at or utcnow()
    conversation = thread(session, contact_id, channel)
    conversation.last_outbound_at = at
    conversation.last_read_at = at
    if conversation.assignee_id is None and user.role == Role.REP:
        conversation.assignee_id = user.id
    return conversation


def visible_to(user: User):  # type: ignore[no-untyped-def]
    """What a user may see: admins and marketers everything; a rep their threads, and the
    unassigned ones of contacts nobody else owns (``crm.access``)."""
    if user.role != Role.REP:
        return true()
    unowned = select(Contact.id).where(visible_contacts(user))
    return or_(
        Conversation.assignee_id == user.id,
        and_(Conversation.assignee_id.is_(None), Conversation.contact_id.in_(unowned)),
    )


def sees(session: Session, user: User, conversation: Conversation) -> bool:
    """One thread, by the same rule as :func:`visible_to`."""
    if user.role != Role.REP or conversation.assignee_id == user.id:
        return True
    if conversation.assignee_id is not None:
        return False
    owner = session.scalar(select(Contact.owner_id).where(Contact.id == conversation.contact_id))
    return owner in (user.id, None)


def inbox_query(
    user: User, *, view: str = "mine", status: str | None = "open", unread: bool | None = None
):  # type: ignore[no-untyped-def]
    """Threads for the inbox, newest inbound first. ``view``: mine | unassigned | all."""
    query = select(Conversation).where(visible_to(user))
    if view == "mine":
        query = query.where(Conversation.assignee_id == user.id)
    elif view == "unassigned":
        query = query.where(Conversation.assignee_id.is_(None))
    elif view != "all":
        raise ConversationError("view must be mine, unassigned or all")
    if status is not None:
        if status not in set(ConversationStatus):
            raise ConversationError(f"status must be one of {', '.join(ConversationStatus)}")
        query = query.where(Conversation.status == status)
    if unread is not None:
        is_unread = and_(
            Conversation.last_inbound_at.is_not(None),
            or_(
                Conversation.last_read_at.is_(None),
                Conversation.last_inbound_at > Conversation.last_read_at,
            ),
        )
        query = query.where(is_unread if unread else ~is_unread)
    return query.order_by(Conversation.last_inbound_at.desc().nulls_last(), Conversation.id.desc())


def change(
    session: Session,
    conversation: Conversation,
    user: User,
    *,
    status: str | None = None,
    snoozed_until: datetime | None = None,
    assignee_id: int | type[...] | None = ...,
    read: bool | None = None,
) -> Conversation:
    """Update a thread: status (snoozing needs a time in the future), assignee, read state."""
    now = utcnow()
    if status is not None:
        if status not in set(ConversationStatus):
            raise ConversationError(f"status must be one of {', '.join(ConversationStatus)}")
        if status == ConversationStatus.SNOOZED:
            if snoozed_until is None or snoozed_until <= now:
                raise ConversationError("snoozing needs snoozed_until, a time in the future")
            conversation.snoozed_until = snoozed_until
        else:
            conversation.snoozed_until = None
        conversation.status = status
    if assignee_id is not ...:
        if assignee_id is not None:
            if not is_id(assignee_id):
                raise ConversationError("assignee_id must be a user id or null")
            if not takes_work(session, assignee_id):  # type: ignore[arg-type]
                raise ConversationError(f"user {assignee_id} is not an active rep or admin")
        theirs = conversation.assignee_id == user.id
        if user.role == Role.REP and assignee_id not in (user.id, None) and not theirs:
            raise ConversationError("a rep can only transfer their own conversations")
        conversation.assignee_id = assignee_id  # type: ignore[assignment]
    if read is not None:
        conversation.last_read_at = now if read else None
    return conversation


def wake_snoozed(session: Session, now: datetime | None = None) -> int:
    """Reopen threads whose snooze ran out (the worker's sweeper calls this)."""
    now = now or utcnow()
    result = session.execute(
        update(Conversation)
        .where(
            Conversation.status == ConversationStatus.SNOOZED.value,
            Conversation.snoozed_until <= now,
        )
        .values(status=ConversationStatus.OPEN.value, snoozed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
