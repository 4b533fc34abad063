"""Transactional outbox: write the job with the data, relay it to RQ after commit, sweep the rest.

1. The web request writes an :class:`OutboxJob` row in the same transaction as the interaction it
   is about (one INSERT), commits, then *announces* the row id on a Redis list (one LPUSH).
2. The relay, a thread in every worker process, blocks on that list and enqueues the announced
   rows as RQ jobs (job id ``outbox-<id>``) in one pipeline per batch.
3. The sweeper, also in every worker, enqueues rows still pending after a grace period whose job
   is not in Redis: Redis was down at announce time, lost its data, or a relay died mid-batch.
4. Jobs mark their row done.

Enrichment rows relayed together travel in one RQ job (up to ``ENRICH_BATCH``): the model reads
a batch of messages for little more than the cost of one, and a job per message would spend
more on RQ's bookkeeping than on the model. Each row records the id of the job carrying it.

Building the RQ job happens in the worker, not the request: an RQ enqueue costs several times a
plain LPUSH, and the webhook's only job is to store and answer. Nothing accepted is lost: the
row is committed before anything touches Redis.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from crm.db import skip_locked
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
    "enrich": JobSpec("workers.jobs.enrich_batch", "enrichment", timeout=300),
    "handoff": JobSpec(
        "workers.jobs.route_lead", "default", timeout=60, retry=Retry(max=3, interval=[5, 30, 120])
    ),
    "handoff_sla": JobSpec("workers.jobs.check_handoff_sla", "default", timeout=60),
    "campaign_launch": JobSpec("workers.jobs.launch_campaign", "campaigns", timeout=1800),
    # A chunk job sends for at most a minute (crm.campaign_send.JOB_SECONDS); past this limit
    # RQ counts a job whose worker died as abandoned, and the sweeper runs the chunk again.
    "campaign_send": JobSpec("workers.jobs.send_campaign_chunk", "campaigns", timeout=180),
    "notify_sms": JobSpec(
        "workers.jobs.send_notification_sms",
        "messages",
        timeout=60,
        retry=Retry(max=5, interval=[5, 30, 120, 600, 1800]),
    ),
    "send": JobSpec(
        "workers.jobs.send_message",
        "messages",
        timeout=60,
        retry=Retry(max=5, interval=[5, 30, 120, 600, 1800]),
    ),
}
QUEUES = ["messages", "enrichment", "campaigns", "default"]
# A row the sweeper has enqueued this many times is left pending for a person to look at.
MAX_SWEEP_ATTEMPTS = 5
ENRICH_BATCH = 512  # rows per enrichment job

_PENDING = "outbox_pending"
_ACTIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


_INSERT = insert(OutboxJob.__table__).returning(OutboxJob.__table__.c.id)
READY_KEY = "crm:outbox:ready"


def add(session: Session, job: str, **payload: Any) -> int:
    """Write an outbox row in the session's transaction (one Core INSERT: a hot path)."""
    if job not in JOBS:
        raise ValueError(f"unknown outbox job {job!r}")
    row_id: int = (
        session.connection()
        .execute(_INSERT, {"job": job, "payload": payload, "created_at": utcnow(), "attempts": 0})
        .scalar_one()
    )
    register(session, row_id)
    return row_id


def register(session: Session, row_id: int) -> None:
    """Remember a row written in this session, to announce once it has committed."""
    session.info.setdefault(_PENDING, []).append(row_id)


def take_pending(session: Session) -> list[int]:
    """The ids of rows added in this session, to announce after its commit."""
    return session.info.pop(_PENDING, [])


def announce(connection: redis.Redis, ids: list[int]) -> bool:
    """Tell the relay that these committed rows are ready. Redis errors are logged, never
    raised: the rows are safe in the database and the sweeper will pick them up."""
    if not ids:
        return True
    try:
        connection.lpush(READY_KEY, *ids)
    except redis.RedisError as exc:
        log.warning("outbox %s not announced (%s); the sweeper will enqueue it", ids, exc)
        return False
    return True


def take_announced(connection: redis.Redis, *, block_seconds: float, limit: int = 500) -> list[int]:
    """Pop up to ``limit`` announced ids, waiting up to ``block_seconds`` for the first."""
    if block_seconds > 0:
        first = connection.brpop([READY_KEY], timeout=block_seconds)
        if first is None:
            return []
        ids = [int(first[1])]
    else:
        ids = []
    more = connection.rpop(READY_KEY, limit - len(ids)) or []
    return ids + [int(i) for i in more]


def job_id(outbox_id: int) -> str:
    return f"outbox-{outbox_id}"


def _jobs_for(rows: list[OutboxJob]) -> list[tuple[JobSpec, str, dict[str, Any], list[OutboxJob]]]:
    """(spec, RQ job id, kwargs, rows carried) for each job: one per row, except enrichment
    rows, which are batched."""
    jobs: list[tuple[JobSpec, str, dict[str, Any], list[OutboxJob]]] = []
    batched = [row for row in rows if row.job == "enrich"]
    for row in rows:
        if row.job != "enrich":
            kwargs = {"outbox_id": row.id, **row.payload}
            kwargs.pop("run_at", None)
            jobs.append((JOBS[row.job], job_id(row.id), kwargs, [row]))
    for start in range(0, len(batched), ENRICH_BATCH):
        chunk = batched[start : start + ENRICH_BATCH]
        name = (
            job_id(chunk[0].id) if len(chunk) == 1 else f"{job_id(chunk[0].id)}-batch{len(chunk)}"
        )
        kwargs = {
            "outbox_ids": [row.id for row in chunk],
            "interaction_ids": [row.payload["interaction_id"] for row in chunk],
        }
        jobs.append((JOBS["enrich"], name, kwargs, chunk))
    return jobs


def _enqueue_rows(connection: redis.Redis, rows: list[OutboxJob]) -> None:
    """Enqueue rows as RQ jobs, grouped per queue, in one Redis pipeline."""
    by_queue: dict[str, list[Any]] = {}
    later: list[tuple[JobSpec, str, dict[str, Any], datetime]] = []
    jobs = _jobs_for(rows)
    for spec, name, kwargs, carried in jobs:
        run_at = carried[0].payload.get("run_at")
        if run_at:  # a deadline: RQ's scheduler enqueues it then
            later.append((spec, name, kwargs, datetime.fromisoformat(run_at)))
            continue
        by_queue.setdefault(spec.queue, []).append(
            Queue.prepare_data(
                spec.func,
                kwargs=kwargs,
                job_id=name,
                timeout=spec.timeout,
                retry=spec.retry,
                result_ttl=3600,
                failure_ttl=7 * 24 * 3600,
            )
        )
    with connection.pipeline() as pipe:
        for queue_name, datas in by_queue.items():
            Queue(queue_name, connection=connection).enqueue_many(datas, pipeline=pipe)
        for spec, name, kwargs, run_at in later:
            queue = Queue(spec.queue, connection=connection)
            job = queue.create_job(
                spec.func, kwargs=kwargs, job_id=name, timeout=spec.timeout, result_ttl=3600
            )
            queue.schedule_job(job, run_at, pipeline=pipe)
        pipe.execute()
    now = utcnow()
    for _spec, name, _kwargs, carried in jobs:
        for row in carried:
            row.enqueued_at = now
            row.attempts += 1
            row.rq_job_id = name


def relay(*, session: Session, connection: redis.Redis, ids: list[int]) -> int:
    """Enqueue announced rows that are still waiting. Returns how many were enqueued."""
    if not ids:
        return 0
    query = select(OutboxJob).where(
        OutboxJob.id.in_(ids), OutboxJob.done_at.is_(None), OutboxJob.enqueued_at.is_(None)
    )
    rows = list(session.scalars(skip_locked(session, query)))
    if rows:
        _enqueue_rows(connection, rows)
    return len(rows)


def _job_is_active(connection: redis.Redis, row: OutboxJob) -> bool:
    try:
        job = Job.fetch(row.rq_job_id or job_id(row.id), connection=connection)
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in _ACTIVE


def sweep(
    *, session: Session, connection: redis.Redis, grace_seconds: int, limit: int = 500
) -> int:
    """Enqueue pending rows older than the grace period whose job is not in Redis.

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
    rows = [
        row
        for row in session.scalars(skip_locked(session, query))
        if not _job_is_active(connection, row)
    ]
    if rows:
        _enqueue_rows(connection, rows)
    return len(rows)


def mark_done(session: Session, *outbox_ids: int) -> None:
    session.execute(
        update(OutboxJob)
        .where(OutboxJob.id.in_(outbox_ids), OutboxJob.done_at.is_(None))
        .values(done_at=utcnow())
    )
