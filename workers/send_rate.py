"""Per-sender send rate for bulk campaigns, shared by every worker process and thread.

Providers cap each sender (a phone number or a messaging service) at N messages a second, and
they count what *arrives*: Twilio answers 429 past it. Campaigns are sent by several RQ worker
processes, each with several threads, so the budget must live in one place all of them see: the
app's Redis.

The scheme is a scheduler, not a gate (GCRA with no burst, "virtual scheduling"): one Lua
script keeps, per sender, the earliest time the next send may start. A caller *reserves* the
next slot in one round trip and learns how long to wait for it; the slot after it is one
interval later. So:

- sends are spaced evenly, ``1/N`` apart, and no window of one second holds more than N
  grants, whatever the number of processes; a window of grants cannot fill in a burst at its
  start, so a few milliseconds of jitter between grant and arrival (the HTTP client, a thread
  waiting for the GIL) cannot push N+1 arrivals into one second at the provider either, once
  the spacing carries a small ``margin`` (default 2.5%);
- the clock is Redis's (``TIME`` inside the script): workers on several hosts need no
  synchronised clocks;
- nobody polls: a caller sleeps exactly until its slot, so Redis sees one command per send;
- the key holds the sender only, not the rate, so processes configured differently still share
  one budget (the stricter spacing wins for the sends it schedules);
- a caller never reserves more than ``max_ahead`` seconds into the future: waits stay short,
  and a paused campaign wastes at most that much of the budget.

Why not the ``limits`` library (which we used first): its moving window stamps grants with each
client's clock before the round trip, grants a whole window's worth at once (so arrivals can
bunch up to 2N in a second at the provider), and makes a refused caller poll Redis.
"""

from __future__ import annotations

import threading
import time

import redis

from crm.send_limits import (  # noqa: F401 - the rules live in crm; re-exported for workers
    DEFAULT_LONG_CODE_PER_SECOND,
    DEFAULT_SERVICE_PER_SECOND,
    DEFAULT_WHATSAPP_PER_SECOND,
    WHATSAPP_KEY,
    is_high_throughput,
    limit_for,
    rate_key,
)

KEY_PREFIX = "crm:send-rate"
DEFAULT_MARGIN = 0.025  # spacing 2.5% wider than 1/N: room for jitter between grant and arrival
DEFAULT_MAX_AHEAD = 2.0  # seconds a caller may reserve into the future
# A caller that wakes this much after its slot (the process stalled: a GIL queue, a pause)
# gives the slot up and takes another: sent late, it would bunch with the next callers' sends
# and crowd one second at the provider. Half the margin's slack over a second.
DEFAULT_TOLERANCE = 0.01


# KEYS[1] the sender's key; ARGV[1] the spacing and ARGV[2] the furthest reservation, both in
# microseconds. Returns {1, wait} (reserved: start in `wait` us) or {0, wait} (not reserved:
# the next free slot is `wait` us away, past the limit). Times are microseconds since the
# epoch, below 2^53, so exact in Lua's doubles; written with %d, not Lua's 14-digit default.
_RESERVE = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now, next_free)
local wait = start - now
if wait > tonumber(ARGV[2]) then
  return {0, wait}
end
local after = start + interval
local ttl_ms = math.floor((after - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', after), 'PX', ttl_ms)
return {1, wait}
"""


class SendRate:
    """Spaces each sender's sends to stay within its messages-per-second limit."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        key_prefix: str = KEY_PREFIX,
        margin: float = DEFAULT_MARGIN,
        max_ahead: float = DEFAULT_MAX_AHEAD,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        self._script = connection.register_script(_RESERVE)
        self._prefix = key_prefix
        self._margin = margin
        self._max_ahead = max_ahead
        self.tolerance = tolerance
        self.late = 0  # slots given up because their caller woke too late (for benches)

    def reserve(self, sender: str, per_second: int) -> tuple[bool, float]:
        """Reserve ``sender``'s next slot: (True, seconds until it starts), or (False, seconds
        until a slot is within reach) when the next free one is past ``max_ahead``."""
        interval_us = int(1_000_000 * (1.0 + self._margin) / _checked(per_second))
        reserved, wait_us = self._script(
            keys=[f"{self._prefix}:{sender}"], args=[interval_us, int(self._max_ahead * 1_000_000)]
        )
        return bool(reserved), int(wait_us) / 1_000_000

    def acquire(
        self,
        sender: str,
        per_second: int,
        *,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> bool:
        """Wait for one slot of ``sender``'s; False when ``timeout`` seconds pass first or
        ``stop`` is set (a slot already reserved then goes unused: the limit is never
        exceeded, at worst a little of it is left unused)."""
        return self.slot(sender, per_second, timeout=timeout, stop=stop) is not None

    def slot(
        self,
        sender: str,
        per_second: int,
        *,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> float | None:
        """Wait for one slot of ``sender``'s and return when it began (``time.monotonic()``),
        so the caller can drop a send that would leave later than ``slot + tolerance``
        (:attr:`tolerance`); None when ``timeout`` passes first or ``stop`` is set."""
        stop = stop or threading.Event()
        left = float("inf") if timeout is None else timeout
        while True:
            asked = time.monotonic()
            reserved, wait = self.reserve(sender, per_second)
            if reserved and wait <= left:
                if wait > 0 and stop.wait(wait):
                    return None
                if time.monotonic() - (asked + wait) <= self.tolerance:
                    return asked + wait
                self.late += 1  # too late for its slot: take the next free one
                left -= time.monotonic() - asked
                continue
            # Not reserved: sleep until the next free slot is half the reach away, then reserve.
            pause = max(wait - self._max_ahead / 2, 0.0) if not reserved else wait
            if pause >= left or stop.wait(pause):
                return None
            left -= pause


def _checked(per_second: int) -> int:
    if per_second < 1:
        raise ValueError(f"a send rate must be at least 1 a second, not {per_second}")
    return per_second
