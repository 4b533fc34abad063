"""Pausing holds every enrolled contact where it is; editing a running sequence never sends a
step again, and moves contacts off the steps it removed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select

from crm.models import Sequence, SequenceStatus, SequenceStepRun
from crm.runtime import Runtime
from crm.sequences import set_status, update_sequence
from tests.conftest import run_jobs
from tests.fakes.twilio_api import FakeTwilio
from tests.sequences.support import (
    add_contact,
    enrol_now,
    place,
    received,
    recipients,
    runs,
    send,
    start_sequence,
    steps_sequence,
    wait,
)
from workers.sequence_clock import run_steps

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PHONES = ("+233241110001", "+233241110002")


def three_sends() -> dict:
    return steps_sequence(
        [
            send("first", "First, {{ first_name }}"),
            wait("wait-1", days=1),
            send("second", "Second, {{ first_name }}"),
            wait("wait-2", days=1),
            send("third", "Third, {{ first_name }}"),
        ],
        name="Series",
        exit_on=[],
    )


def change(rt: Runtime, sequence_id: int, to: SequenceStatus) -> int:
    with rt.session() as session:
        return set_status(session, session.get_one(Sequence, sequence_id), to)


def edit(rt: Runtime, sequence_id: int, raw: dict) -> dict[str, int]:
    with rt.session() as session:
        return update_sequence(session, session.get_one(Sequence, sequence_id), raw)


def two_contacts_after_the_first_send(rt: Runtime) -> tuple[int, list[int]]:
    sequence_id = start_sequence(rt, three_sends())
    contacts = [add_contact(rt, f"Contact {i}", phone) for i, phone in enumerate(PHONES)]
    enrol_now(rt, sequence_id, *contacts)
    assert run_steps(rt).queued == 2
    run_jobs(rt)
    return sequence_id, contacts


def bodies(fake: FakeTwilio) -> list[str]:
    return [body for _to, body, _at in received(fake)]


def test_pausing_holds_every_contact_where_it_is_and_resuming_goes_on(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    with time_machine.travel(START, tick=False) as clock:
        sequence_id, contacts = two_contacts_after_the_first_send(runtime)
        before = [place(runtime, sequence_id, c) for c in contacts]
        assert change(runtime, sequence_id, SequenceStatus.PAUSED) == 2
        clock.move_to(START + 3 * DAY)  # long past the due time
        assert run_steps(runtime).claimed == 0
        run_jobs(runtime)
        after = [place(runtime, sequence_id, c) for c in contacts]
        assert [(p.status, p.step_id, p.due_at) for p in after] == [
            ("paused", "second", START + DAY)
        ] * 2
        assert [(p.step_id, p.due_at) for p in before] == [(p.step_id, p.due_at) for p in after]
        assert change(runtime, sequence_id, SequenceStatus.ACTIVE) == 2
        assert run_steps(runtime).queued == 2
        run_jobs(runtime)
    resumed = START + 3 * DAY
    # Sent from several threads at once: in either order.
    assert sorted(m for m in received(fake_twilio) if m[2] == resumed) == [
        (PHONES[0], "Second, Contact", resumed),
        (PHONES[1], "Second, Contact", resumed),
    ]
    assert [place(runtime, sequence_id, c).step_id for c in contacts] == ["third"] * 2


def test_a_message_queued_before_a_pause_is_not_sent_until_resume(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    with time_machine.travel(START, tick=False) as clock:
        sequence_id, contacts = two_contacts_after_the_first_send(runtime)
        clock.move_to(START + DAY)
        assert run_steps(runtime).queued == 2  # "second" is queued: pending recipients
        change(runtime, sequence_id, SequenceStatus.PAUSED)
        run_jobs(runtime)  # the send job finds its campaign paused
        assert bodies(fake_twilio) == ["First, Contact"] * 2
        assert [r["state"] for r in recipients(runtime, contacts[0])] == ["sent", "pending"]
        clock.move_to(START + DAY + timedelta(hours=2))
        change(runtime, sequence_id, SequenceStatus.ACTIVE)
        run_jobs(runtime)
    resumed = START + DAY + timedelta(hours=2)
    assert sorted(received(fake_twilio)[2:]) == [
        (PHONES[0], "Second, Contact", resumed),
        (PHONES[1], "Second, Contact", resumed),
    ]
    assert [r["state"] for r in recipients(runtime, contacts[0])] == ["sent", "sent"]


def test_an_edit_that_reorders_and_renames_around_a_sent_step_never_sends_it_again(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    with time_machine.travel(START, tick=False) as clock:
        sequence_id, contacts = two_contacts_after_the_first_send(runtime)
        edited = steps_sequence(
            [
                wait("a-day", days=1),  # was wait-1
                send("second", "Second, {{ first_name }}"),
                send("first", "First again?! {{ first_name }}"),  # moved after "second"
                wait("two-days", days=2),  # was wait-2
                send("third", "Third, {{ first_name }}"),
            ],
            name="Series",
            exit_on=[],
        )
        assert edit(runtime, sequence_id, edited) == {}  # nobody was on a removed step
        clock.move_to(START + DAY)
        run_steps(runtime)
        run_jobs(runtime)
        clock.move_to(START + 3 * DAY)
        run_steps(runtime)
        run_jobs(runtime)
    assert (
        bodies(fake_twilio)
        == ["First, Contact"] * 2 + ["Second, Contact"] * 2 + ["Third, Contact"] * 2
    )
    assert runs(runtime, contacts[0]) == [
        ("first", "queued"),
        ("wait-1", "until 2026-11-25 10:00 UTC"),
        ("second", "queued"),
        ("first", "not sent: sent before the sequence was edited"),
        ("two-days", "until 2026-11-27 10:00 UTC"),
        ("third", "queued"),
    ]
    with runtime.session() as session:
        assert session.get_one(Sequence, sequence_id).version == 2
        versions = session.scalars(
            select(SequenceStepRun.version)
            .where(SequenceStepRun.contact_id == contacts[0])
            .order_by(SequenceStepRun.id)
        ).all()
    assert versions == [1, 1, 2, 2, 2, 2]  # the runs after the edit ran under version 2


def test_removing_the_step_a_contact_is_on_moves_it_to_the_next_surviving_step(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    with time_machine.travel(START, tick=False) as clock:
        sequence_id, contacts = two_contacts_after_the_first_send(runtime)
        assert place(runtime, sequence_id, contacts[0]).step_id == "second"
        without_second = steps_sequence(
            [
                send("first", "First, {{ first_name }}"),
                wait("wait-1", days=1),
                wait("wait-2", days=1),
                send("third", "Third, {{ first_name }}"),
            ],
            name="Series",
            exit_on=[],
        )
        assert edit(runtime, sequence_id, without_second) == {"second": 2}
        moved = place(runtime, sequence_id, contacts[0])
        assert (moved.step_id, moved.due_at) == ("wait-2", START + DAY)  # its due time kept
        clock.move_to(START + DAY)
        assert run_steps(runtime).queued == 0  # wait-2 runs: nothing is sent
        clock.move_to(START + 2 * DAY)
        assert run_steps(runtime).queued == 2
        run_jobs(runtime)
    assert bodies(fake_twilio) == ["First, Contact"] * 2 + ["Third, Contact"] * 2
    assert [step for step, _ in runs(runtime, contacts[1])] == [
        "first",
        "wait-1",
        "wait-2",
        "third",
    ]
    with runtime.session() as session:
        assert session.get_one(Sequence, sequence_id).version == 2
    assert place(runtime, sequence_id, contacts[1]).status == "completed"
