"""Sequences as records: create, edit, activate, pause, resume, archive (``crm.sequence_run``
runs them; ``crm.sequence_enrol`` enrols contacts).

Each send step sends through a campaign of its own (``Campaign.sequence_id``): the send path,
rate limits, quiet hours, consent checks, delivery statuses and reply/revenue attribution are
the campaigns' own. Those campaigns follow their sequence: paused with it, resumed with it,
cancelled when it is archived; they are not listed among the broadcasts.

Editing a running sequence bumps its version. Enrolments keep their place by step id; one on a
step the edit removed moves on to the next step that still exists (by the old order), and a
send step it already ran is never run again under the new version (``crm.sequence_run``).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm import campaign_launch
from crm.models import (
    Campaign,
    CampaignStatus,
    EnrollmentStatus,
    Sequence,
    SequenceEnrollment,
    SequenceStatus,
    User,
)
from crm.models.base import utcnow
from crm.sequence_definition import DefinitionError, parse_sequence
from crm.sequence_definition import Sequence as Definition
from crm.sequence_exits import LIVE, end
from crm.sequence_triggers import forget_menu_nodes

# An edit or a status change locks the sequence's row against a runner batch walking it (which
# holds it FOR SHARE), but not against the inserts that only reference it (step runs,
# enrolments): FOR NO KEY UPDATE, so neither waits for the other in a cycle.
STOPPING = {"key_share": True}


class SequenceError(ValueError):
    """The change is not allowed in the sequence's state (answered with 409)."""


def definition_of(sequence: Sequence) -> Definition:
    """The parsed definition (cached per id and version: parsing compiles templates)."""
    return _parsed(sequence.id, sequence.version, _frozen(sequence.definition))


@functools.lru_cache(maxsize=256)
def _parsed(_id: int, _version: int, raw: Any) -> Definition:
    return parse_sequence(_thawed(raw))


def _frozen(value: Any) -> Any:
    """A hashable copy of JSON (the cache key), read back by :func:`_thawed`."""
    if isinstance(value, dict):
        return ("{}", tuple((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("[]", tuple(_frozen(v) for v in value))
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "{}":
        return {k: _thawed(v) for k, v in value[1]}
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "[]":
        return [_thawed(v) for v in value[1]]
    return value


def _apply(sequence: Sequence, raw: dict[str, Any], definition: Definition) -> None:
    sequence.name = definition.name
    sequence.definition = raw
    sequence.trigger_type = definition.trigger.type
    sequence.exit_on_reply = "reply" in definition.exit_on
    sequence.exit_on_customer = "customer" in definition.exit_on
    sequence.exit_on_rep = "rep" in definition.exit_on


def create_sequence(
    session: Session, raw: object, user: User | None, *, activate: bool = False
) -> Sequence:
    """Save a new sequence (draft unless ``activate``). Raises DefinitionError."""
    definition = parse_sequence(raw)
    assert isinstance(raw, dict)
    sequence = Sequence(
        status=SequenceStatus.DRAFT.value,
        version=1,
        created_by=user.id if user else None,
    )
    _apply(sequence, raw, definition)
    session.add(sequence)
    session.flush()
    sync_step_campaigns(session, sequence, definition)
    if activate:
        set_status(session, sequence, SequenceStatus.ACTIVE)
    return sequence


def update_sequence(session: Session, sequence: Sequence, raw: object) -> dict[str, int]:
    """Replace the definition; where each enrolment on a removed step went."""
    session.refresh(sequence, with_for_update=STOPPING)
    if sequence.status == SequenceStatus.ARCHIVED:
        raise SequenceError(f"sequence {sequence.id} is archived: it cannot be edited")
    old = definition_of(sequence)
    new = parse_sequence(raw)
    assert isinstance(raw, dict)
    _apply(sequence, raw, new)
    sequence.version += 1
    forget_menu_nodes()
    sync_step_campaigns(session, sequence, new)
    return _move_off_removed_steps(session, sequence, old, new)


def _move_off_removed_steps(
    session: Session, sequence: Sequence, old: Definition, new: Definition
) -> dict[str, int]:
    kept = {step.id for step in new.steps}
    moved: dict[str, int] = {}
    for position, step in enumerate(old.steps):
        if step.id in kept:
            continue
        target = next((s.id for s in old.steps[position + 1 :] if s.id in kept), None)
        result = session.execute(
            update(SequenceEnrollment)
            .where(
                SequenceEnrollment.sequence_id == sequence.id,
                SequenceEnrollment.step_id == step.id,
                SequenceEnrollment.status.in_(LIVE),
            )
            .values(step_id=target)  # None: it completes when next due
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:
            moved[step.id] = result.rowcount
    return moved


def sync_step_campaigns(session: Session, sequence: Sequence, definition: Definition) -> None:
    """One campaign per send step, created or brought up to date with the definition."""
    existing = {
        campaign.sequence_step: campaign
        for campaign in session.scalars(select(Campaign).where(Campaign.sequence_id == sequence.id))
    }
    for step in definition.steps:
        if step.send is None:
            continue
        campaign = existing.get(step.id)
        if campaign is None:
            campaign = Campaign(
                sequence_id=sequence.id,
                sequence_step=step.id,
                status=_campaign_status(sequence),
                created_by=sequence.created_by,
                launched_at=utcnow(),
                summary={},
            )
            session.add(campaign)
        campaign.name = f"{definition.name} · {step.id}"[:200]
        campaign.channel = step.send.channel
        body = step.send.body.source if step.send.body is not None else ""
        campaign.variants = [{"name": "A", "body": body, "weight": 100}]
        campaign.content_sid = step.send.content_sid
        # As written: each message carries its own rendering (crm.sequence_run).
        campaign.content_variables = {
            name: template.source for name, template in step.send.content_variables.items()
        }
        campaign.timezone = definition.timezone
        campaign.in_contact_timezone = True
        campaign.quiet_start = definition.quiet_start
        campaign.quiet_end = definition.quiet_end
    session.flush()


def _campaign_status(sequence: Sequence) -> str:
    if sequence.status == SequenceStatus.PAUSED:
        return CampaignStatus.PAUSED.value
    if sequence.status == SequenceStatus.ARCHIVED:
        return CampaignStatus.CANCELLED.value
    return CampaignStatus.RUNNING.value


def step_campaigns(session: Session, sequence_id: int) -> dict[str, Campaign]:
    return {
        c.sequence_step or "": c
        for c in session.scalars(select(Campaign).where(Campaign.sequence_id == sequence_id))
    }


ALLOWED = {
    SequenceStatus.ACTIVE: (SequenceStatus.DRAFT, SequenceStatus.PAUSED),
    SequenceStatus.PAUSED: (SequenceStatus.ACTIVE,),
    SequenceStatus.ARCHIVED: (SequenceStatus.DRAFT, SequenceStatus.ACTIVE, SequenceStatus.PAUSED),
}


def set_status(
    session: Session, sequence: Sequence, to: SequenceStatus, now: datetime | None = None
) -> int:
    """Activate, pause, resume or archive; how many enrolments (or messages) it moved."""
    session.refresh(sequence, with_for_update=STOPPING)
    current = SequenceStatus(sequence.status)
    if current not in ALLOWED[to]:
        raise SequenceError(f"sequence {sequence.id} is {current}: it cannot become {to}")
    now = now or utcnow()
    sequence.status = to.value
    forget_menu_nodes()
    moved = 0
    if to == SequenceStatus.ACTIVE:
        sequence.activated_at = sequence.activated_at or now
        moved = _move_enrollments(session, sequence.id, EnrollmentStatus.PAUSED, "active")
        for campaign in step_campaigns(session, sequence.id).values():
            if campaign.status == CampaignStatus.PAUSED:
                campaign_launch.resume(session, campaign)
            elif campaign.status != CampaignStatus.RUNNING:
                campaign.status = CampaignStatus.RUNNING.value
    elif to == SequenceStatus.PAUSED:
        moved = _move_enrollments(session, sequence.id, EnrollmentStatus.ACTIVE, "paused")
        for campaign in step_campaigns(session, sequence.id).values():
            if campaign.status == CampaignStatus.RUNNING:
                campaign_launch.pause(session, campaign)
    else:
        rows = session.execute(
            select(
                SequenceEnrollment.id,
                SequenceEnrollment.contact_id,
                SequenceEnrollment.entered_at,
                SequenceEnrollment.sequence_id,
            ).where(
                SequenceEnrollment.sequence_id == sequence.id,
                SequenceEnrollment.status.in_(LIVE),
            )
        ).all()
        moved = len(end(session, [(*row, sequence.name) for row in rows], "archived", now))
        for campaign in step_campaigns(session, sequence.id).values():
            if campaign.status in (CampaignStatus.RUNNING, CampaignStatus.PAUSED):
                campaign_launch.cancel(session, campaign, now)
    return moved


def _move_enrollments(
    session: Session, sequence_id: int, source: EnrollmentStatus, target: str
) -> int:
    result = session.execute(
        update(SequenceEnrollment)
        .where(
            SequenceEnrollment.sequence_id == sequence_id,
            SequenceEnrollment.status == source.value,
        )
        .values(status=target)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def delete_sequence(session: Session, sequence: Sequence) -> None:
    """Only a draft nobody was ever enrolled in; archive the others (their results stay)."""
    enrolled = session.scalar(
        select(func.count())
        .select_from(SequenceEnrollment)
        .where(SequenceEnrollment.sequence_id == sequence.id)
    )
    if sequence.status != SequenceStatus.DRAFT or enrolled:
        raise SequenceError("only a draft nobody was enrolled in can be deleted; archive it")
    session.delete(sequence)


__all__ = [
    "DefinitionError",
    "SequenceError",
    "create_sequence",
    "definition_of",
    "delete_sequence",
    "set_status",
    "step_campaigns",
    "sync_step_campaigns",
    "update_sequence",
]
