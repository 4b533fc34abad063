"""The rules every marketing message obeys, sequences included: the frequency cap across
campaigns and sequences (a message over it waits, never drops), and quiet hours in the
contact's own zone."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from crm.campaign_launch import launch
from crm.campaign_send import claim_batch
from crm.campaigns import create_campaign
from crm.models import Campaign, Role, Segment, User
from crm.runtime import Runtime, build_runtime
from crm.users import create_user
from tests.conftest import run_jobs
from tests.fakes.twilio_api import FakeTwilio
from tests.sequences.support import (
    GHANA,
    KENYA,
    add_contact,
    enrol_now,
    place,
    received,
    recipients,
    release_scheduled,
    runs,
    send,
    sequence_entries,
    start_sequence,
    steps_sequence,
    wait,
)
from workers.sequence_clock import run_steps

NINE = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 09:00 in Accra
FLASH = "Flash sale: lamps 20% off today"


def broadcast(rt: Runtime) -> int:
    """Launch a broadcast to everyone in Ghana (no quiet hours); its id."""
    with rt.session() as session:
        user = session.scalar(select(User).where(User.email == "mk@example.com"))
        if user is None:
            user = create_user(
                session=session, email="mk@example.com", role=Role.MARKETER, password="x" * 12
            )
        segment = Segment(name="Ghana", filters={"countries": ["GH"]})
        session.add(segment)
        session.flush()
        campaign = create_campaign(
            session,
            {
                "name": "Flash sale",
                "channel": "sms",
                "segment_id": segment.id,
                "body": FLASH,
                "quiet_start": None,
                "quiet_end": None,
            },
            user,
        )
        launch(session, campaign)
        return campaign.id


def one_two() -> dict:
    return steps_sequence(
        [
            send("one", "One: hello {{ first_name }}"),
            wait("an-hour", hours=1),
            send("two", "Two: still there, {{ first_name }}?"),
        ],
        name="Cap",
        exit_on=[],
    )


def test_a_step_over_the_cap_waits_until_the_oldest_message_leaves_the_window(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    with time_machine.travel(NINE, tick=False) as clock:
        contact_id = add_contact(runtime, "Ama Mensah", GHANA)
        broadcast(runtime)
        run_jobs(runtime)  # the broadcast: one marketing message at 09:00
        clock.move_to(NINE + timedelta(hours=1))
        sequence_id = start_sequence(runtime, one_two())
        enrol_now(runtime, sequence_id, contact_id)
        assert run_steps(runtime).queued == 1  # the second marketing message: allowed
        run_jobs(runtime)
        clock.move_to(NINE + timedelta(hours=2))
        result = run_steps(runtime)
        assert (result.held, result.queued) == (1, 0)  # a third in 24 h: it waits
        run_jobs(runtime)
        frees = NINE + timedelta(days=1)  # when the 09:00 broadcast leaves the window
        held = place(runtime, sequence_id, contact_id)
        assert (held.status, held.step_id, held.due_at) == ("active", "two", frees)
        clock.move_to(frees - timedelta(minutes=1))
        assert run_steps(runtime).claimed == 0
        clock.move_to(frees)
        assert run_steps(runtime).queued == 1
        run_jobs(runtime)
    assert received(fake_twilio) == [
        (GHANA, FLASH, NINE),
        (GHANA, "One: hello Ama", NINE + timedelta(hours=1)),
        (GHANA, "Two: still there, Ama?", frees),
    ]
    assert [step for step, _ in runs(runtime, contact_id)] == ["one", "an-hour", "two"]
    held_entries = [e for e in sequence_entries(runtime, contact_id) if e[0] == "held"]
    assert held_entries == [
        (
            "held",
            "Sequence “Cap”, step two waits for the frequency cap (2 a day): "
            "until 2026-11-25 09:00 UTC",
            NINE + timedelta(hours=2),
        )
    ]


def test_a_broadcast_message_over_the_cap_waits_and_goes_when_the_window_frees(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    with time_machine.travel(NINE + timedelta(hours=1), tick=False) as clock:
        contact_id = add_contact(runtime, "Ama Mensah", GHANA)
        sequence_id = start_sequence(runtime, one_two())
        enrol_now(runtime, sequence_id, contact_id)
        run_steps(runtime)
        run_jobs(runtime)  # 10:00
        clock.move_to(NINE + timedelta(hours=2))
        run_steps(runtime)
        run_jobs(runtime)  # 11:00: two sequence messages in the window
        clock.move_to(NINE + timedelta(hours=3))
        broadcast(runtime)
        run_jobs(runtime)
        frees = NINE + timedelta(days=1, hours=1)  # the 10:00 message leaves the window
        *_, waiting = recipients(runtime, contact_id)
        assert (waiting["body"], waiting["state"], waiting["not_before"]) == (
            FLASH,
            "pending",
            frees,
        )
        assert len(received(fake_twilio)) == 2
        clock.move_to(frees - timedelta(minutes=1))
        assert release_scheduled(runtime) == 0  # the send job comes back when it frees
        clock.move_to(frees)
        assert release_scheduled(runtime) == 1
        run_jobs(runtime)
    assert received(fake_twilio) == [
        (GHANA, "One: hello Ama", NINE + timedelta(hours=1)),
        (GHANA, "Two: still there, Ama?", NINE + timedelta(hours=2)),
        (GHANA, FLASH, frees),
    ]
    assert place(runtime, sequence_id, contact_id).status == "completed"


@pytest.fixture
def uncapped(runtime: Runtime) -> Iterator[Runtime]:
    """The same database, Redis and fake provider, with MARKETING_CAP=0."""
    rt = build_runtime(dataclasses.replace(runtime.settings, marketing_cap_messages=0))
    yield rt
    rt.close()


def test_marketing_cap_zero_lets_every_sequence_step_go(uncapped: Runtime, fake_twilio: FakeTwilio):
    assert not uncapped.settings.frequency_cap.on
    definition = steps_sequence(
        [
            send("one", "One"),
            wait("w1", hours=1),
            send("two", "Two"),
            wait("w2", hours=1),
            send("three", "Three"),
        ],
        name="Uncapped",
        exit_on=[],
    )
    with time_machine.travel(NINE, tick=False) as clock:
        contact_id = add_contact(uncapped, "Ama Mensah", GHANA)
        enrol_now(uncapped, start_sequence(uncapped, definition), contact_id)
        for hour in range(3):
            clock.move_to(NINE + timedelta(hours=hour))
            assert run_steps(uncapped).held == 0
            run_jobs(uncapped)
    assert received(fake_twilio) == [
        (GHANA, body, NINE + timedelta(hours=hour))
        for hour, body in enumerate(("One", "Two", "Three"))
    ]


def test_marketing_cap_zero_lets_every_broadcast_go(uncapped: Runtime, fake_twilio: FakeTwilio):
    with time_machine.travel(NINE, tick=False) as clock:
        add_contact(uncapped, "Ama Mensah", GHANA)
        for hour in range(3):
            clock.move_to(NINE + timedelta(hours=hour))
            broadcast(uncapped)
            run_jobs(uncapped)
    assert [at for _to, _body, at in received(fake_twilio)] == [
        NINE + timedelta(hours=hour) for hour in range(3)
    ]


def test_a_step_due_at_ten_at_night_local_waits_until_eight_in_the_morning(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    evening = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # 21:00 in Nairobi (UTC+3)
    ten_pm = evening + timedelta(hours=1)  # 22:00 in Nairobi
    eight_am = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 08:00 in Nairobi
    definition = steps_sequence(
        [wait("an-hour", hours=1), send("offer", "Good morning {{ first_name }}!")],
        name="Quiet",
        quiet_hours={"start": "20:00", "end": "08:00"},
    )
    with time_machine.travel(evening, tick=False) as clock:
        contact_id = add_contact(runtime, "Wanjiru Kamau", KENYA)
        sequence_id = start_sequence(runtime, definition)
        enrol_now(runtime, sequence_id, contact_id)
        run_steps(runtime)
        assert place(runtime, sequence_id, contact_id).due_at == ten_pm
        clock.move_to(ten_pm)
        result = run_steps(runtime)
        assert (result.held, result.queued) == (1, 0)
        run_jobs(runtime)
        held = place(runtime, sequence_id, contact_id)
        assert (held.step_id, held.due_at) == ("offer", eight_am)
        clock.move_to(eight_am - timedelta(minutes=1))
        assert run_steps(runtime).claimed == 0
        clock.move_to(eight_am)
        assert run_steps(runtime).queued == 1
        run_jobs(runtime)
    assert received(fake_twilio) == [(KENYA, "Good morning Wanjiru!", eight_am)]
    assert any(
        what == "held" and "waits for the quiet hours: until 2026-11-25 05:00 UTC" in body
        for what, body, _at in sequence_entries(runtime, contact_id)
    )


def test_without_quiet_hours_the_same_step_goes_at_ten_at_night(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    evening = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    definition = steps_sequence(
        [wait("an-hour", hours=1), send("offer", "Good evening {{ first_name }}!")],
        name="Loud",
        quiet_hours=None,
    )
    with time_machine.travel(evening, tick=False) as clock:
        contact_id = add_contact(runtime, "Wanjiru Kamau", KENYA)
        enrol_now(runtime, start_sequence(runtime, definition), contact_id)
        run_steps(runtime)
        clock.move_to(evening + timedelta(hours=1))
        assert run_steps(runtime).queued == 1
        run_jobs(runtime)
    assert received(fake_twilio) == [(KENYA, "Good evening Wanjiru!", evening + timedelta(hours=1))]


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
    reason="SQLite runs one writer at a time: two send jobs cannot claim at once",
)
def test_two_send_jobs_claiming_at_once_keep_to_the_cap(runtime: Runtime) -> None:
    """Two campaigns' send jobs claim for the same contact at the same moment: the second
    claim must see the first (or wait for it), so only one of the two messages goes now."""
    with time_machine.travel(NINE, tick=False) as clock:
        add_contact(runtime, "Ama Mensah", GHANA)
        broadcast(runtime)
        run_jobs(runtime)  # one marketing message at 09:00
        clock.move_to(NINE + timedelta(hours=1))
        first, second = broadcast(runtime), broadcast(runtime)  # not sent yet
        claimed: list[object] = []
        first_claimed, second_done = threading.Event(), threading.Event()

        def claim(session: Session, campaign_id: int) -> None:
            campaign = session.get_one(Campaign, campaign_id)
            batch, _taken = claim_batch(
                session, campaign, 0, 10**9, clock_now(), 10, cap=runtime.settings.frequency_cap
            )
            claimed.extend(batch)

        def second_job() -> None:
            first_claimed.wait(timeout=30)
            with runtime.session() as session:
                claim(session, second)
            second_done.set()

        other = threading.Thread(target=second_job)
        other.start()
        with runtime.session() as session:
            claim(session, first)
            first_claimed.set()
            # The first claim stays open until the second has claimed too, or waits for it.
            deadline = time.perf_counter() + 30
            while not (second_done.wait(0.05) or waiting_for_a_lock(runtime)):
                assert time.perf_counter() < deadline, "the second claim neither ran nor waited"
        other.join(timeout=30)
    assert len(claimed) == 1  # the third message in 24 h waits


def clock_now() -> datetime:
    return datetime.now(UTC)


def waiting_for_a_lock(rt: Runtime) -> bool:
    """Whether a session of this database waits for a row lock (PostgreSQL)."""
    with rt.engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )
