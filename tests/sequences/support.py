"""Shared helpers for the sequence tests: contacts, sequences, enrolments, and what the fake
Twilio received, read back as plain values (nothing here stands in for the engine)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import yaml
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.utils import current_timestamp
from sqlalchemy import select

from crm import outbox
from crm.models import (
    CampaignRecipient,
    Contact,
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
from tests.fakes.twilio_api import FakeTwilio

SHIPPED = Path(__file__).resolve().parents[2] / "crm" / "config" / "sequences"
GHANA = "+233241234567"  # Africa/Accra: local time is UTC
KENYA = "+254712345678"  # Africa/Nairobi: UTC+3


def shipped(name: str) -> dict[str, Any]:
    """A shipped sequence definition (crm/config/sequences/<name>.yaml)."""
    return yaml.safe_load((SHIPPED / f"{name}.yaml").read_text(encoding="utf-8"))


def steps_sequence(
    steps: list[dict[str, Any]],
    *,
    name: str = "Nudge",
    exit_on: list[str] | None = None,
    quiet_hours: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A definition enrolled by hand (its trigger, a tag, is never fired in these tests)."""
    return {
        "name": name,
        "trigger": {"type": "tag_added", "tag": f"{name.lower()}-trigger"},
        "exit_on": ["reply"] if exit_on is None else exit_on,
        "quiet_hours": quiet_hours,
        "steps": steps,
    }


def send(step_id: str, body: str) -> dict[str, Any]:
    return {"id": step_id, "send": {"channel": "sms", "body": body}}


def wait(step_id: str, **spec: Any) -> dict[str, Any]:
    return {"id": step_id, "wait": spec}


def start_sequence(rt: Runtime, raw: dict[str, Any]) -> int:
    """Save and activate a sequence; its id."""
    with rt.session() as session:
        return create_sequence(session, raw, None, activate=True).id


def add_contact(
    rt: Runtime,
    name: str,
    phone: str,
    stage: str = "lead",
    attributes: dict[str, Any] | None = None,
) -> int:
    with rt.session() as session:
        contact = Contact(name=name, lifecycle_stage=stage, attributes=attributes or {})
        session.add(contact)
        session.flush()
        session.add(Identity(contact_id=contact.id, kind="phone", value=phone))
        return contact.id


def enrol_now(rt: Runtime, sequence_id: int, *contact_ids: int) -> list[int]:
    """Enrol contacts by hand (crm.sequence_enrol.enrol); those enrolled."""
    with rt.session() as session:
        sequence = session.get_one(Sequence, sequence_id)
        return enrol(session, sequence, list(contact_ids), trigger="test")


def text_in(webhooks: Webhooks, phone: str, body: str) -> None:
    """An inbound SMS from ``phone`` through the signed Twilio webhook."""
    response = webhooks.message(Body=body, From=phone, MessageSid="SM" + uuid.uuid4().hex)
    assert response.status_code == 200, response.data


@dataclass(frozen=True)
class Place:
    """Where one enrolment is."""

    status: str
    step_id: str | None
    due_at: datetime | None
    exit_reason: str | None
    ended_at: datetime | None


def place(rt: Runtime, sequence_id: int, contact_id: int) -> Place:
    """The contact's latest enrolment in the sequence."""
    with rt.session() as session:
        row = session.scalars(
            select(SequenceEnrollment)
            .where(
                SequenceEnrollment.sequence_id == sequence_id,
                SequenceEnrollment.contact_id == contact_id,
            )
            .order_by(SequenceEnrollment.id.desc())
        ).first()
        assert row is not None, f"contact {contact_id} is not enrolled in {sequence_id}"
        return Place(row.status, row.step_id, row.due_at, row.exit_reason, row.ended_at)


def runs(rt: Runtime, contact_id: int) -> list[tuple[str, str]]:
    """(step id, outcome) of each step the contact's enrolments ran, in order."""
    with rt.session() as session:
        return [
            (step_id, outcome)
            for step_id, outcome in session.execute(
                select(SequenceStepRun.step_id, SequenceStepRun.outcome)
                .where(SequenceStepRun.contact_id == contact_id)
                .order_by(SequenceStepRun.id)
            )
        ]


def received(fake: FakeTwilio, phone: str | None = None) -> list[tuple[str, str, datetime]]:
    """(to, body, when) of each message the fake Twilio accepted, oldest first."""
    return [
        (str(m["to"]), str(m["body"]), parsedate_to_datetime(str(m["date_created"])))
        for m in fake.accepted_messages()
        if phone is None or m["to"] == phone
    ]


def sequence_entries(rt: Runtime, contact_id: int) -> list[tuple[str, str, datetime]]:
    """The contact's sequence timeline entries: (what, body, when), in order."""
    with rt.session() as session:
        rows = session.execute(
            select(Interaction.meta, Interaction.body, Interaction.created_at)
            .where(Interaction.contact_id == contact_id, Interaction.channel == "system")
            .order_by(Interaction.id)
        ).all()
    return [
        (meta["what"], body, at.astimezone(UTC))
        for meta, body, at in rows
        if (meta or {}).get("event") == "sequence"
    ]


def recipients(rt: Runtime, contact_id: int) -> list[dict[str, Any]]:
    """The contact's campaign recipient rows (broadcasts' and sequence steps'), in order."""
    with rt.session() as session:
        rows = session.scalars(
            select(CampaignRecipient)
            .where(CampaignRecipient.contact_id == contact_id)
            .order_by(CampaignRecipient.id)
        ).all()
        return [
            {
                "campaign_id": r.campaign_id,
                "state": r.state,
                "action": r.action,
                "not_before": r.not_before,
                "sent_at": r.sent_at,
                "body": r.body,
            }
            for r in rows
        ]


def release_scheduled(rt: Runtime) -> int:
    """What RQ's scheduler does when its time comes: jobs scheduled for now or earlier (by
    the simulated clock) move to their queues. How many."""
    moved = 0
    for name in outbox.QUEUES:
        queue = Queue(name, connection=rt.redis)
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_jobs_to_schedule(current_timestamp()):
            job = queue.fetch_job(job_id)
            registry.remove(job_id)
            if job is not None:
                queue.enqueue_job(job)
                moved += 1
    return moved
