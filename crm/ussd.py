"""USSD sessions: answer each hop from the menu and keep the whole session as one interaction.

A hop is answered statelessly: the gateway sends every input so far, and ``bot.menu_walk``
replays them. What must survive between hops is only which contact and which interaction the
session belongs to, and when it started; that lives in Redis under the session id with a TTL,
so a known session costs one UPDATE. Without Redis (down, or the key expired) the same facts
come back from the database: the interaction is unique on (provider, session id).

The interaction's status is ``active`` until an END screen (``completed``), the gateway's
end-of-session notification (``completed``, ``abandoned`` or ``failed``), or the sweeper finds
it older than the session TTL with no end (``abandoned``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from bot.menu import PLACEHOLDER, Menu
from bot.menu_walk import Walk, ussd_screen, walk
from channels.base import UssdHop, UssdSessionEnd
from crm import outbox
from crm.contacts import resolve_by_phone, touched
from crm.menu_actions import apply_effects, template_data
from crm.models import Channel, Contact, Direction, Interaction
from crm.models.base import utcnow
from crm.phones import to_e164
from crm.runtime import Runtime
from crm.sequence_triggers import menu_nodes, note
from crm.timeline import insert_once

log = logging.getLogger(__name__)

ACTIVE = "active"
COMPLETED = "completed"
ABANDONED = "abandoned"
FAILED = "failed"
# The gateway's end-of-session status, mapped to ours.
END_STATUS = {"success": COMPLETED, "incomplete": ABANDONED, "failed": FAILED}


@dataclass(frozen=True)
class UssdAnswer:
    text: str
    end: bool

    @property
    def body(self) -> str:
        """The response body the gateway expects: ``CON ...`` or ``END ...``."""
        return ("END " if self.end else "CON ") + self.text


@dataclass(frozen=True)
class _Session:
    contact_id: int
    interaction_id: int
    started_at: datetime


def _key(provider: str, session_id: str) -> str:
    return f"crm:ussd:{provider}:{session_id}"


def _cached(connection: redis.Redis, key: str) -> _Session | None:
    try:
        raw = connection.hgetall(key)
    except redis.RedisError as exc:
        log.warning("USSD session cache unavailable (%s); reading the database", exc)
        return None
    if not raw:
        return None
    return _Session(
        int(raw[b"contact_id"]),
        int(raw[b"interaction_id"]),
        datetime.fromisoformat(raw[b"started_at"].decode()),
    )


def _cache(connection: redis.Redis, key: str, value: _Session, ttl: int) -> None:
    try:
        with connection.pipeline() as pipe:
            pipe.hset(
                key,
                mapping={
                    "contact_id": value.contact_id,
                    "interaction_id": value.interaction_id,
                    "started_at": value.started_at.isoformat(),
                },
            )
            pipe.expire(key, ttl)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("USSD session not cached (%s)", exc)


def _open(session: Session, *, provider: str, session_id: str, e164: str, service: str) -> _Session:
    """The session's contact and interaction, created on its first hop."""
    contact = resolve_by_phone(session=session, e164=e164, channel=Channel.USSD).contact
    now = utcnow()
    interaction_id = insert_once(
        session,
        {
            "contact_id": contact.id,
            "channel": Channel.USSD.value,
            "direction": Direction.INBOUND.value,
            "body": f"USSD {service}",
            "provider": provider,
            "provider_message_id": session_id,
            "address": service,
            "delivery_status": ACTIVE,
            "metadata": {"service_code": service, "hops": 0},
            "created_at": now,
        },
    )
    if interaction_id is not None:
        touched(contact, Channel.USSD.value, now)  # a session without words is never enriched
        return _Session(contact.id, interaction_id, now)
    row = session.execute(
        select(Interaction.id, Interaction.contact_id, Interaction.created_at).where(
            Interaction.provider == provider, Interaction.provider_message_id == session_id
        )
    ).one()
    return _Session(row.contact_id, row.id, row.created_at)


def summary(service: str, path: tuple[str, ...] | list[str]) -> str:
    return f"USSD {service}: {' > '.join(path)}"


def answer_hop(*, runtime: Runtime, menu: Menu, hop: UssdHop) -> UssdAnswer:
    """Answer one hop and record it on the session's interaction.

    A hop of a known session that changes nothing on the contact and shows none of its data
    (most hops: moving through menus) is one UPDATE in autocommit. Raises InvalidPhoneNumber
    for a bad ``phoneNumber``.
    """
    e164 = to_e164(hop.phone, runtime.settings.default_region)
    result = walk(menu, hop.inputs)
    node = menu.node(result.node_id)
    key = _key(hop.provider, hop.session_id)
    known = _cached(runtime.redis, key)
    effects = result.effects
    triggers = not result.error and node.id in menu_nodes(runtime.engine)  # a sequence's trigger
    needs_contact = bool(
        effects.captured
        or effects.callback
        or effects.opt_out
        or PLACEHOLDER.search(node.prompt)
        or triggers
    )
    if known is not None and not needs_contact:
        text, end = ussd_screen(menu, result, {})
        with runtime.autocommit() as connection:
            _record_hop(connection, known, hop, result, text, end)
        return UssdAnswer(text, end)
    with runtime.session() as session:
        current = known or _open(
            session,
            provider=hop.provider,
            session_id=hop.session_id,
            e164=e164,
            service=hop.service_code,
        )
        data: dict[str, object] = {}
        if needs_contact:
            contact = session.get_one(Contact, current.contact_id)
            if not result.error:
                apply_effects(
                    session=session,
                    contact=contact,
                    effects=effects,
                    channel=Channel.USSD,
                    interaction_id=current.interaction_id,
                    node_id=node.id,
                )
                if triggers:
                    note(session, "menu_node", contact, node.id)
                session.flush()
                if effects.captured is not None and effects.captured.validator == "text":
                    _enrich_again(session, current.interaction_id)
            data = template_data(contact, e164)
        text, end = ussd_screen(menu, result, data)
        _record_hop(session.connection(), current, hop, result, text, end)
    if known is None and not end:
        _cache(runtime.redis, key, current, runtime.settings.ussd_session_ttl)
    return UssdAnswer(text, end)


def _enrich_again(session: Session, interaction_id: int) -> None:
    """Queue the session's free text for the model; a later answer in the same session is
    read again with everything typed so far."""
    session.execute(
        update(Interaction).where(Interaction.id == interaction_id).values(enriched_at=None)
    )
    outbox.add(session, "enrich", interaction_id=interaction_id)


_TABLE = Interaction.__table__
# A Core statement with bound parameters, built once: the ORM's bulk-update path and a fresh
# cache key per hop cost more than the database round trip.
_RECORD_HOP = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("interaction_id"))
    .values(
        body=bindparam("body"),
        delivery_status=bindparam("status"),
        metadata=bindparam("meta", type_=_TABLE.c.metadata.type),
    )
)


def _record_hop(
    connection: Connection,
    current: _Session,
    hop: UssdHop,
    result: Walk,
    screen: str,
    end: bool,
) -> None:
    """Rewrite the session's interaction from this hop: everything in it derives from the hop."""
    now = utcnow()
    connection.execute(
        _RECORD_HOP,
        {
            "interaction_id": current.interaction_id,
            "body": summary(hop.service_code, result.path),
            "status": COMPLETED if end else ACTIVE,
            "meta": {
                "service_code": hop.service_code,
                "network_code": hop.network_code,
                "path": list(result.path),
                "inputs": hop.inputs,
                "captured": {c.attribute: c.value for c in result.captured},
                # What the model reads (crm.enrichment): answers typed in the customer's words.
                "free_text": [c.value for c in result.captured if c.validator == "text"],
                "hops": len(hop.inputs) + 1,
                "last_screen": screen,
                "last_error": result.error,
                "started_at": current.started_at.isoformat(),
                "last_hop_at": now.isoformat(),
                "duration_ms": int((now - current.started_at).total_seconds() * 1000),
                "ended": "menu_end" if end else None,
            },
        },
    )


def record_session_end(*, runtime: Runtime, end: UssdSessionEnd) -> Interaction:
    """Record the gateway's end-of-session notification on the session's interaction."""
    e164 = to_e164(end.phone, runtime.settings.default_region)
    status = END_STATUS.get(end.status.lower(), FAILED)
    with runtime.session() as session:
        interaction = session.scalar(
            select(Interaction).where(
                Interaction.provider == end.provider,
                Interaction.provider_message_id == end.session_id,
            )
        )
        if interaction is None:  # a session we never answered (e.g. it failed at the gateway)
            opened = _open(
                session, provider=end.provider, session_id=end.session_id, e164=e164, service=""
            )
            interaction = session.get_one(Interaction, opened.interaction_id)
        interaction.delivery_status = status
        interaction.meta = {
            **interaction.meta,
            "ended": "gateway",
            "gateway_status": end.status,
            "duration_ms": end.duration_ms,
            "hops": end.hops if end.hops is not None else interaction.meta.get("hops"),
            "gateway_error": end.error_message,
            "cost": end.cost,
        }
    with contextlib.suppress(redis.RedisError):  # the key expires on its own
        runtime.redis.delete(_key(end.provider, end.session_id))
    return interaction


def close_stale_sessions(*, session: Session, ttl_seconds: int, now: datetime | None = None) -> int:
    """Mark sessions still active after the TTL as abandoned (the gateway never said how they
    ended). Returns how many."""
    cutoff = (now or utcnow()) - timedelta(seconds=ttl_seconds)
    result = session.execute(
        update(Interaction)
        .where(
            Interaction.channel == Channel.USSD.value,
            Interaction.delivery_status == ACTIVE,
            Interaction.created_at < cutoff,
        )
        .values(delivery_status=ABANDONED)
    )
    return result.rowcount or 0
