"""Client-side pacing: a shared, adaptive ceiling on requests per second, and backoff.

The limiter spaces requests evenly at ``rate`` per second (no bursts, so a server-side
one-second window never sees more than ``rate``). When the server throttles, the rate drops
multiplicatively (once per window, however many requests were rejected together); while
requests succeed it creeps back up, more slowly near the rate that was last throttled, so
the client settles just under the server's real limit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable

__all__ = ["AdaptiveRateLimiter", "full_jitter_backoff"]


def full_jitter_backoff(
    attempt: int,
    *,
    base_s: float = 0.25,
    cap_s: float = 8.0,
    rng: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): uniform in [0, min(cap, base * 2^n)]."""
    return rng(0.0, min(cap_s, base_s * 2**attempt))


class AdaptiveRateLimiter:
    """Paces calls to at most ``rate`` per second, adapting to the server's throttling."""

    def __init__(
        self,
        ceiling: float,
        *,
        floor: float = 0.5,
        decrease: float = 0.8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling <= 0:
            raise ValueError("ceiling must be positive")
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.rate = ceiling
        self._decrease = decrease
        self._clock = clock
        self._next_slot = 0.0
        self._last_cut = -1e9
        self._throttled_at: float | None = None  # the rate that was last throttled
        self._lock = asyncio.Lock()
        self._recent_ok: deque[float] = deque()
        self.throttle_events = 0

    async def acquire(self) -> None:
        """Wait for this call's slot."""
        async with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self.rate
        delay = slot - now
        if delay > 0:
            await asyncio.sleep(delay)

    def on_throttled(self) -> None:
        """The server said "too many requests": slow down (once per window)."""
        now = self._clock()
        self.throttle_events += 1
        # All calls in flight when the limit was hit come back throttled together; cut once.
        if now - self._last_cut < max(1.0, 2.0 / self.rate):
            return
        self._throttled_at = self.rate
        self._last_cut = now
        accepted = self._accepted_last_second(now)
        # What the server accepted in the last second is the best estimate of its limit (just
        # over it: a small step down; far over it: one step to it). A handful of successes,
        # as in a burst of errors at the start, says nothing yet.
        trusted = accepted >= 5
        target = min(self.rate, accepted * 0.95) if trusted else self.rate * self._decrease
        self.rate = max(self.floor, target)
        self._next_slot = max(self._next_slot, now + 1.0 / self.rate)

    def _accepted_last_second(self, now: float) -> int:
        while self._recent_ok and self._recent_ok[0] < now - 1.0:
            self._recent_ok.popleft()
        return len(self._recent_ok)

    def on_success(self) -> None:
        """A call went through: probe upward, gently when close to the last throttled rate."""
        now = self._clock()
        self._recent_ok.append(now)
        if len(self._recent_ok) > 4 * self.ceiling + 100:
            self._accepted_last_second(now)
        if self.rate >= self.ceiling:
            return
        # Each success adds 0.02/s, so the rate grows about 2 % per second (r successes a
        # second, each +0.02), ten times slower near the rate that was last throttled.
        step = 0.02
        if self._throttled_at is not None and self.rate >= 0.95 * self._throttled_at:
            step /= 10
        self.rate = min(self.ceiling, self.rate + step)
