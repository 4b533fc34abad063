"""The worker's sequence clock: run due steps as they fall due, scan time-based triggers.

Every worker process runs this loop in a thread beside the outbox relay and sweeper. It claims
due enrolments by their indexed due time (``crm.sequence_run``; ``SKIP LOCKED`` lets workers
share the work), commits each batch (a full one is followed by the next at once), then waits a
second: a step runs within about a second of its due time, and a steady stream of due steps is
gathered into batches a second long. The sends it queues are RQ
jobs on the ``campaigns`` queue. Steps are not themselves RQ jobs: a job per due batch would
wait in a queue behind minute-long campaign sends, and the enrolments' due index already is the
schedule, kept in the database so that it survives Redis and worker restarts.

Date and inactivity triggers have no event; one worker at a time (a Redis lock) scans for them
every ``SCAN_SECONDS``, from where each sequence's last scan stopped.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from crm import sequence_enrol, sequence_run
from crm.models.base import utcnow
from crm.runtime import Runtime

log = logging.getLogger(__name__)

SCAN_SECONDS = 300
# Between turns: steps falling due in a steady stream run a second's worth at a time. Each batch
# queues one send job per step campaign, and a job costs a worker about 0.2 s whatever it
# carries; waking at each due time made jobs of 1 to 3 messages, and the workers sent 20 to 45
# messages a second where a campaign sends 250 (bench/sequences.py).
TURN_SECONDS = 1.0
_SCAN_LOCK = "crm:sequences:scan-lock"
_SCANNED_AT = "crm:sequences:scanned-at"  # a hash: sequence id -> its last scan


def run_steps(runtime: Runtime, now: datetime | None = None) -> sequence_run.RunResult:
    """Run every step due now, batch after batch; the totals."""
    settings = runtime.settings
    total = sequence_run.RunResult()
    while True:
        with runtime.session() as session:
            result = sequence_run.run_due(
                session, now, limit=settings.sequence_batch, cap=settings.frequency_cap
            )
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(result, name))
        if result.claimed < settings.sequence_batch:
            return total


def scan_triggers(runtime: Runtime, now: datetime | None = None, *, force: bool = False) -> int:
    """Enrol for date and inactivity triggers, if no worker did in the last SCAN_SECONDS."""
    if not force and not runtime.redis.set(_SCAN_LOCK, "1", nx=True, ex=SCAN_SECONDS):
        return 0
    now = now or utcnow()
    since = {
        int(key): datetime.fromisoformat(value.decode())
        for key, value in runtime.redis.hgetall(_SCANNED_AT).items()
    }
    with runtime.session() as session:
        counts = sequence_enrol.scan(session, now, since)
    if counts:
        runtime.redis.hset(_SCANNED_AT, mapping={str(k): now.isoformat() for k in counts})
    enrolled = sum(counts.values())
    if enrolled:
        log.info("sequence triggers on dates and inactivity enrolled %d contacts", enrolled)
    return enrolled


def tick(runtime: Runtime, stop: threading.Event) -> None:
    """One turn of the clock: run what is due (full batches one after another), scan if it is
    time, then wait a turn."""
    result = run_steps(runtime)
    if result.claimed:
        log.info(
            "sequences: %d enrolments, %d steps, %d messages queued, %d held, %d completed, "
            "%d exited",
            result.claimed,
            result.steps,
            result.queued,
            result.held,
            result.completed,
            result.exited,
        )
    scan_triggers(runtime)
    stop.wait(TURN_SECONDS)
