"""The worker process: an RQ worker on the app's queues, plus the outbox relay and sweeper.

Jobs run inside the worker process (RQ's ``SimpleWorker``), not in a forked child per job: the
model is loaded once per process and stays loaded (a fork per job would load it per job, or
share PyTorch's thread pools across a fork), and a job costs no fork. A job that crashes the
process loses nothing: its outbox row stays pending and the sweeper enqueues it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from rq import SimpleWorker

from crm import dashboard_stats, log_redaction, outbox
from crm.conversations import wake_snoozed
from crm.runtime import Runtime
from crm.ussd import close_stale_sessions
from workers import sequence_clock
from workers.context import use

log = logging.getLogger(__name__)


def relay_once(runtime: Runtime, *, block_seconds: float = 0) -> int:
    """Enqueue the outbox rows announced since the last call (waiting up to block_seconds)."""
    ids = outbox.take_announced(runtime.redis, block_seconds=block_seconds)
    if not ids:
        return 0
    with runtime.session() as session:
        return outbox.relay(session=session, connection=runtime.redis, ids=ids)


def sweep_once(runtime: Runtime) -> int:
    """Enqueue outbox rows Redis missed, close USSD sessions the gateway never ended, reopen
    conversations whose snooze ran out, and keep the dashboard's daily counts cached."""
    with runtime.session() as session:
        close_stale_sessions(session=session, ttl_seconds=runtime.settings.ussd_session_ttl)
        wake_snoozed(session)
    with runtime.session() as session:
        dashboard_stats.warm(session, runtime.redis)
    with runtime.session() as session:
        return outbox.sweep(
            session=session,
            connection=runtime.redis,
            grace_seconds=runtime.settings.outbox_grace_seconds,
        )


def _loop(name: str, step: Callable[[], object], stop: threading.Event, pause: float) -> None:
    """Run ``step`` until stopped, through Redis and database outages."""
    while not stop.is_set():
        try:
            step()
        except Exception:
            log.warning("outbox %s failed; retrying in %.0f s", name, pause, exc_info=True)
            stop.wait(pause)


def _start(name: str, step: Callable[[], object], stop: threading.Event, pause: float) -> None:
    threading.Thread(
        target=_loop, args=(name, step, stop, pause), daemon=True, name=f"outbox-{name}"
    ).start()


def _blocking_connection(connection: redis.Redis) -> redis.Redis:
    """The same server on a pool of its own without our short read timeout: the worker's
    BLPOP waits minutes for a job, and a connection the relay opened with a 2 s timeout would
    time out under it (RQ raises the timeout of new connections only)."""
    pool = connection.connection_pool
    return redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class,
            **{**pool.connection_kwargs, "socket_timeout": None},
        )
    )


def run_worker(
    runtime: Runtime,
    *,
    queues: list[str] | None = None,
    burst: bool = False,
    sweep_interval: float = 10.0,
) -> bool:
    use(runtime)
    if not burst:  # our jobs' own lines beside RQ's, with secrets redacted as in the web app
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        log_redaction.install()
        # The SDK logs every request at INFO (its URL and headers): one line per campaign send.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    stop = threading.Event()
    if burst:
        relay_once(runtime)
        sweep_once(runtime)
        sequence_clock.run_steps(runtime)
        sequence_clock.scan_triggers(runtime)
        relay_once(runtime)  # the sends those steps queued
    else:
        _start("relay", lambda: relay_once(runtime, block_seconds=1), stop, pause=2.0)

        def sweep_then_wait() -> None:
            sweep_once(runtime)
            stop.wait(sweep_interval)

        _start("sweeper", sweep_then_wait, stop, pause=sweep_interval)
        _start("sequences", lambda: sequence_clock.tick(runtime, stop), stop, pause=2.0)
    worker = SimpleWorker(queues or outbox.QUEUES, connection=_blocking_connection(runtime.redis))
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        stop.set()
