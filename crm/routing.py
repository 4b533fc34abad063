"""Who gets a hot lead: the contact's owner if they can take it, else the next available rep.

A rep is available when active, within their working hours (in their time zone) and under
their cap of open handoffs. Among available reps the one assigned longest ago goes first
(round-robin that survives restarts and new reps). A contact has at most one active handoff:
a second trigger while one is open is a no-op (enforced by a partial unique index, so two
workers racing produce one).

Triggers (a new MQL, a request for a person or a call back) do not route in place: they write a
``handoff`` outbox job (:func:`request_handoff`) in their own transaction, and a worker routes
it (:func:`route_lead`). The enrichment batch and the webhooks stay fast, and a trigger is never
lost. The assigned rep is notified in the app and by SMS (``crm.notifications``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm import outbox
from crm.conversations import assign_contact
from crm.db import insert_skipping_conflicts
from crm.models import Contact, Direction, Handoff, HandoffStatus, Role, User
from crm.models.base import utcnow
from crm.models.handoffs import ACTIVE, ACTIVE_SQL
from crm.notifications import notify
from crm.timeline import add_entry

DEFAULT_SLA = timedelta(minutes=15)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def in_working_hours(rep: User, now: datetime) -> bool:
    """True when ``now`` is inside the rep's hours for that weekday; no hours set: any time."""
    hours = rep.working_hours or {}
    if not hours:
        return True
    try:
        local = now.astimezone(ZoneInfo(rep.timezone or "UTC"))
    except ZoneInfoNotFoundError:
        local = now
    span = hours.get(DAYS[local.weekday()])
    if not span:
        return False
    start, end = (time.fromisoformat(value) for value in span)
    return start <= local.time() < end


def open_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Handoff.rep_id, func.count())
        .where(Handoff.status.in_(ACTIVE), Handoff.rep_id.is_not(None))
        .group_by(Handoff.rep_id)
    )
    return {rep_id: count for rep_id, count in rows}


def available(rep: User, counts: dict[int, int], now: datetime) -> bool:
    under_cap = rep.lead_cap is None or counts.get(rep.id, 0) < rep.lead_cap
    return rep.active and rep.role == Role.REP and under_cap and in_working_hours(rep, now)


def pick_rep(
    session: Session, contact: Contact, now: datetime, exclude: tuple[int, ...] = ()
) -> User | None:
    """The owner if available, else the available rep assigned longest ago; None if nobody."""
    counts = open_counts(session)
    if contact.owner_id is not None and contact.owner_id not in exclude:
        owner = session.get(User, contact.owner_id)
        if owner is not None and available(owner, counts, now):
            return owner
    reps = session.scalars(
        select(User)
        .where(User.role == Role.REP, User.active.is_(True))
        .order_by(User.last_assigned_at.asc().nulls_first(), User.id)
    )
    return next(
        (rep for rep in reps if rep.id not in exclude and available(rep, counts, now)), None
    )


def note_handoff(
    session: Session, contact_id: int, handoff_id: int, body: str, **meta: object
) -> None:
    """A handoff event on the contact's timeline."""
    add_entry(
        session=session,
        contact_id=contact_id,
        channel="system",
        direction=Direction.INTERNAL,
        body=body,
        meta={"event": "handoff", "handoff_id": handoff_id, **meta},
    )


@dataclass(frozen=True)
class Trigger:
    reason: str  # mql | human_request | callback_request | escalation
    summary: str
    source_interaction_id: int | None = None


MQL = "mql"


def request_handoff(session: Session, contact_id: int, trigger: Trigger) -> int:
    """Queue the routing of a hot lead (outbox job ``handoff``); the outbox row's id."""
    return outbox.add(
        session,
        "handoff",
        contact_id=contact_id,
        reason=trigger.reason,
        summary=trigger.summary[:500],
        source_interaction_id=trigger.source_interaction_id,
    )


def route_lead(
    session: Session, contact_id: int, trigger: Trigger, now: datetime | None = None
) -> Handoff | None:
    """The ``handoff`` job: route the lead unless it has an active handoff already (or is gone).

    An MQL's summary is written here, from the score's explanation at routing time."""
    from crm import scoring  # scoring imports nothing of routing; kept local to stay light

    now = now or utcnow()
    contact = session.get(Contact, contact_id)
    while contact is not None and contact.merged_into_id is not None:
        contact = session.get(Contact, contact.merged_into_id)
    if contact is None:
        return None
    if trigger.reason == MQL and not trigger.summary:
        why = "; ".join(str(r) for r in scoring.explain(session, contact, now=now, limit=3))
        trigger = Trigger(MQL, f"score {contact.score}: {why}", trigger.source_interaction_id)
    return hand_off(session, contact, trigger, now=now)


def lead_notice(contact: Contact, trigger: Trigger, sla: timedelta) -> str:
    """The rep's notice: who, why hot, and the deadline."""
    phone = next((i.value for i in contact.identities if i.kind == "phone"), "")
    who = " ".join(part for part in (contact.name or "", phone) if part) or f"#{contact.id}"
    minutes = int(sla.total_seconds() // 60)
    return f"Hot lead {who} ({trigger.reason}): {trigger.summary} Reply within {minutes} min."


def hand_off(
    session: Session,
    contact: Contact,
    trigger: Trigger,
    *,
    now: datetime | None = None,
    sla: timedelta = DEFAULT_SLA,
    exclude: tuple[int, ...] = (),
) -> Handoff | None:
    """Create the contact's handoff, assign it (never to a rep in ``exclude``) and schedule its
    SLA check; None if one is already active."""
    now = now or utcnow()
    rep = pick_rep(session, contact, now, exclude)
    table = Handoff.__table__
    # The index's predicate as literal SQL: with bound parameters PostgreSQL could not always
    # prove it matches the partial index (seen in bench/intelligence.py).
    statement = (
        insert_skipping_conflicts(session, table, ["contact_id"], index_where=ACTIVE_SQL)
        .values(
            contact_id=contact.id,
            rep_id=rep.id if rep else None,
            reason=trigger.reason,
            summary=trigger.summary[:500],
            status=HandoffStatus.OPEN.value,
            source_interaction_id=trigger.source_interaction_id,
            created_at=now,
            due_at=now + sla,
        )
        .returning(table.c.id)
    )
    handoff_id = session.execute(statement).scalar_one_or_none()
    if handoff_id is None:
        return None
    if rep is not None:
        rep.last_assigned_at = now
        contact.owner_id = rep.id
        assign_contact(session, contact.id, rep.id)
        notify(
            session,
            rep,
            "hot_lead",
            lead_notice(contact, trigger, sla),
            contact_id=contact.id,
            handoff_id=handoff_id,
        )
    outbox.add(session, "handoff_sla", handoff_id=handoff_id, run_at=(now + sla).isoformat())
    to = f"{rep.name or rep.email}" if rep else "nobody (no rep available)"
    note_handoff(
        session,
        contact.id,
        handoff_id,
        f"Hot lead handed to {to}: {trigger.summary}",
        reason=trigger.reason,
        rep_id=rep.id if rep else None,
        due_at=(now + sla).isoformat(),
    )
    return session.get_one(Handoff, handoff_id)
