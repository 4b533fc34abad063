"""Sequences: triggered multi-step automations, their enrolments and the steps each one ran.

The definition (trigger, audience, steps) is data, checked by ``crm.sequence_definition`` and
stored as it was saved; ``trigger_type`` and the ``exit_on_*`` flags are copied out of it so the
services that fire triggers and exits find the sequences concerned with one indexed query.

An enrolment points at the step it runs next and when (``step_id``, ``due_at``): the worker
claims due enrolments by one index range (``ix_sequence_enrollments_due``), never by scanning
contacts. Each step run is a row, unique per (enrolment, run number), written in the same
transaction as the enrolment's move: a step can never run twice for the same contact.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigID, JSONType, UTCDateTime, utcnow


class SequenceStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"  # triggers enrol, due steps run
    PAUSED = "paused"  # every enrolment holds where it is; triggers do not enrol
    ARCHIVED = "archived"  # stopped for good: enrolments exited


class EnrollmentStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # its sequence is paused
    COMPLETED = "completed"  # ran to the end (or an exit step)
    EXITED = "exited"  # left early: exit_reason says why


class Sequence(Base):
    __tablename__ = "sequences"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=SequenceStatus.DRAFT.value)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped by every edit
    trigger_type: Mapped[str] = mapped_column(String(20))
    exit_on_reply: Mapped[bool] = mapped_column(Boolean, default=True)
    exit_on_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    exit_on_rep: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# Triggers: the active sequences listening for one kind of event.
Index("ix_sequences_status_trigger", Sequence.status, Sequence.trigger_type)

_LIVE = "status IN ('active', 'paused')"


class SequenceEnrollment(Base):
    __tablename__ = "sequence_enrollments"
    __table_args__ = (
        # A contact is in a sequence at most once at a time.
        Index(
            "uq_sequence_enrollments_live",
            "sequence_id",
            "contact_id",
            unique=True,
            postgresql_where=text(_LIVE),
            sqlite_where=text(_LIVE),
        ),
        # The worker's claim: due enrolments, oldest first; paused and ended ones are not in it.
        Index(
            "ix_sequence_enrollments_due",
            "due_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        # Exits (a reply, an opt-out...) find a contact's enrolments; re-entry its last one.
        Index("ix_sequence_enrollments_contact", "contact_id", "sequence_id"),
        # Results and pausing: one sequence's enrolments by status.
        Index("ix_sequence_enrollments_sequence", "sequence_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default=EnrollmentStatus.ACTIVE.value)
    step_id: Mapped[str | None] = mapped_column(String(40))  # the next step to run
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when it runs
    version: Mapped[int] = mapped_column(Integer, default=1)  # of the definition last run
    steps_run: Mapped[int] = mapped_column(Integer, default=0)
    trigger: Mapped[str] = mapped_column(String(200), default="")  # what enrolled the contact
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exit_reason: Mapped[str | None] = mapped_column(String(20))


class SequenceStepRun(Base):
    """One step run for one enrolment; ``run_no`` counts the enrolment's runs, so the unique
    key makes a second run of the same move impossible, loops (which pass a wait) included. A
    send's message is the campaign recipient whose ``round`` is this run's id."""

    __tablename__ = "sequence_step_runs"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "run_no"),
        Index("ix_sequence_step_runs_step", "sequence_id", "step_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(
        ForeignKey("sequence_enrollments.id", ondelete="CASCADE")
    )
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigInteger)
    run_no: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(120))
    # The definition's version it ran under: an edit never sends a step sent before it.
    version: Mapped[int] = mapped_column(Integer, default=1)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
