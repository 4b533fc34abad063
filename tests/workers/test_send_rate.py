"""The per-sender send rate, against the real test Redis, from threads and from processes."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from multiprocessing.queues import Queue
from typing import TYPE_CHECKING

import pytest
import redis

from workers.send_rate import DEFAULT_MARGIN, KEY_PREFIX, SendRate, limit_for, rate_key

if TYPE_CHECKING:  # spawned processes import this module: keep it light
    from crm.runtime import Runtime

SERVICE_SID = "MG" + "0123456789abcdef" * 2


class RecordingSendRate(SendRate):
    """Records when each caller could send: the moment ``acquire`` returned True."""

    def __init__(self, connection: redis.Redis, **kwargs: float) -> None:
        super().__init__(connection, **kwargs)
        self.grants: list[float] = []
        self._lock = threading.Lock()

    def acquire(self, sender: str, per_second: int, **kwargs: object) -> bool:
        granted = super().acquire(sender, per_second, **kwargs)  # type: ignore[arg-type]
        if granted:
            with self._lock:
                self.grants.append(time.time())
        return granted


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """The most times that any window ``[t, t + width)`` holds (sliding over every time)."""
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, start + width) - i for i, start in enumerate(ordered)), default=0
    )


def used(grants: list[float], per_second: int, seconds: float) -> float:
    """The share of the budget used in the first ``seconds`` after the first grant. The end of
    a run is left out: threads then hold slots reserved beyond it, which go unused."""
    first = min(grants)
    within = sum(1 for grant in grants if grant < first + seconds)
    return within / (seconds * per_second / (1 + DEFAULT_MARGIN))


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

    # Where callers actually could send (after Redis and the GIL), not only the grants' stamps.
    assert max_in_window(rate.grants) <= per_second
    assert used(rate.grants, per_second, seconds - 0.5) >= 0.85
    assert runtime.redis.keys(f"{KEY_PREFIX}:*")  # in the test db, under our prefix


def _process_main(
    redis_url: str,
    sender: str,
    per_second: int,
    seconds: float,
    start: threading.Barrier,
    results: Queue[list[float]],
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
    assert max_in_window(grants) <= per_second
    assert used(grants, per_second, seconds - 0.5) >= 0.75  # three processes starting at once


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
        assert max_in_window(rate.grants) <= per_second
        assert len(rate.grants) >= per_second
    # one shared budget would allow 5 in a second; two budgets allow 10
    both = [grant for rate in rates.values() for grant in rate.grants]
    assert max_in_window(both) > per_second


def test_slots_are_spaced_evenly_on_the_redis_clock(runtime: Runtime) -> None:
    """A burst of reservations gets one slot each, 1/N (plus the margin) apart: the last of
    ten at 10/s starts about 0.92 s after the first, not at once."""
    rate = SendRate(runtime.redis, margin=0.02)
    waits = [rate.reserve("+15005550006", 10) for _ in range(10)]

    assert all(reserved for reserved, _ in waits)
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(waits)]
    # each wait is measured from its own call, a few microseconds later than the one before
    assert all(0.098 <= gap <= 0.102 for gap in gaps), gaps
    assert waits[0][1] == 0.0


def test_the_budget_is_the_senders_whatever_rate_a_process_was_configured_with(
    runtime: Runtime,
) -> None:
    """Two processes configured with different rates for one sender still share one schedule:
    the key is the sender's alone."""
    rate, sender = SendRate(runtime.redis, margin=0.0), "+15005550006"
    assert rate.reserve(sender, 2) == (True, 0.0)
    reserved, wait = rate.reserve(sender, 100)  # waits for the slow one's spacing
    assert reserved and 0.49 <= wait <= 0.5


def test_a_caller_never_reserves_beyond_its_reach(runtime: Runtime) -> None:
    rate, sender = SendRate(runtime.redis, max_ahead=1.0, margin=0.0), "+15005550006"
    assert [rate.reserve(sender, 2)[0] for _ in range(4)] == [True, True, True, False]

    began = time.monotonic()
    assert rate.acquire(sender, 2, timeout=0.05) is False  # the next slot is 1.5 s away
    assert time.monotonic() - began < 0.3

    stop = threading.Event()
    stop.set()
    assert rate.acquire(sender, 2, stop=stop) is False  # a stopped caller does not wait

    assert rate.acquire(sender, 2, timeout=3.0) is True  # it sleeps until the slot is in reach
    assert 1.0 <= time.monotonic() - began < 2.5


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
        ("whatsapp:+14155238886", {}, 10),  # Twilio's default for a WhatsApp sender
        ("whatsapp:+14155238886", {"whatsapp:+14155238886": 50}, 50),
        ("whatsapp:+14155238886", {"+14155238886": 1}, 10),  # the number's SMS budget apart
    ],
)
def test_limit_for(sender: str, configured: dict[str, int], expected: int) -> None:
    assert limit_for(sender, configured) == expected


def test_whatsapp_sends_draw_on_a_budget_of_their_own() -> None:
    assert rate_key("whatsapp", "+14155238886") == "whatsapp:+14155238886"
    assert rate_key("sms", "+14155238886") == "+14155238886"


def test_limit_for_takes_other_defaults() -> None:
    assert limit_for("+15005550006", {}, default_long_code=3) == 3
    assert limit_for("12345", {}, default_service=40) == 40
