"""A handoff's life after routing: the SLA clock, escalation, accept or reject, first touch.

The SLA check is an RQ job scheduled for the handoff's ``due_at`` (through the outbox, so a
lost Redis loses no deadline). When it finds the lead untouched it escalates: the handoff is
marked ``escalated`` and the lead goes to the next available rep as a new handoff, or, with
nobody available, to the admins' attention on the timeline. A rep's first message to the
contact is the first touch: speed-to-lead is stored on the handoff.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Contact, Handoff, HandoffStatus, User
from crm.models.base import utcnow
from crm.models.handoffs import ACTIVE
from crm.notifications import notify_admins
from crm.routing import Trigger, hand_off, note_handoff, pick_rep
from crm.sequence_exits import exit_contacts

REJECT_REASONS = ("not_my_area", "too_busy", "duplicate", "not_a_lead", "wrong_language")


class HandoffError(ValueError):
    """Not allowed in the handoff's state."""


class InvalidReason(ValueError):
    """Not a rejection reason code (answered with 422)."""


class NotYourHandoff(HandoffError):
    """A rep may act only on handoffs assigned to them (admins on any)."""


def _note(session: Session, handoff: Handoff, body: str, **meta: object) -> None:
    note_handoff(session, handoff.contact_id, handoff.id, body, **meta)


def _reassign(
    session: Session, handoff: Handoff, reason: str, summary: str, now: datetime
) -> Handoff | None:
    contact = session.get_one(Contact, handoff.contact_id)
    if contact.owner_id == handoff.rep_id:
        contact.owner_id = None  # the owner did not take it: route past them
    session.flush()
    return hand_off(
        session,
        contact,
        Trigger(reason, summary, handoff.source_interaction_id),
        now=now,
        exclude=(handoff.rep_id,) if handoff.rep_id else (),
    )


def check_sla(session: Session, handoff_id: int, now: datetime | None = None) -> str:
    """Escalate the handoff if its deadline passed untouched. Returns what happened."""
    now = now or utcnow()
    handoff = session.get(Handoff, handoff_id)
    if handoff is None or handoff.status not in ACTIVE or handoff.first_touch_at is not None:
        return "settled"
    if now < handoff.due_at:
        return "not_due"
    handoff.status = HandoffStatus.ESCALATED.value
    rep = session.get(User, handoff.rep_id) if handoff.rep_id else None
    who = rep.name or rep.email if rep else "nobody"
    contact = session.get_one(Contact, handoff.contact_id)
    exclude = (handoff.rep_id,) if handoff.rep_id else ()
    successor = None
    if pick_rep(session, contact, now, exclude) is not None:
        summary = f"escalated: {who} did not touch the lead in time ({handoff.summary})"
        successor = _reassign(session, handoff, "escalation", summary, now)
    if successor is None:
        # Nobody can take it now: the admins own the problem (once, not every SLA period).
        notify_admins(
            session,
            "escalation",
            f"SLA missed on lead {contact.name or '#' + str(contact.id)} ({handoff.reason}) "
            f"by {who} and no rep is available: {handoff.summary}",
            contact_id=contact.id,
            handoff_id=handoff.id,
        )
        _note(
            session,
            handoff,
            f"SLA missed by {who}; no rep available, admins alerted",
            escalation="admins",
            rep_id=handoff.rep_id,
        )
        return "escalated_to_admins"
    _note(
        session,
        handoff,
        f"SLA missed by {who}; lead reassigned",
        escalation="reassigned",
        rep_id=handoff.rep_id,
        successor_id=successor.id,
    )
    return "reassigned"


def _mine(session: Session, handoff_id: int, user: User) -> Handoff:
    handoff = session.get(Handoff, handoff_id)
    if handoff is None or (user.role != "admin" and handoff.rep_id != user.id):
        raise NotYourHandoff(f"no handoff {handoff_id} assigned to you")
    return handoff


def accept(session: Session, handoff_id: int, user: User) -> Handoff:
    handoff = _mine(session, handoff_id, user)
    if handoff.status != HandoffStatus.OPEN:
        raise HandoffError(f"handoff {handoff_id} is {handoff.status}, not open")
    handoff.status = HandoffStatus.ACCEPTED.value
    exit_contacts(session, [handoff.contact_id], "rep")
    _note(session, handoff, f"Handoff accepted by {user.name or user.email}", accepted_by=user.id)
    return handoff


def reject(session: Session, handoff_id: int, user: User, reason: str) -> Handoff | None:
    """Reject with a reason code; the lead goes to the next rep. The successor, if any."""
    handoff = _mine(session, handoff_id, user)
    if reason not in REJECT_REASONS:
        raise InvalidReason(f"reason must be one of {', '.join(REJECT_REASONS)}")
    if handoff.status not in ACTIVE:
        raise HandoffError(f"handoff {handoff_id} is {handoff.status}")
    handoff.status = HandoffStatus.REJECTED.value
    handoff.reject_reason = reason
    _note(
        session,
        handoff,
        f"Handoff rejected by {user.name or user.email}: {reason}",
        rejected_by=user.id,
        reason=reason,
    )
    return _reassign(session, handoff, handoff.reason, handoff.summary, utcnow())


def record_first_touch(
    session: Session, contact_id: int, user_id: int, now: datetime | None = None
) -> Handoff | None:
    """A rep wrote to the contact: the active handoff is done; speed-to-lead is stored."""
    now = now or utcnow()
    handoff = session.scalar(
        select(Handoff).where(Handoff.contact_id == contact_id, Handoff.status.in_(ACTIVE))
    )
    if handoff is None:
        return None
    handoff.first_touch_at = now
    # Never negative, even if the clocks of two workers disagree.
    handoff.speed_to_lead_s = max(0, int((now - handoff.created_at).total_seconds()))
    handoff.status = HandoffStatus.DONE.value
    _note(session, handoff, f"First touch after {handoff.speed_to_lead_s} s", touched_by=user_id)
    return handoff
