"""A real ``crm worker`` process killed with SIGKILL in the middle of a campaign, then a new
one started: the provider saw every recipient exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from sqlalchemy import func, select

from crm.campaign_launch import launch
from crm.campaigns import create_campaign
from crm.models import Campaign, CampaignRecipient, Contact, Identity, Role, Segment
from crm.runtime import Runtime
from crm.users import create_user
from tests.fakes.twilio_api import FakeTwilio

SERVICE = "MG" + "b" * 32
RECIPIENTS = 60
RATE = 20  # messages a second: the campaign takes three seconds, plenty to kill it midway
STALE_SECONDS = 3
WORKER_ARGS = (
    "worker",
    "--queue",
    "campaigns",
)  # how old a claim must be before another job asks the provider about it


def seed_campaign(rt: Runtime) -> int:
    with rt.session() as session:
        user = create_user(
            session=session, email="mk@example.com", role=Role.MARKETER, password="x" * 12
        )
        for i in range(RECIPIENTS):
            contact = Contact(name=f"Customer {i}", lifecycle_stage="lead", attributes={})
            session.add(contact)
            session.flush()
            session.add(Identity(contact_id=contact.id, kind="phone", value=f"+2332420{i:05d}"))
        segment = Segment(name="Ghana", filters={"countries": ["GH"]})
        session.add(segment)
        session.flush()
        campaign = create_campaign(
            session,
            {
                "name": "Flash sale",
                "channel": "sms",
                "sender": SERVICE,
                "segment_id": segment.id,
                "body": "Hi {{ first_name }}, lamps are 20% off today",
                "quiet_start": None,  # any hour: the test must not wait for the morning
                "quiet_end": None,
            },
            user,
        )
        launch(session, campaign)
        return campaign.id


class WorkerProcess:
    """``crm worker`` on the campaign queue, as an operator runs it, in its own process group."""

    def __init__(self, rt: Runtime, fake: FakeTwilio, log: Path) -> None:
        self.env = {
            **os.environ,
            "CRM_ENV": "test",
            "DATABASE_URL": rt.settings.database_url,
            "REDIS_URL": rt.settings.redis_url,
            "CRM_INSTANCE_PATH": str(rt.settings.instance_path),
            "SECRET_KEY": rt.settings.secret_key,
            "DEFAULT_REGION": "GH",
            "TWILIO_ACCOUNT_SID": fake.account_sid,
            "TWILIO_AUTH_TOKEN": fake.auth_token,
            "TWILIO_API_BASE_URL": fake.base_url,
            "SEND_RATES": f"{SERVICE}={RATE}",
            "CAMPAIGN_THREADS": "8",
            "CAMPAIGN_STALE_SECONDS": str(STALE_SECONDS),
            "OUTBOX_GRACE_SECONDS": "0",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from crm.cli import main; main()", *WORKER_ARGS],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture
def workers(
    runtime: Runtime, fake_twilio: FakeTwilio, tmp_path: Path
) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    pair = (
        WorkerProcess(runtime, fake_twilio, tmp_path / "worker-1.log"),
        WorkerProcess(runtime, fake_twilio, tmp_path / "worker-2.log"),
    )
    yield pair
    for worker in pair:
        worker.stop()


def states(rt: Runtime, campaign_id: int) -> Counter[str]:
    with rt.session() as session:
        return Counter(
            dict(
                session.execute(
                    select(CampaignRecipient.state, func.count())
                    .where(CampaignRecipient.campaign_id == campaign_id)
                    .group_by(CampaignRecipient.state)
                ).all()
            )
        )


def wait_until_done(rt: Runtime, campaign_id: int, timeout: float) -> str:
    """Poll the campaign's status until it is done (or the timeout passes); its last status."""
    deadline = time.monotonic() + timeout
    while True:
        with rt.session() as session:
            status = session.get_one(Campaign, campaign_id).status
        if status == "done" or time.monotonic() > deadline:
            return status
        time.sleep(0.2)  # polling the outcome, with a deadline; nothing waits on a guess


def test_a_worker_killed_mid_campaign_and_a_new_one_started_send_everyone_exactly_once(
    runtime: Runtime,
    fake_twilio: FakeTwilio,
    workers: tuple[WorkerProcess, WorkerProcess],
    tmp_path: Path,
) -> None:
    fake_twilio.latency = 0.15  # requests are in flight when the worker dies
    campaign_id = seed_campaign(runtime)
    first, second = workers

    first.start()
    assert fake_twilio.wait_for_accepted(RECIPIENTS // 3, timeout=60), (
        tmp_path / "worker-1.log"
    ).read_text()
    first.kill()

    midway = states(runtime, campaign_id)
    assert midway["sending"] > 0  # claimed, in flight or waiting for a slot: left in doubt
    # some of those reached the provider (the last one was accepted, its answer 150 ms away)
    assert len(fake_twilio.accepted_messages()) > midway["sent"]
    assert midway["pending"] > 0 and midway["sent"] < RECIPIENTS
    # What RQ does by itself a few minutes after a worker dies, done now instead of waiting:
    # its maintenance declares the job abandoned once its time limit (three minutes for a
    # campaign job) has passed, and the dead worker's scheduler lock expires after 61 s.
    StartedJobRegistry("campaigns", connection=runtime.redis).cleanup(time.time() + 3600)
    runtime.redis.delete(RQScheduler.get_locking_key("campaigns"))

    second.start()
    status = wait_until_done(runtime, campaign_id, timeout=90)
    assert status == "done", (tmp_path / "worker-2.log").read_text()

    numbers = Counter(str(m["to"]) for m in fake_twilio.accepted_messages())
    assert len(numbers) == RECIPIENTS
    assert set(numbers.values()) == {1}  # nobody twice, nobody missed
    assert states(runtime, campaign_id) == Counter({"sent": RECIPIENTS})
    with runtime.session() as session:
        sids = set(
            session.scalars(
                select(CampaignRecipient.provider_message_id).where(
                    CampaignRecipient.campaign_id == campaign_id
                )
            )
        )
    assert sids == {str(m["sid"]) for m in fake_twilio.accepted_messages()}
