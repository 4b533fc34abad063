"""10,000 contacts enrolled at once: each enrolled exactly once, each first step run once, and
each contact sent exactly one message through the real campaign send job and the twilio SDK."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from sqlalchemy import func, insert, select

from crm.models import (
    CampaignRecipient,
    Contact,
    Identity,
    Interaction,
    Sequence,
    SequenceEnrollment,
    SequenceStepRun,
)
from crm.runtime import Runtime, build_runtime
from crm.sequence_enrol import enrol_everyone
from crm.settings import Settings
from tests.conftest import run_jobs
from tests.fakes.twilio_api import FakeTwilio
from tests.sequences.helpers import definition, new_sequence
from workers.sequence_clock import run_steps

COUNT = 10_000
SENDER = "+15005550006"  # the test settings' Twilio number: a long code, 1 message/s by default
T = TypeVar("T")
PHONES = [f"+2332{40_000_000 + i}" for i in range(COUNT)]


@pytest.fixture(scope="module")
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The test runtime with the sender allowed 10,000 messages a second (SEND_RATES), as an
    operator with a raised Twilio limit would set it; the jobs run_jobs runs use it. Four send
    threads: the fake Twilio runs in this process (one GIL) and its listen backlog is short,
    so more threads send slower and some connections are refused (sends left in doubt)."""
    rt = build_runtime(settings.with_overrides(send_rates=((SENDER, COUNT),), campaign_threads=4))
    rt.redis.flushdb()
    yield rt
    rt.redis.flushdb()
    rt.close()


def add_contacts(rt: Runtime) -> None:
    """Ten thousand leads with a Ghanaian number each, in two multi-row inserts."""
    with rt.session() as session:
        ids = session.scalars(
            insert(Contact).returning(Contact.id, sort_by_parameter_order=True),
            [
                {"name": f"Customer {i}", "lifecycle_stage": "lead", "attributes": {}}
                for i in range(COUNT)
            ],
        ).all()
        session.execute(
            insert(Identity),
            [
                {"contact_id": contact_id, "kind": "phone", "value": phone}
                for contact_id, phone in zip(ids, PHONES, strict=True)
            ],
        )


def enrol_all(rt: Runtime, sequence_id: int) -> list[int]:
    with rt.session() as session:
        return enrol_everyone(session, session.get_one(Sequence, sequence_id))


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run the calls in threads released together; their results (their errors raised)."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(run, call) for call in calls]]


def count(rt: Runtime, *where: object, of: object = None) -> int:
    with rt.session() as session:
        return session.scalar(select(func.count(of)).where(*where)) or 0  # type: ignore[arg-type]


def test_ten_thousand_contacts_enrolled_at_once_each_get_exactly_one_message(
    runtime: Runtime, fake_twilio: FakeTwilio
):
    add_contacts(runtime)
    sequence_id = new_sequence(
        runtime,
        definition(
            {"type": "tag_added", "tag": "launch"},
            [
                {"id": "hello", "send": {"channel": "sms", "body": "Hi {{ first_name }}, 10% off"}},
                {"id": "later", "wait": {"days": 3}},
                {"id": "again", "send": {"channel": "sms", "body": "Last chance"}},
            ],
            name="Launch",
            audience={"stages": ["lead"]},
            quiet_hours=None,  # the test runs at whatever hour it is
        ),
    )
    # Two processes enrol the whole audience at the same moment: each contact once in all.
    lists = at_once(
        lambda: enrol_all(runtime, sequence_id), lambda: enrol_all(runtime, sequence_id)
    )
    assert not set(lists[0]) & set(lists[1])
    assert len(lists[0]) + len(lists[1]) == COUNT
    enrolments = SequenceEnrollment.sequence_id == sequence_id
    assert count(runtime, enrolments, of=SequenceEnrollment.id) == COUNT
    assert count(runtime, enrolments, of=SequenceEnrollment.contact_id.distinct()) == COUNT

    # Two workers run the due steps at the same time: they split the enrolments.
    results = at_once(lambda: run_steps(runtime), lambda: run_steps(runtime))
    assert sum(r.claimed for r in results) == COUNT
    assert (sum(r.queued for r in results), sum(r.held for r in results)) == (COUNT, 0)
    assert run_steps(runtime).claimed == 0  # each first step ran once
    hello = SequenceStepRun.step_id == "hello"
    assert count(runtime, hello, of=SequenceStepRun.contact_id.distinct()) == COUNT
    assert count(runtime, hello, of=SequenceStepRun.id) == COUNT
    assert count(runtime, SequenceStepRun.step_id == "later", of=SequenceStepRun.id) == COUNT

    run_jobs(runtime)
    sent = Counter(str(m["to"]) for m in fake_twilio.accepted_messages())
    assert len(sent) == COUNT and set(sent.values()) == {1}
    assert set(sent) == set(PHONES)
    assert count(runtime, CampaignRecipient.state == "sent", of=CampaignRecipient.id) == COUNT
    # On each timeline: the enrolment, the two steps run, and the message itself.
    assert count(runtime, Interaction.channel == "system", of=Interaction.id) == 3 * COUNT
    assert count(runtime, Interaction.direction == "outbound", of=Interaction.id) == COUNT
    run_jobs(runtime)  # nothing left to send: nobody gets a second message
    assert len(fake_twilio.accepted_messages()) == COUNT
