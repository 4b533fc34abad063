"""First end-to-end check of the sequence engine (price follow-up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
import yaml
from sqlalchemy import select

from crm.models import Contact, Identity, SequenceEnrollment, SequenceStepRun
from crm.sequence_triggers import note
from crm.sequences import create_sequence
from tests.conftest import run_jobs
from workers.sequence_clock import run_steps

SHIPPED = Path(__file__).resolve().parents[2] / "crm" / "config" / "sequences"


def test_price_follow_up_sends_tomorrow_morning(runtime, fake_twilio):
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        raw = yaml.safe_load((SHIPPED / "price_follow_up.yaml").read_text())
        with runtime.session() as session:
            sequence = create_sequence(session, raw, None, activate=True)
            contact = Contact(name="Ama Mensah", lifecycle_stage="lead", attributes={})
            session.add(contact)
            session.flush()
            session.add(Identity(contact_id=contact.id, kind="phone", value="+233241234567"))
            note(session, "intent", contact, "pricing")
        with runtime.session() as session:
            enrollment = session.scalars(select(SequenceEnrollment)).one()
            assert enrollment.step_id == "next-morning"
        run_steps(runtime)
        with runtime.session() as session:
            enrollment = session.scalars(select(SequenceEnrollment)).one()
            assert enrollment.step_id == "follow-up"
            assert enrollment.due_at == datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
        clock.move_to(datetime(2026, 11, 25, 9, 31, tzinfo=UTC))
        result = run_steps(runtime)
        assert result.queued == 1
        run_jobs(runtime)
        sent = fake_twilio.accepted_messages()
        assert [m["to"] for m in sent] == ["+233241234567"]
        assert "Ama" in str(sent[0]["body"])
        with runtime.session() as session:
            runs = session.scalars(select(SequenceStepRun).order_by(SequenceStepRun.id)).all()
            assert [(r.step_id, r.outcome[:6]) for r in runs] == [
                ("next-morning", "until "),
                ("follow-up", "queued"),
                ("three-days", "until "),
            ]
        assert sequence.id
        clock.shift(timedelta(days=4))
