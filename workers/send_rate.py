"""Per-sender send rate for bulk campaigns, shared by every worker process and thread.

Providers cap each sender (a phone number or a messaging service) at N messages a second. Bulk
campaigns are sent by several RQ worker processes, each with several threads, so the budget must
live in one place all of them see: the app's Redis. We want the whole budget used, and never
more than N sends in *any* one-second span, not only in each calendar second: a fixed window lets
N sends at the end of one second and N more at the start of the next, 2N within a few
milliseconds.

That is a solved problem, so we use the library Flask-Limiter uses, :pypi:`limits`, with its Redis
storage and its *moving window* strategy: each grant's timestamp is kept (a Redis list per sender,
checked and pushed by one Lua script, so it is atomic across processes), and a send is granted
only when fewer than N grants lie in the last second. The library shares our connection pool, so
it talks to the same server and database (TCP or the embedded server's unix socket), with the
same timeouts; its keys sit under ``crm:send-rate``.

What "never exceeded" can mean: the library stamps each grant with the granting process's clock
(``time.time()``) before its round trip to Redis. Grants are exact against those stamps; processes
on one host share that clock, while workers on several hosts need synchronised clocks. What the
provider sees also includes each request's own latency, which no client-side limiter controls, so
configure a sender's limit with headroom if its provider drops (rather than queues) excess sends.
"""

from __future__ import annotations

import random
import re
import time

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from channels.twilio import MESSAGING_SERVICE_SID

KEY_PREFIX = "crm:send-rate"

# A refused caller sleeps until a slot frees, but at most this long at a time (the window can
# change under it: another sender's grant expires, the limit is reconfigured) ...
MAX_SLEEP_SECONDS = 0.05
# ... plus a random few milliseconds, so that the threads waiting on one sender do not all wake at
# the same instant and race for the one slot that opened.
JITTER_SECONDS = 0.003

DEFAULT_LONG_CODE_PER_SECOND = 1
DEFAULT_SERVICE_PER_SECOND = 100

_SHORT_CODE = re.compile(r"[0-9]{5,6}")


def shared_storage(connection: redis.Redis, key_prefix: str = KEY_PREFIX) -> RedisStorage:
    """A ``limits`` Redis storage on ``connection``'s own pool.

    With a ``connection_pool`` the storage builds its client from that pool alone (documented in
    ``RedisStorage``); the URI is then used only to choose the redis (not valkey) client. Sharing
    the pool keeps one set of connection settings: host or unix socket, db number, timeouts.
    """
    return RedisStorage(
        "redis://", connection_pool=connection.connection_pool, key_prefix=key_prefix
    )


class SendRate:
    """Blocks senders' threads so each sender stays within its messages-per-second limit."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        key_prefix: str = KEY_PREFIX,
        max_sleep: float = MAX_SLEEP_SECONDS,
        jitter: float = JITTER_SECONDS,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(shared_storage(connection, key_prefix))
        self._max_sleep = max_sleep
        self._jitter = jitter

    def try_acquire(self, sender: str, per_second: int) -> bool:
        """Take one send for ``sender`` now if the last second holds fewer than ``per_second``."""
        return self._limiter.hit(_item(per_second), sender)

    def acquire(self, sender: str, per_second: int, *, timeout: float | None = None) -> bool:
        """Wait for one send for ``sender`` under ``per_second``; False if ``timeout`` passes.

        ``timeout`` is in seconds; ``None`` waits as long as it takes. A refused caller sleeps
        until the oldest grant in the window expires (see :meth:`_pause`), then tries again.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.try_acquire(sender, per_second):
            pause = self._pause(sender, per_second)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                pause = min(pause, left)
            time.sleep(pause)
        return True

    def _pause(self, sender: str, per_second: int) -> float:
        """Seconds to sleep before the next try: until the window frees a slot, plus jitter."""
        stats = self._limiter.get_window_stats(_item(per_second), sender)
        until_free = 0.0 if stats.remaining > 0 else stats.reset_time - time.time()
        return min(max(until_free, 0.0) + random.uniform(0.0, self._jitter), self._max_sleep)


def _item(per_second: int) -> RateLimitItemPerSecond:
    if per_second < 1:
        raise ValueError(f"a send rate must be at least 1 a second, not {per_second}")
    return RateLimitItemPerSecond(per_second)


def is_high_throughput(sender: str) -> bool:
    """Whether ``sender`` is a Messaging Service SID (``MG`` + 32 hex) or a short code (5-6
    digits), which providers let send far faster than a long code."""
    return bool(MESSAGING_SERVICE_SID.fullmatch(sender) or _SHORT_CODE.fullmatch(sender))


def limit_for(
    sender: str,
    configured: dict[str, int],
    default_long_code: int = DEFAULT_LONG_CODE_PER_SECOND,
    default_service: int = DEFAULT_SERVICE_PER_SECOND,
) -> int:
    """Messages per second allowed for ``sender``.

    The rule, first match wins:

    1. ``configured[sender]``, when the operator set one (exact sender string);
    2. ``default_service`` (100) for a Messaging Service SID or a short code;
    3. ``default_long_code`` (1) for anything else: an E.164 long code such as ``+15005550006``,
       and, to be safe, any sender we do not recognise.
    """
    if sender in configured:
        return configured[sender]
    if is_high_throughput(sender):
        return default_service
    return default_long_code
