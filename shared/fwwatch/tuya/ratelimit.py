"""Client-side pacing: a shared, adaptive ceiling on requests per second, and backoff.

The limiter spaces requests evenly at ``rate`` per second (no bursts, so a server-side
one-second window never sees more than ``rate``).

- **Slow start.** A run against a limit nobody knows starts at a quarter of the ceiling (never
  below 10/s, the lowest limit Tuya documents for device reads) and doubles its rate about
  every half second while requests go through, up to the ceiling.
- **Throttled.** The first "too many requests" ends the slow start: the rate drops to just
  under what the server accepted in the last second (once per window, however many requests
  were rejected together). That accepted rate is the estimate of the server's limit.
- **Near the limit** the rate creeps up slowly, ten times slower within 5 % of the estimate,
  so the client settles just under the server's real limit. Once a limit is known, no more
  than ``rate / 0.95`` requests start in any sliding second: right after a cut, the server's
  window still holds the fast requests of the slow start, and even spacing alone would have
  them rejected until they age out.
- **Learned.** :attr:`AdaptiveRateLimiter.learned_limit` is the estimate a run ends with; given
  back as ``known_limit`` the next run starts just under it, with no slow start and almost no
  rejections.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Callable

__all__ = ["AdaptiveRateLimiter", "full_jitter_backoff", "slow_start_rate"]

#: The lowest per-API limit Tuya documents for device reads, in requests per second.
SAFE_START_RPS = 10.0
#: What each success adds to the rate in slow start: r successes a second double r in 0.5 s.
SLOW_START_STEP = 2 * math.log(2)


def slow_start_rate(ceiling: float) -> float:
    """Where a run with no learned limit starts: a quarter of the ceiling, at least 10/s."""
    return min(ceiling, max(SAFE_START_RPS, ceiling / 4))


def full_jitter_backoff(
    attempt: int,
    *,
    base_s: float = 0.25,
    cap_s: float = 8.0,
    rng: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): uniform in [0, min(cap, base * 2^n)]."""
    return rng(0.0, min(cap_s, base_s * 2 ** min(attempt, 60)))


class AdaptiveRateLimiter:
    """Paces calls to at most ``rate`` per second, adapting to the server's throttling."""

    def __init__(
        self,
        ceiling: float,
        *,
        known_limit: float | None = None,
        slow_start: bool = True,
        floor: float = 0.5,
        decrease: float = 0.8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling <= 0:
            raise ValueError("ceiling must be positive")
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self._decrease = decrease
        self._clock = clock
        self._next_slot = 0.0
        self._last_cut = -1e9
        # The estimate of the server's limit: learned in an earlier run, or when throttled.
        self._throttled_at: float | None = None
        if known_limit is not None and math.isfinite(known_limit) and known_limit > 0:
            self._throttled_at = known_limit
            self.rate = max(self.floor, min(ceiling, known_limit * 0.95))
            self._slow_start = False
        elif slow_start:
            self.rate = slow_start_rate(ceiling)
            self._slow_start = self.rate < ceiling
        else:
            self.rate = ceiling
            self._slow_start = False
        self._highest = self.rate
        self._recent_ok: deque[float] = deque()
        self._sent: deque[float] = deque()  # start times within the last second
        self._cuts = 0
        self.throttle_events = 0

    @property
    def learned_limit(self) -> float | None:
        """The server's limit as this run knows it, to start the next run with.

        The rate accepted when the server last throttled; if it never did, the highest rate
        that went through above an earlier estimate; ``None`` when nothing is known (the
        ceiling was never contested).
        """
        if self._throttled_at is None:
            return None
        return max(self._throttled_at, self._highest)

    async def acquire(self) -> None:
        """Wait for this call's slot.

        Slots are booked at most a moment ahead: a call whose slot would be further away
        waits and looks again, so that a rise of the rate (slow start) applies to calls
        already waiting. A slot booked before a cut is booked again at the new rate: the
        calls already waiting would otherwise go out at the old pace, into the server's "no".
        """
        while True:
            now = self._clock()
            slot = self._slot_from(now)
            horizon = max(0.1, 2.0 / self.rate)
            if slot - now > horizon:
                await asyncio.sleep(horizon)
                continue
            self._take(slot)
            booked_in = self._cuts
            if slot <= now:
                return
            await asyncio.sleep(slot - now)
            if booked_in == self._cuts:
                return

    def _slot_from(self, now: float) -> float:
        slot = max(now, self._next_slot)
        if self._throttled_at is not None:
            slot = self._within_window(slot)
        return slot

    def _take(self, slot: float) -> None:
        self._log_start(slot)
        self._next_slot = slot + 1.0 / self.rate

    def _log_start(self, slot: float) -> None:
        sent = self._sent
        sent.append(slot)
        while sent and sent[0] <= slot - 1.0:
            sent.popleft()

    def _within_window(self, slot: float) -> float:
        """The first moment from ``slot`` on when a sliding second has room for one more."""
        sent = self._sent
        while sent and sent[0] <= slot - 1.0:
            sent.popleft()
        room = max(1, math.ceil(self.rate / 0.95))
        if len(sent) >= room:
            slot = sent[len(sent) - room] + 1.0
        return slot

    def on_throttled(self) -> None:
        """The server said "too many requests": slow down (once per window)."""
        now = self._clock()
        self.throttle_events += 1
        # All calls in flight when the limit was hit come back throttled together; cut once.
        if now - self._last_cut < max(1.0, 2.0 / self.rate):
            return
        self._last_cut = now
        self._slow_start = False
        accepted = self._accepted_last_second(now)
        # What the server accepted in the last second is the best estimate of its limit (just
        # over it: a small step down; far over it: one step to it). A handful of successes,
        # as in a burst of errors at the start, says nothing yet.
        trusted = accepted >= 5
        self._throttled_at = float(accepted) if trusted else self.rate
        self._highest = 0.0
        target = min(self.rate, accepted * 0.95) if trusted else self.rate * self._decrease
        self.rate = max(self.floor, target)
        # Every slot booked at the old rate is booked again (see acquire).
        self._cuts += 1
        self._sent = deque(t for t in self._sent if t <= now)
        self._next_slot = now + 1.0 / self.rate

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
        if self._slow_start:
            # r successes a second, each adding 2 ln 2: the rate doubles about every half
            # second, slowly enough for a server's one-second window to say "too many" while
            # the overshoot is a request or two.
            self.rate = min(self.ceiling, self.rate + SLOW_START_STEP)
            return
        # Each success adds 0.02/s, so the rate grows about 2 % per second (r successes a
        # second, each +0.02), ten times slower near the server's estimated limit.
        step = 0.02
        if self._throttled_at is not None and self.rate >= 0.95 * self._throttled_at:
            step /= 10
        self.rate = min(self.ceiling, self.rate + step)
        self._highest = max(self._highest, self.rate)
