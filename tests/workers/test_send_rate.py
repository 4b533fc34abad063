"""The per-sender send rate, against the real test Redis, from threads and from processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from multiprocessing.queues import Queue
from typing import TYPE_CHECKING

import pytest
import redis

from workers.send_rate import KEY_PREFIX, SendRate, limit_for

if TYPE_CHECKING:  # spawned processes import this module: keep it light
    from crm.runtime import Runtime

SERVICE_SID = "MG" + "0123456789abcdef" * 2


class RecordingSendRate(SendRate):
    """Records each grant as (just before its granting try, just after it), in ``time.time``.

    ``limits`` stamps a grant with ``time.time()`` inside that try, before its round trip to
    Redis, so the stamp lies between the two; ``after`` is when the caller could send.
    """

    def __init__(self, connection: redis.Redis) -> None:
        super().__init__(connection)
        self.grants: list[tuple[float, float]] = []
        self.tries = 0
        self._lock = threading.Lock()

    def try_acquire(self, sender: str, per_second: int) -> bool:
        before = time.time()
        granted = super().try_acquire(sender, per_second)
        after = time.time()
        with self._lock:
            self.tries += 1
            if granted:
                self.grants.append((before, after))
        return granted


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """The most times that any window ``[t, t + width)`` holds (sliding over every time)."""
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, start + width) - i for i, start in enumerate(ordered)), default=0
    )


def assert_within_limit(grants: list[tuple[float, float]], per_second: int) -> None:
    """No window of one second holds more than ``per_second`` grants.

    The library's stamps are exact; a caller sees its grant up to one granting try later (its
    Redis round trip and the wait for the GIL: ~1 ms when warm, tens of ms when threads burst on
    fresh connections). So of the times callers got their grants, no N+1 fit in one second less
    the slowest granting try; a literal one-second check would fail by those milliseconds.
    """
    latency = max(after - before for before, after in grants)
    assert latency < 0.5, "too slow to say anything about a one-second window"
    assert max_in_window([after for _, after in grants], 1.0 - latency) <= per_second


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``count`` threads that start together; wait for them all."""
    start = threading.Barrier(count)

    def body(i: int) -> None:
        start.wait(timeout=10)
        work(i)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)


def hammer(rate: SendRate, sender: str, per_second: int, seconds: float) -> None:
    """Acquire as fast as the rate allows, for ``seconds``."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        rate.acquire(sender, per_second, timeout=left)


def test_threads_use_the_whole_limit_and_never_exceed_it(runtime: Runtime) -> None:
    rate, per_second, seconds = RecordingSendRate(runtime.redis), 20, 2.5

    run_threads(8, lambda _: hammer(rate, "+15005550006", per_second, seconds))

    assert_within_limit(rate.grants, per_second)
    assert len(rate.grants) >= 0.9 * per_second * seconds
    assert runtime.redis.keys(f"{KEY_PREFIX}:*")  # in the test db, under our prefix


def _process_main(
    redis_url: str,
    sender: str,
    per_second: int,
    seconds: float,
    start: threading.Barrier,
    results: Queue[list[tuple[float, float]]],
) -> None:
    """One worker process: three threads acquiring on a shared sender; grants to ``results``."""
    rate = RecordingSendRate(redis.Redis.from_url(redis_url))
    start.wait(timeout=60)
    run_threads(3, lambda _: hammer(rate, sender, per_second, seconds))
    results.put(rate.grants)


def test_processes_share_one_budget(runtime: Runtime) -> None:
    per_second, seconds, processes = 30, 2.0, 3
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes), context.Queue()
    args = (runtime.settings.redis_url, SERVICE_SID, per_second, seconds, start, results)
    workers = [context.Process(target=_process_main, args=args) for _ in range(processes)]
    for worker in workers:
        worker.start()
    per_process = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    grants = [grant for mine in per_process for grant in mine]
    assert all(per_process), "every process got sends"
    assert_within_limit(grants, per_second)
    assert len(grants) >= 0.85 * per_second * seconds


def test_senders_have_separate_budgets(runtime: Runtime) -> None:
    per_second, seconds = 5, 1.2
    rates = {"+15005550006": RecordingSendRate(runtime.redis)}
    rates["+15005550007"] = RecordingSendRate(runtime.redis)
    senders = list(rates)

    def work(i: int) -> None:  # two threads a sender, at the same time
        sender = senders[i % 2]
        hammer(rates[sender], sender, per_second, seconds)

    run_threads(4, work)

    for rate in rates.values():
        assert_within_limit(rate.grants, per_second)
        assert len(rate.grants) >= 2 * per_second  # a window's worth, then the next
    # one shared budget would allow 5 in a second; two budgets allow 10
    both = [after for rate in rates.values() for _, after in rate.grants]
    assert max_in_window(both) >= 2 * per_second


def test_the_window_moves_with_each_grant(runtime: Runtime) -> None:
    """Each grant leaves the window one second after it was made, not all at once."""
    rate, sender = SendRate(runtime.redis), "+15005550006"
    assert rate.try_acquire(sender, 5)
    time.sleep(0.5)  # spread the grants (a fixed window would forget all five together)
    assert [rate.try_acquire(sender, 5) for _ in range(5)] == [True] * 4 + [False]

    assert rate.acquire(sender, 5, timeout=2.0)  # the first grant has left the window ...
    assert not rate.try_acquire(sender, 5)  # ... the four made half a second later have not


def test_acquire_gives_up_at_its_timeout_and_waits_for_a_free_slot(runtime: Runtime) -> None:
    rate, sender = RecordingSendRate(runtime.redis), "+15005550006"
    assert [rate.try_acquire(sender, 3) for _ in range(4)] == [True, True, True, False]

    began = time.monotonic()
    assert rate.acquire(sender, 3, timeout=0.05) is False
    assert 0.05 <= time.monotonic() - began < 0.3

    assert rate.acquire(sender, 3, timeout=2.0) is True  # the first grant expires within 1 s
    assert time.monotonic() - began < 1.3
    # it slept between tries (at most 50 ms at a time) rather than spinning on Redis
    assert rate.tries <= 40


def test_rate_below_one_is_refused(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SendRate(runtime.redis).acquire("+15005550006", 0)


@pytest.mark.parametrize(
    ("sender", "configured", "expected"),
    [
        ("+15005550006", {"+15005550006": 10}, 10),  # configured wins over the long-code default
        (SERVICE_SID, {SERVICE_SID: 250}, 250),  # ... and over the service default
        (SERVICE_SID, {}, 100),
        ("MG" + "ab" * 16, {"+15005550006": 10}, 100),  # hex in either case
        ("12345", {}, 100),
        ("123456", {}, 100),
        ("+15005550006", {}, 1),
        ("+233241234567", {"12345": 50}, 1),
        ("1234", {}, 1),  # too short for a short code: unknown, so the safe default
        ("MG" + "0" * 31, {}, 1),  # one hex digit short of a SID
        ("MG" + "g" * 32, {}, 1),  # not hex
    ],
)
def test_limit_for(sender: str, configured: dict[str, int], expected: int) -> None:
    assert limit_for(sender, configured) == expected


def test_limit_for_takes_other_defaults() -> None:
    assert limit_for("+15005550006", {}, default_long_code=3) == 3
    assert limit_for("12345", {}, default_service=40) == 40
