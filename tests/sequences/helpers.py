"""Shared set-up and look-ups for the trigger, step and bulk tests of the sequence engine.

Contacts and sequences are made through the real services (``crm.sequences``); what the engine
did is read back from its own tables: enrolments, step runs, and the timeline entries it wrote
(system interactions whose ``meta.event`` is ``sequence``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from crm.models import (
    Contact,
    ContactTag,
    Identity,
    Interaction,
    Sequence,
    SequenceEnrollment,
    SequenceStepRun,
)
from crm.runtime import Runtime
from crm.sequence_enrol import enrol
from crm.sequences import create_sequence
from tests.conftest import Webhooks

# A Tuesday, mid-morning in Accra (UTC+0) and early afternoon in Nairobi (UTC+3): outside the
# default quiet hours (20:00-08:00 local) everywhere the tests send.
T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
GHANA = "+233241234567"
KENYA = "+254712345678"


def definition(
    trigger: dict[str, Any], steps: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """A sequence definition (JSON) with a name, ``trigger`` and ``steps``."""
    return {"name": "Test sequence", "trigger": trigger, "steps": steps, **extra}


def new_sequence(rt: Runtime, raw: dict[str, Any], *, activate: bool = True) -> int:
    with rt.session() as session:
        return create_sequence(session, raw, None, activate=activate).id


def new_contact(
    rt: Runtime,
    phone: str | None = GHANA,
    *,
    name: str | None = "Ama Mensah",
    stage: str = "lead",
    tags: tuple[str, ...] = (),
    attributes: dict[str, Any] | None = None,
    **fields: Any,
) -> int:
    """A contact written directly (tags too), so that making it fires no trigger."""
    with rt.session() as session:
        contact = Contact(name=name, lifecycle_stage=stage, attributes=attributes or {}, **fields)
        contact.tags = [ContactTag(tag=tag) for tag in tags]
        session.add(contact)
        session.flush()
        if phone:
            session.add(Identity(contact_id=contact.id, kind="phone", value=phone))
        return contact.id


def contact(rt: Runtime, contact_id: int) -> Contact:
    with rt.session() as session:
        found = session.get_one(Contact, contact_id)
        _ = found.tag_names  # loaded before the session closes
        return found


def enrolments(rt: Runtime, sequence_id: int) -> list[SequenceEnrollment]:
    with rt.session() as session:
        return list(
            session.scalars(
                select(SequenceEnrollment)
                .where(SequenceEnrollment.sequence_id == sequence_id)
                .order_by(SequenceEnrollment.id)
            )
        )


def enrolled_ids(rt: Runtime, sequence_id: int) -> list[int]:
    """The contacts enrolled in the sequence (once per enrolment), sorted."""
    return sorted(e.contact_id for e in enrolments(rt, sequence_id))


def the_enrolment(rt: Runtime, sequence_id: int) -> SequenceEnrollment:
    [enrolment] = enrolments(rt, sequence_id)
    return enrolment


def runs(rt: Runtime, sequence_id: int, contact_id: int | None = None) -> list[tuple[str, str]]:
    """(step id, outcome) of each step run, in order."""
    query = select(SequenceStepRun).where(SequenceStepRun.sequence_id == sequence_id)
    if contact_id is not None:
        query = query.where(SequenceStepRun.contact_id == contact_id)
    with rt.session() as session:
        return [(r.step_id, r.outcome) for r in session.scalars(query.order_by(SequenceStepRun.id))]


def timeline(rt: Runtime, contact_id: int) -> list[Interaction]:
    """The sequence engine's timeline entries for one contact, oldest first."""
    with rt.session() as session:
        rows = session.scalars(
            select(Interaction)
            .where(Interaction.contact_id == contact_id, Interaction.channel == "system")
            .order_by(Interaction.id)
        )
        return [row for row in rows if (row.meta or {}).get("event") == "sequence"]


def timeline_kinds(rt: Runtime, contact_id: int) -> list[str]:
    """``what`` of each sequence entry (enrolled, step, held, exited), with the step id."""
    return [
        f"{e.meta['what']}:{e.meta['step_id']}" if "step_id" in e.meta else e.meta["what"]
        for e in timeline(rt, contact_id)
    ]


def enrol_now(rt: Runtime, sequence_id: int, contact_ids: list[int]) -> list[int]:
    """Enrol contacts by hand (``crm.sequence_enrol.enrol``); those enrolled."""
    with rt.session() as session:
        sequence = session.get_one(Sequence, sequence_id)
        return enrol(session, sequence, contact_ids, trigger="by hand")


def text_in(webhooks: Webhooks, body: str, sender: str, *, whatsapp: bool = False) -> None:
    """An inbound SMS (or WhatsApp message) through the signed Twilio webhook."""
    if whatsapp:
        response = webhooks.message(
            "twilio/whatsapp__inbound.txt",
            Body=body,
            From=f"whatsapp:{sender}",
            WaId=sender.lstrip("+"),
            MessageSid="SM" + uuid.uuid4().hex,
        )
    else:
        response = webhooks.message(Body=body, From=sender, MessageSid="SM" + uuid.uuid4().hex)
    assert response.status_code == 200, response.get_data(as_text=True)
