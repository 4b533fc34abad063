"""Store an inbound message and its enrichment job in as few round trips as the database allows.

This is the webhook's hot path, so it runs as Core statements, not through the ORM unit of work.
On PostgreSQL one statement (data-modifying CTEs) finds the sender, inserts the interaction once,
fills in a missing contact name and writes the outbox row. Being one statement, it is atomic on
its own: :func:`store_known_sender` runs it in autocommit, one round trip in all (no BEGIN, no
COMMIT), which is what most inbound messages need. SQLite, which has no data-modifying CTEs,
runs the same steps as separate statements inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from crm import outbox
from crm.contacts import PHONE
from crm.models import ChannelConsent, Contact, Identity, Interaction
from crm.models.base import UTCDateTime

ENRICH = "enrich"


@dataclass(frozen=True)
class Stored:
    contact_id: int
    name: str | None  # the contact's name before this message
    consent: str | None  # the contact's consent on the message's channel before this message
    interaction_id: int | None  # None: a duplicate delivery, nothing stored
    outbox_id: int | None = None  # the enrichment job's outbox row, to announce after commit


@dataclass(frozen=True)
class Message:
    channel: str
    body: str
    provider: str
    provider_message_id: str
    address: str
    metadata: dict[str, Any]
    created_at: datetime
    profile_name: str | None = None  # becomes the contact's name if it has none


# The contact owning the number, its name, and its consent on the channel.
_LOOKUP = (
    select(Identity.contact_id, Contact.name, ChannelConsent.status)
    .join(Contact, Contact.id == Identity.contact_id)
    .outerjoin(
        ChannelConsent,
        and_(
            ChannelConsent.contact_id == Identity.contact_id,
            ChannelConsent.channel == bindparam("channel"),
        ),
    )
    .where(Identity.kind == PHONE, Identity.value == bindparam("phone"))
)

# SQLite: the idempotent insert on its own (ON CONFLICT DO NOTHING: one of any number of
# concurrent deliveries of the same provider message wins).
_SQLITE_INSERT_ONCE = (
    sqlite.insert(Interaction.__table__)
    .on_conflict_do_nothing(index_elements=["provider", "provider_message_id"])
    .returning(Interaction.__table__.c.id)
)

_POSTGRES_STORE = text(
    """
    WITH sender AS (
        SELECT i.contact_id, c.name, cc.status
        FROM identities AS i
        JOIN contacts AS c ON c.id = i.contact_id
        LEFT JOIN channel_consents AS cc
            ON cc.contact_id = i.contact_id AND cc.channel = :channel
        WHERE i.kind = :kind AND i.value = :phone
    ), stored AS (
        INSERT INTO interactions (contact_id, channel, direction, body, provider,
                                  provider_message_id, address, delivery_status, metadata,
                                  created_at)
        SELECT contact_id, :channel, 'inbound', :body, :provider, :provider_message_id,
               :address, 'received', :metadata, :created_at
        FROM sender
        ON CONFLICT (provider, provider_message_id) DO NOTHING
        RETURNING id
    ), named AS (
        UPDATE contacts SET name = CAST(:profile_name AS VARCHAR)
        FROM sender, stored
        WHERE contacts.id = sender.contact_id AND contacts.name IS NULL
              AND CAST(:profile_name AS VARCHAR) IS NOT NULL
        RETURNING contacts.id
    ), queued AS (
        INSERT INTO outbox_jobs (job, payload, created_at, attempts)
        SELECT :job, jsonb_build_object('interaction_id', stored.id), :created_at, 0
        FROM stored
        RETURNING id
    )
    SELECT sender.contact_id, sender.name, sender.status,
           stored.id AS interaction_id, queued.id AS outbox_id
    FROM sender LEFT JOIN stored ON TRUE LEFT JOIN queued ON TRUE
    """
).bindparams(
    bindparam("metadata", type_=JSONB()),
    bindparam("created_at", type_=UTCDateTime()),
)


def one_statement(engine: Engine) -> bool:
    """Whether this database stores an inbound message in one atomic statement."""
    return engine.dialect.name == "postgresql"


def store_known_sender(connection: Connection, *, phone: str, message: Message) -> Stored | None:
    """Store ``message`` in one statement on a connection in autocommit mode (PostgreSQL).

    Returns None when no contact owns ``phone``; nothing is written then.
    """
    return _store_postgres(connection, phone, message)


def _store_postgres(connection: Connection, phone: str, message: Message) -> Stored | None:
    row = connection.execute(
        _POSTGRES_STORE,
        {
            "kind": PHONE,
            "phone": phone,
            "channel": message.channel,
            "body": message.body,
            "provider": message.provider,
            "provider_message_id": message.provider_message_id,
            "address": message.address,
            "metadata": message.metadata,
            "created_at": message.created_at,
            "profile_name": message.profile_name,
            "job": ENRICH,
        },
    ).first()
    if row is None:
        return None
    return Stored(row.contact_id, row.name, row.status, row.interaction_id, row.outbox_id)


def store_inbound(*, session: Session, phone: str, message: Message) -> Stored | None:
    """Store ``message`` from the contact owning ``phone`` (E.164), once, with its enrichment
    job in the outbox, in the session's transaction. Returns None when no contact owns the
    number (create it, then call again)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        stored = _store_postgres(connection, phone, message)
        if stored is not None and stored.outbox_id is not None:
            outbox.register(session, stored.outbox_id)
        return stored

    sender = connection.execute(_LOOKUP, {"phone": phone, "channel": message.channel}).first()
    if sender is None:
        return None
    interaction_id = connection.execute(
        _SQLITE_INSERT_ONCE,
        {
            "contact_id": sender.contact_id,
            "channel": message.channel,
            "direction": "inbound",
            "body": message.body,
            "provider": message.provider,
            "provider_message_id": message.provider_message_id,
            "address": message.address,
            "delivery_status": "received",
            "metadata": message.metadata,
            "created_at": message.created_at,
        },
    ).scalar_one_or_none()
    if interaction_id is None:
        return Stored(sender.contact_id, sender.name, sender.status, None)
    if message.profile_name and not sender.name:
        connection.execute(
            update(Contact)
            .where(Contact.id == sender.contact_id, Contact.name.is_(None))
            .values(name=message.profile_name)
        )
    outbox_id = outbox.add(session, ENRICH, interaction_id=interaction_id)
    return Stored(sender.contact_id, sender.name, sender.status, interaction_id, outbox_id)
