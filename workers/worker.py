"""The worker process: an RQ worker on the app's queues, plus the outbox sweeper."""

from __future__ import annotations

import logging
import threading

from rq import Worker

from crm import outbox
from crm.runtime import Runtime
from workers.context import use

log = logging.getLogger(__name__)


def _sweep_forever(runtime: Runtime, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            with runtime.session() as session:
                count = outbox.sweep(
                    session=session,
                    connection=runtime.redis,
                    grace_seconds=runtime.settings.outbox_grace_seconds,
                )
            if count:
                log.info("outbox sweeper enqueued %d job(s) that Redis had missed", count)
        except Exception:  # keep sweeping through Redis or database outages
            log.warning("outbox sweep failed; will retry", exc_info=True)


def run_worker(
    runtime: Runtime,
    *,
    queues: list[str] | None = None,
    burst: bool = False,
    sweep_interval: float = 10.0,
) -> bool:
    use(runtime)
    stop = threading.Event()
    if not burst:
        threading.Thread(
            target=_sweep_forever,
            args=(runtime, sweep_interval, stop),
            daemon=True,
            name="outbox-sweeper",
        ).start()
    worker = Worker(queues or outbox.QUEUES, connection=runtime.redis)
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        stop.set()
