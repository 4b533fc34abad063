"""Leaving a sequence early: a reply, an opt-out, becoming a customer, a rep taking over; and a
message already queued when the contact leaves is skipped at send time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from flask.testing import FlaskClient
from rq import SimpleWorker

from crm.lifecycle import move
from crm.models import Contact, Handoff, Role
from crm.routing import Trigger, request_handoff
from crm.runtime import Runtime
from crm.sequence_results import enrollment_counts
from tests.conftest import Webhooks, run_jobs, signed_in
from tests.fakes.twilio_api import FakeTwilio
from tests.sequences.support import (
    GHANA,
    add_contact,
    enrol_now,
    place,
    received,
    recipients,
    runs,
    send,
    sequence_entries,
    start_sequence,
    steps_sequence,
    text_in,
    wait,
)
from workers.sequence_clock import run_steps
from workers.worker import relay_once

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday; 12:00 in Accra too


def hello_then_nudge(exit_on: list[str], name: str = "Nudge") -> dict:
    return steps_sequence(
        [
            send("hello", "Hello {{ first_name }}, lamps are in stock."),
            wait("a-day", days=1),
            send("nudge", "Still thinking about it, {{ first_name }}?"),
        ],
        name=name,
        exit_on=exit_on,
    )


def started(rt: Runtime, exit_on: list[str], name: str = "Nudge") -> tuple[int, int]:
    """A sequence whose first message went out at START; (sequence id, contact id)."""
    sequence_id = start_sequence(rt, hello_then_nudge(exit_on, name))
    contact_id = add_contact(rt, "Ama Mensah", GHANA)
    assert enrol_now(rt, sequence_id, contact_id) == [contact_id]
    assert run_steps(rt).queued == 1
    run_jobs(rt)
    return sequence_id, contact_id


def test_a_reply_in_the_middle_of_a_wait_ends_the_sequence_and_the_next_send_never_happens(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    with time_machine.travel(START, tick=False) as clock:
        sequence_id, contact_id = started(runtime, ["reply"])
        assert place(runtime, sequence_id, contact_id).step_id == "nudge"
        clock.shift(timedelta(hours=3))
        text_in(webhooks, GHANA, "When will my lamp be delivered?")
        run_jobs(runtime)  # the model reads the reply; the reply ends the enrolment
        left = place(runtime, sequence_id, contact_id)
        assert (left.status, left.exit_reason, left.due_at) == ("exited", "reply", None)
        assert left.ended_at == START + timedelta(hours=3)

        clock.shift(timedelta(days=1))  # the wait is long over
        assert run_steps(runtime).claimed == 0
        run_jobs(runtime)
    assert [body for _to, body, _at in received(fake_twilio)] == ["Hello Ama, lamps are in stock."]
    assert [step for step, _outcome in runs(runtime, contact_id)] == ["hello", "a-day"]
    with runtime.session() as session:
        counts = enrollment_counts(session, sequence_id)
    assert (counts["exited"], counts["exited_by_reason"]) == (1, {"reply": 1})
    *_, (what, body, at) = sequence_entries(runtime, contact_id)
    assert (what, body, at) == (
        "exited",
        "Left sequence “Nudge”: the contact replied",
        START + timedelta(hours=3),
    )


def test_exit_on_nothing_keeps_a_contact_who_replies(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    with time_machine.travel(START, tick=False) as clock:
        sequence_id, contact_id = started(runtime, [])
        clock.shift(timedelta(hours=3))
        text_in(webhooks, GHANA, "When will my lamp be delivered?")
        run_jobs(runtime)
        assert place(runtime, sequence_id, contact_id).status == "active"
        clock.move_to(START + timedelta(days=1))
        assert run_steps(runtime).queued == 1
        run_jobs(runtime)
    assert received(fake_twilio) == [
        (GHANA, "Hello Ama, lamps are in stock.", START),
        (GHANA, "Still thinking about it, Ama?", START + timedelta(days=1)),
    ]
    assert place(runtime, sequence_id, contact_id).status == "completed"


def test_a_stop_keyword_exits_at_once_even_a_sequence_with_no_exits(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    with time_machine.travel(START, tick=False) as clock:
        sequence_id, contact_id = started(runtime, [])
        clock.shift(timedelta(hours=2))
        text_in(webhooks, GHANA, "STOP")
        # In the webhook's own transaction: no job has run yet.
        left = place(runtime, sequence_id, contact_id)
        assert (left.status, left.exit_reason) == ("exited", "opt_out")
        assert left.ended_at == START + timedelta(hours=2)
        clock.shift(timedelta(days=2))
        run_jobs(runtime)
        assert run_steps(runtime).claimed == 0
        run_jobs(runtime)
    assert [body for _to, body, _at in received(fake_twilio)] == ["Hello Ama, lamps are in stock."]
    assert sequence_entries(runtime, contact_id)[-1][1] == (
        "Left sequence “Nudge”: the contact opted out"
    )


def test_becoming_a_customer_exits_the_sequences_that_stop_for_customers_only(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    with time_machine.travel(START, tick=False):
        stops, contact_id = started(runtime, ["customer"], name="Stops")
        goes_on = start_sequence(runtime, hello_then_nudge(["reply"], name="Goes on"))
        enrol_now(runtime, goes_on, contact_id)
        with runtime.session() as session:
            contact = session.get_one(Contact, contact_id)
            assert move(session, contact, "customer", actor="a won deal")
        left = place(runtime, stops, contact_id)
        assert (left.status, left.exit_reason) == ("exited", "customer")
        assert place(runtime, goes_on, contact_id).status == "active"


def test_a_rep_writing_through_the_api_exits_the_sequences_that_stop_for_a_rep(
    runtime: Runtime, client: FlaskClient, fake_twilio: FakeTwilio
):
    _rep_id, auth = signed_in(runtime, Role.REP, "kofi@example.com", "Kofi")
    with time_machine.travel(START, tick=False) as clock:
        for_rep, contact_id = started(runtime, ["rep"], name="For rep")
        on_reply = start_sequence(runtime, hello_then_nudge(["reply"], name="On reply"))
        enrol_now(runtime, on_reply, contact_id)
        clock.shift(timedelta(hours=1))
        response = client.post(
            "/api/v1/messages",
            json={"contact_id": contact_id, "channel": "sms", "body": "Hi Ama, Kofi here."},
            headers=auth,
        )
        assert response.status_code == 202, response.get_json()
        left = place(runtime, for_rep, contact_id)
        assert (left.status, left.exit_reason) == ("exited", "rep")
        assert left.ended_at == START + timedelta(hours=1)
        assert place(runtime, on_reply, contact_id).status == "active"  # a rep is no reply
    assert sequence_entries(runtime, contact_id)[-1][1] == (
        "Left sequence “For rep”: a rep took the conversation over"
    )


def test_a_rep_accepting_a_handoff_exits_the_sequences_that_stop_for_a_rep(
    runtime: Runtime, client: FlaskClient, fake_twilio: FakeTwilio
):
    rep_id, auth = signed_in(runtime, Role.REP, "kofi@example.com", "Kofi")
    with time_machine.travel(START, tick=False):
        sequence_id, contact_id = started(runtime, ["rep"])
        with runtime.session() as session:
            request_handoff(session, contact_id, Trigger("human_request", "Asked for a person"))
        run_jobs(runtime)  # routed to the only rep
        assert place(runtime, sequence_id, contact_id).status == "active"  # not yet accepted
        with runtime.session() as session:
            handoff = session.query(Handoff).filter_by(contact_id=contact_id).one()
            assert handoff.rep_id == rep_id
        response = client.post(f"/api/v1/handoffs/{handoff.id}/accept", headers=auth)
        assert response.status_code == 200, response.get_json()
        left = place(runtime, sequence_id, contact_id)
        assert (left.status, left.exit_reason) == ("exited", "rep")


def test_a_message_queued_when_the_contact_replies_is_skipped_at_send_time_with_the_reason(
    runtime: Runtime, webhooks: Webhooks, fake_twilio: FakeTwilio
):
    with time_machine.travel(START, tick=False) as clock:
        sequence_id = start_sequence(runtime, hello_then_nudge(["reply"]))
        contact_id = add_contact(runtime, "Ama Mensah", GHANA)
        enrol_now(runtime, sequence_id, contact_id)
        assert run_steps(runtime).queued == 1  # a pending recipient and its send job
        assert [r["state"] for r in recipients(runtime, contact_id)] == ["pending"]
        clock.shift(timedelta(minutes=5))
        text_in(webhooks, GHANA, "When will my lamp be delivered?")
        # The reply is read before the send job runs (the enrichment queue alone first).
        relay_once(runtime)
        SimpleWorker(["enrichment"], connection=runtime.redis).work(burst=True)
        assert place(runtime, sequence_id, contact_id).exit_reason == "reply"
        run_jobs(runtime)  # now the send job
    assert received(fake_twilio) == []
    [recipient] = recipients(runtime, contact_id)
    assert (recipient["state"], recipient["action"]) == (
        "skipped",
        "left the sequence: reply",
    )
