"""Leaving a sequence early: on a reply, an opt-out, becoming a customer, a rep taking over.

The services that see those events call :func:`exit_contacts` in their own transaction, so an
exit is never half-done. Opting out always exits; the others exit the sequences whose
``exit_on`` lists them (a flag column on ``sequences``). A message a sequence had queued and not
sent yet is skipped when its turn comes (``crm.campaign_send``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm import sequence_events
from crm.models import EnrollmentStatus, Sequence, SequenceEnrollment
from crm.models.base import utcnow

LIVE = (EnrollmentStatus.ACTIVE.value, EnrollmentStatus.PAUSED.value)
REASONS = {
    "reply": "the contact replied",
    "opt_out": "the contact opted out",
    "customer": "the contact became a customer",
    "rep": "a rep took the conversation over",
    "merged": "the contact was merged into another",
    "archived": "the sequence was archived",
    "step_removed": "an edit removed the step it was on",
    "removed": "taken out by hand",
    "loop": "its steps went round without a wait",
}
_FLAGS: dict[str, Any] = {
    "reply": Sequence.exit_on_reply,
    "customer": Sequence.exit_on_customer,
    "rep": Sequence.exit_on_rep,
}


def exit_contacts(
    session: Session,
    contact_ids: Iterable[int],
    reason: str,
    *,
    now: datetime | None = None,
    since: dict[int, datetime] | None = None,
) -> list[int]:
    """End the live enrolments of these contacts that ``reason`` ends; their ids.

    ``since``: per contact, the moment of the event; an enrolment that began after it stays
    (the message that enrolled a contact is not its reply)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return []
    query = (
        select(
            SequenceEnrollment.id,
            SequenceEnrollment.contact_id,
            SequenceEnrollment.entered_at,
            Sequence.id,
            Sequence.name,
        )
        .join(Sequence, Sequence.id == SequenceEnrollment.sequence_id)
        .where(SequenceEnrollment.contact_id.in_(ids), SequenceEnrollment.status.in_(LIVE))
    )
    if reason in _FLAGS:
        query = query.where(_FLAGS[reason].is_(True))
    with session.no_autoflush:
        rows = [
            row
            for row in session.execute(query)
            if since is None
            or row.contact_id not in since
            or row.entered_at < since[row.contact_id]
        ]
    return end(session, rows, reason, now or utcnow())


def end(
    session: Session,
    rows: list[Any],
    reason: str,
    now: datetime,
    status: EnrollmentStatus = EnrollmentStatus.EXITED,
) -> list[int]:
    """End enrolments given as (enrolment id, contact id, entered_at, sequence id, sequence
    name) rows: one UPDATE (still live only) and one entry each."""
    if not rows:
        return []
    ended = set(
        session.scalars(
            update(SequenceEnrollment)
            .where(
                SequenceEnrollment.id.in_([row[0] for row in rows]),
                SequenceEnrollment.status.in_(LIVE),
            )
            .values(status=status.value, ended_at=now, exit_reason=reason, due_at=None)
            .returning(SequenceEnrollment.id)
            .execution_options(synchronize_session=False)
        )
    )
    rows = [row for row in rows if row[0] in ended]  # one that had ended already gets no entry
    why = REASONS.get(reason, reason)
    sequence_events.write(
        session,
        [
            sequence_events.entry(
                contact_id,
                f"Left sequence “{name}”: {why}",
                now,
                sequence_id=sequence_id,
                what="exited",
                enrollment_id=enrollment_id,
                reason=reason,
            )
            for enrollment_id, contact_id, _entered, sequence_id, name in rows
        ],
    )
    return sorted(ended)
