"""Enrolling contacts in sequences: when a trigger fires, by hand, and by the periodic scan.

Event triggers are fired by the services that see the events, in their own transaction
(:func:`fire`): a stage entered (``crm.lifecycle``), a score crossing a value (``crm.scoring``
callers), an intent or sentiment read by the model (``crm.enrichment``), a menu node reached
(``crm.ussd``, ``crm.voice``), a tag added (``crm.contacts``). Date and inactivity triggers
have no event: :func:`scan` (run by workers every few minutes) finds the contacts they select.

A contact is enrolled when the sequence is active, the contact is in its audience (the segment
filters), it is not in the sequence already (a partial unique index makes this hold under
concurrency too), and re-entry allows it: never again by default, or ``after_days`` after its
last enrolment ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from crm import sequence_events
from crm.db import insert_skipping_conflicts
from crm.models import Contact, EnrollmentStatus, Identity, Sequence, SequenceEnrollment
from crm.models.base import utcnow
from crm.segments import conditions
from crm.send_windows import zone_of
from crm.sequence_definition import Trigger
from crm.sequences import definition_of

CHUNK = 2000
DATES_CATCH_UP = timedelta(days=7)
_LISTENING = (
    "crm:sequences:listening"  # session.info: trigger type -> active sequences (this transaction)
)
_LIVE_WHERE = text("status IN ('active', 'paused')")


def _listening(session: Session, kind: str) -> list[Sequence]:
    """The active sequences a trigger type enrols into (asked once per transaction)."""
    cache: dict[str, list[Sequence]] = session.info.setdefault(_LISTENING, {})
    if kind not in cache:
        with session.no_autoflush:
            cache[kind] = list(
                session.scalars(
                    select(Sequence).where(
                        Sequence.status == "active", Sequence.trigger_type == kind
                    )
                )
            )
    return cache[kind]


def matches(trigger: Trigger, value: object, before: object = None) -> bool:
    if trigger.type == "score_crossed":
        assert isinstance(trigger.value, int)
        return (
            isinstance(value, int)
            and value >= trigger.value
            and (before is None or (isinstance(before, int) and before < trigger.value))
        )
    return value == trigger.value


def fire(
    session: Session,
    kind: str,
    contact_ids: Iterable[int],
    value: object,
    *,
    before: object = None,
    now: datetime | None = None,
) -> list[int]:
    """One trigger event for these contacts (the same kind and value: one enrolment call per
    sequence for a whole enrichment batch); the ids of the sequences anyone was enrolled in."""
    ids = list(contact_ids)
    enrolled = []
    for sequence in _listening(session, kind):
        if matches(definition_of(sequence).trigger, value, before):
            label = f"{kind}: {value}"
            if enrol(session, sequence, ids, trigger=label, now=now):
                enrolled.append(sequence.id)
    return enrolled


def enrol(
    session: Session,
    sequence: Sequence,
    contact_ids: Iterable[int],
    *,
    trigger: str,
    now: datetime | None = None,
    audience: bool = True,
) -> list[int]:
    """Enrol the eligible contacts among ``contact_ids``; those enrolled. Bulk: a fixed number
    of statements per 2,000 contacts."""
    if _status_now(session, sequence.id) != "active":
        return []
    now = now or utcnow()
    definition = definition_of(sequence)
    ids = sorted(set(contact_ids))
    enrolled: list[int] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        if audience:
            where = conditions(definition.audience)
            chunk = list(session.scalars(select(Contact.id).where(Contact.id.in_(chunk), *where)))
        chunk = _may_enter(session, sequence.id, chunk, definition.reentry_after, now)
        if chunk:
            enrolled.extend(_insert(session, sequence, chunk, definition.steps[0].id, trigger, now))
    return enrolled


def _status_now(session: Session, sequence_id: int) -> str | None:
    """The sequence's committed status (the object may be older than a pause). Not locked: a
    contact enrolled while a pause commits is held by the runner, which reads the status under
    lock and pauses that enrolment (``crm.sequence_run``)."""
    with session.no_autoflush:
        return session.scalar(select(Sequence.status).where(Sequence.id == sequence_id))


def _may_enter(
    session: Session,
    sequence_id: int,
    contact_ids: list[int],
    reentry_after: timedelta | None,
    now: datetime,
) -> list[int]:
    """Those not in the sequence now, whom re-entry lets in again."""
    if not contact_ids:
        return []
    blocked: set[int] = set()
    for contact_id, status, ended_at in session.execute(
        select(
            SequenceEnrollment.contact_id, SequenceEnrollment.status, SequenceEnrollment.ended_at
        ).where(
            SequenceEnrollment.sequence_id == sequence_id,
            SequenceEnrollment.contact_id.in_(contact_ids),
        )
    ):
        live = status in (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)
        if live or reentry_after is None or ended_at is None or ended_at + reentry_after > now:
            blocked.add(contact_id)
    return [c for c in contact_ids if c not in blocked]


def _insert(
    session: Session,
    sequence: Sequence,
    contact_ids: list[int],
    first_step: str,
    trigger: str,
    now: datetime,
) -> list[int]:
    table = SequenceEnrollment.__table__
    statement = insert_skipping_conflicts(
        session, table, ["sequence_id", "contact_id"], index_where=_LIVE_WHERE
    ).returning(table.c.id, table.c.contact_id)
    rows = [
        {
            "sequence_id": sequence.id,
            "contact_id": contact_id,
            "status": EnrollmentStatus.ACTIVE.value,
            "step_id": first_step,
            "due_at": now,
            "version": sequence.version,
            "steps_run": 0,
            "trigger": trigger[:200],
            "entered_at": now,
        }
        for contact_id in contact_ids
    ]
    # One executemany; a row the unique index refused (enrolled meanwhile) returns nothing.
    inserted = [(row.id, row.contact_id) for row in session.execute(statement, rows)]
    sequence_events.write(
        session,
        [
            sequence_events.entry(
                contact_id,
                f"Enrolled in sequence “{sequence.name}” ({trigger})",
                now,
                sequence_id=sequence.id,
                what="enrolled",
                enrollment_id=enrollment_id,
                trigger=trigger,
            )
            for enrollment_id, contact_id in inserted
        ],
    )
    return [contact_id for _id, contact_id in inserted]


# --- the periodic scan: date attributes and inactivity -------------------------------------


def scan(
    session: Session, now: datetime | None = None, since: Mapping[int, datetime] | None = None
) -> dict[int, int]:
    """Enrol the contacts that date and inactivity triggers select now; how many per sequence
    scanned.

    ``since``: per sequence, its previous scan, so a scan looks only at what became due since.
    A sequence never scanned looks at everything (a win-back activated today enrols everyone
    already inactive); re-entry rules keep a contact from enrolling twice either way."""
    now = now or utcnow()
    since = since or {}
    counts: dict[int, int] = {}
    for sequence in session.scalars(
        select(Sequence).where(
            Sequence.status == "active",
            Sequence.trigger_type.in_(("date_attribute", "inactive")),
        )
    ):
        definition = definition_of(sequence)
        trigger = definition.trigger
        last = since.get(sequence.id)
        if trigger.type == "inactive":
            candidates = _inactive(session, int(trigger.value or 1), now, last)
            label = f"inactive {trigger.value} days"
        else:
            candidates = _dates_due(session, trigger, definition.timezone, now, last)
            label = f"{trigger.value} {trigger.offset_days:+d} days"
        counts[sequence.id] = len(enrol(session, sequence, candidates, trigger=label, now=now))
    return counts


def _inactive(session: Session, days: int, now: datetime, since: datetime | None) -> list[int]:
    """Contacts whose last inbound message (or creation, if none) is ``days`` old."""
    last = func.coalesce(Contact.last_touch_at, Contact.created_at)
    cutoff = now - timedelta(days=days)
    query = select(Contact.id).where(Contact.merged_into_id.is_(None), last <= cutoff)
    if since is not None:
        query = query.where(last > since - timedelta(days=days))
    return list(session.scalars(query))


def _dates_due(
    session: Session, trigger: Trigger, fallback: str, now: datetime, since: datetime | None
) -> list[int]:
    """Contacts whose date attribute, moved by ``offset_days`` and set at ``at`` in their own
    zone, falls between the previous scan (or a day ago, for a sequence never scanned) and now;
    never more than ``DATES_CATCH_UP`` back (workers stopped for weeks do not send last month's
    renewal reminders)."""
    start = max(since or now - timedelta(days=1), now - DATES_CATCH_UP)
    first = start.date() - timedelta(days=1)  # local dates run up to a day either side of UTC
    span = (now.date() - first).days + 2
    days = {first + timedelta(days=d) - timedelta(days=trigger.offset_days) for d in range(span)}
    stored = func.substr(Contact.attributes[str(trigger.value)].as_string(), 1, 10)
    rows = session.execute(
        select(Contact.id, stored, func.min(Identity.value))
        .outerjoin(Identity, (Identity.contact_id == Contact.id) & (Identity.kind == "phone"))
        .where(Contact.merged_into_id.is_(None), stored.in_(sorted(d.isoformat() for d in days)))
        .group_by(Contact.id, stored)
    )
    at = time.fromisoformat(trigger.at or "09:00")
    due = []
    for contact_id, value, phone in rows:
        try:
            day = date.fromisoformat(value) + timedelta(days=trigger.offset_days)
        except (TypeError, ValueError):
            continue
        zone = zone_of(phone, fallback) if phone else zone_of("", fallback)
        moment = datetime.combine(day, at, tzinfo=zone)
        if start < moment <= now:
            due.append(contact_id)
    return due


def enrol_everyone(session: Session, sequence: Sequence, now: datetime | None = None) -> list[int]:
    """Enrol the whole audience now (a marketer starting a sequence for a segment)."""
    definition = definition_of(sequence)
    ids = list(session.scalars(select(Contact.id).where(*conditions(definition.audience))))
    return enrol(session, sequence, ids, trigger="enrolled by hand", now=now, audience=False)
