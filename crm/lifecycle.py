"""One lifecycle for every contact: subscriber -> lead -> mql -> sql -> opportunity -> customer,
plus disqualified (with a reason code).

Forward moves are allowed from anyone (a rule, a rep, a won deal), skipping stages included.
Moving back, disqualifying, or bringing a disqualified contact back needs a reason. Every move
is a timeline entry saying who or what moved the contact and why.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm.models import Contact, Direction, LifecycleStage
from crm.sequence_exits import exit_contacts
from crm.sequence_triggers import note
from crm.timeline import add_entry

ORDER = (
    LifecycleStage.SUBSCRIBER,
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.OPPORTUNITY,
    LifecycleStage.CUSTOMER,
)
DISQUALIFY_REASONS = (
    "not_interested",
    "no_budget",
    "wrong_fit",
    "duplicate",
    "spam",
    "unreachable",
)


class TransitionError(ValueError):
    """The move is not allowed (or needs a reason it was not given)."""


def move(
    session: Session,
    contact: Contact,
    to: LifecycleStage | str,
    *,
    actor: str,
    reason: str | None = None,
) -> bool:
    """Move ``contact`` to stage ``to``; False if it is there already."""
    try:
        target = LifecycleStage(to)
    except ValueError:
        raise TransitionError(f"unknown lifecycle stage {to!r}") from None
    current = LifecycleStage(contact.lifecycle_stage)
    if target == current:
        return False
    backwards = current == LifecycleStage.DISQUALIFIED or (
        target != LifecycleStage.DISQUALIFIED and ORDER.index(target) < ORDER.index(current)
    )
    if target == LifecycleStage.DISQUALIFIED and reason not in DISQUALIFY_REASONS:
        raise TransitionError(
            f"disqualifying needs a reason code, one of {', '.join(DISQUALIFY_REASONS)}"
        )
    if backwards and not reason:
        raise TransitionError(f"moving from {current} back to {target} needs a reason")
    contact.lifecycle_stage = target.value
    because = f": {reason}" if reason else ""
    add_entry(
        session=session,
        contact_id=contact.id,
        channel="system",
        direction=Direction.INTERNAL,
        body=f"Lifecycle {current} -> {target} by {actor}{because}",
        meta={
            "event": "lifecycle",
            "from": current.value,
            "to": target.value,
            "actor": actor,
            "reason": reason,
        },
    )
    note(session, "stage_entered", contact, target.value)
    if target == LifecycleStage.CUSTOMER:
        exit_contacts(session, [contact.id], "customer")
    return True


def promote_on_score(session: Session, contact: Contact, threshold: float, points: float) -> bool:
    """A subscriber or lead whose score (``points`` now) reaches the MQL threshold becomes an
    MQL."""
    if contact.lifecycle_stage not in (LifecycleStage.SUBSCRIBER, LifecycleStage.LEAD):
        return False
    if round(points) < threshold:  # the score people see, so "50" at a threshold of 50 is in
        return False
    return move(
        session,
        contact,
        LifecycleStage.MQL,
        actor="scoring",
        reason=f"score {round(points)} reached {threshold:g}",
    )
