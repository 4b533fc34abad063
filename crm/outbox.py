"""Transactional outbox: write the job with the data, enqueue after commit, sweep what Redis missed.

The web request writes an :class:`OutboxJob` row in the same transaction as the interaction it
is about, commits, then enqueues the RQ job (job id ``outbox-<id>``). If Redis is down the
enqueue fails quietly and the sweeper, run by every worker, enqueues the row later. Jobs mark
their row done, so a row is re-enqueued only when its job is gone (lost, failed, never sent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm.models import OutboxJob
from crm.models.base import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    func: str
    queue: str
    timeout: int
    retry: Retry | None = None


# Job names stored in the outbox, and how to run them. Functions are named by path so the web
# process never imports worker code (or the model it loads).
JOBS: dict[str, JobSpec] = {
    "enrich": JobSpec("workers.jobs.enrich_interaction", "enrichment", timeout=120),
    "send": JobSpec(
        "workers.jobs.send_message",
        "messages",
        timeout=60,
        retry=Retry(max=5, interval=[5, 30, 120, 600, 1800]),
    ),
}
QUEUES = ["messages", "enrichment", "default"]
# A row whose job failed this many times is left for a person to look at (`crm outbox list`).
MAX_SWEEP_ATTEMPTS = 5

_PENDING = "outbox_pending"
_ACTIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def add(session: Session, job: str, **payload: Any) -> OutboxJob:
    if job not in JOBS:
        raise ValueError(f"unknown outbox job {job!r}")
    row = OutboxJob(job=job, payload=payload, created_at=utcnow())
    session.add(row)
    session.flush()
    session.info.setdefault(_PENDING, []).append(row)
    return row


def take_pending(session: Session) -> list[OutboxJob]:
    """The rows added in this session, for dispatch after its commit."""
    return session.info.pop(_PENDING, [])


def job_id(outbox_id: int) -> str:
    return f"outbox-{outbox_id}"


def _enqueue(connection: redis.Redis, row: OutboxJob) -> None:
    spec = JOBS[row.job]
    Queue(spec.queue, connection=connection).enqueue(
        spec.func,
        kwargs={"outbox_id": row.id, **row.payload},
        job_id=job_id(row.id),
        job_timeout=spec.timeout,
        retry=spec.retry,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
    )


def dispatch(connection: redis.Redis, rows: Iterable[OutboxJob]) -> int:
    """Enqueue committed outbox rows now. Redis errors are logged, never raised: the row is
    already safe in the database and the sweeper will pick it up."""
    enqueued = 0
    for row in rows:
        try:
            _enqueue(connection, row)
            enqueued += 1
        except redis.RedisError as exc:
            log.warning("outbox %s not enqueued (%s); the sweeper will retry", row.id, exc)
            break
    return enqueued


def _job_is_active(connection: redis.Redis, outbox_id: int) -> bool:
    try:
        job = Job.fetch(job_id(outbox_id), connection=connection)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in _ACTIVE


def sweep(
    *, session: Session, connection: redis.Redis, grace_seconds: int, limit: int = 500
) -> int:
    """Enqueue pending rows older than the grace period whose job is not in Redis.

    Rows are locked with SKIP LOCKED on PostgreSQL so concurrent sweepers split the work.
    Returns how many rows were enqueued. Raises redis errors (the caller retries later).
    """
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    query = (
        select(OutboxJob)
        .where(
            OutboxJob.done_at.is_(None),
            OutboxJob.created_at <= cutoff,
            OutboxJob.attempts < MAX_SWEEP_ATTEMPTS,
        )
        .order_by(OutboxJob.created_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    enqueued = 0
    for row in session.scalars(query):
        if _job_is_active(connection, row.id):
            continue
        _enqueue(connection, row)
        row.enqueued_at = utcnow()
        row.attempts += 1
        enqueued += 1
    return enqueued


def mark_done(session: Session, outbox_id: int) -> None:
    session.execute(
        update(OutboxJob)
        .where(OutboxJob.id == outbox_id, OutboxJob.done_at.is_(None))
        .values(done_at=utcnow())
    )
