"""The client's pacing: even spacing, one cut per throttling episode, landing near the limit."""

from __future__ import annotations

import asyncio

import pytest

from fwwatch.tuya.ratelimit import AdaptiveRateLimiter, full_jitter_backoff, slow_start_rate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_throttle_after_a_full_second_lands_just_under_what_was_accepted() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(200, slow_start=False, clock=clock)
    for _ in range(20):  # the server accepted 20 in the last second
        clock.now += 0.05
        limiter.on_success()
    limiter.on_throttled()
    assert limiter.rate == pytest.approx(19)


def test_many_throttled_calls_at_once_cut_the_rate_once() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(100, slow_start=False, clock=clock)
    for _ in range(30):
        limiter.on_throttled()
    assert limiter.rate == pytest.approx(80)
    clock.now += 1.5
    limiter.on_throttled()
    assert limiter.rate == pytest.approx(64)


def test_a_burst_of_errors_before_any_success_does_not_collapse_the_rate() -> None:
    limiter = AdaptiveRateLimiter(50, slow_start=False, clock=Clock())
    limiter.on_success()
    limiter.on_throttled()
    assert limiter.rate == pytest.approx(40)


def test_the_rate_climbs_back_slowly_near_the_rate_that_was_throttled() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(20, slow_start=False, clock=clock)
    limiter.on_throttled()  # 20 -> 16, throttled at 20
    for _ in range(100):
        limiter.on_success()
    fast = limiter.rate
    assert fast == pytest.approx(18)
    for _ in range(100):
        limiter.on_success()
    assert limiter.rate - fast < 2  # slower once within 5 % of 20
    assert limiter.rate <= 20


async def test_calls_are_spaced_evenly_at_the_rate() -> None:
    limiter = AdaptiveRateLimiter(1000)
    import time

    started = time.monotonic()
    for _ in range(50):
        await limiter.acquire()
    assert time.monotonic() - started >= 0.045


def test_full_jitter_stays_within_its_bounds() -> None:
    draws = [
        full_jitter_backoff(attempt, base_s=0.25, cap_s=8.0)
        for attempt in range(10)
        for _ in range(50)
    ]
    assert min(draws) >= 0
    assert max(draws) <= 8.0
    assert full_jitter_backoff(3, base_s=0.25, rng=lambda low, high: high) == 2.0


def test_a_ceiling_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        AdaptiveRateLimiter(0)


def test_just_over_the_limit_steps_down_a_little_not_a_fifth() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(40, slow_start=False, clock=clock)
    limiter.rate = 20.4
    for _ in range(20):
        clock.now += 0.05
        limiter.on_success()
    limiter.on_throttled()
    assert limiter.rate == pytest.approx(19.0)


def test_a_run_with_nothing_learned_starts_at_a_quarter_of_the_ceiling_and_at_least_10() -> None:
    assert AdaptiveRateLimiter(1000).rate == 250
    assert AdaptiveRateLimiter(40).rate == 10
    assert AdaptiveRateLimiter(8).rate == 8
    assert slow_start_rate(20) == 10


def test_slow_start_doubles_the_rate_about_every_half_second_of_successes() -> None:
    # Given a limiter in slow start at 10/s
    clock = Clock()
    limiter = AdaptiveRateLimiter(1000, clock=clock)
    limiter.rate = 10.0
    # When half a second's worth of requests (5) go through
    for _ in range(5):
        limiter.on_success()
    # Then the rate has about doubled (each success adds 2 ln 2)
    assert limiter.rate == pytest.approx(16.9, abs=0.1)


def test_the_first_throttle_ends_slow_start_just_under_what_was_accepted() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(40, clock=clock)
    for _ in range(20):
        clock.now += 0.05
        limiter.on_success()
    limiter.on_throttled()
    rate = limiter.rate
    assert rate == pytest.approx(19)
    for _ in range(10):
        limiter.on_success()
    assert limiter.rate - rate < 0.05  # creeping now, not doubling
    assert limiter.learned_limit == 20


def test_a_known_limit_starts_just_under_it_with_no_slow_start() -> None:
    limiter = AdaptiveRateLimiter(40, known_limit=20)
    assert limiter.rate == pytest.approx(19)
    for _ in range(100):
        limiter.on_success()
    assert limiter.rate < 19.3
    assert limiter.learned_limit == 20


def test_a_known_limit_never_lifts_the_rate_over_the_ceiling() -> None:
    assert AdaptiveRateLimiter(5, known_limit=20).rate == 5


def test_nothing_is_learned_when_the_server_never_throttled() -> None:
    limiter = AdaptiveRateLimiter(40)
    for _ in range(100):
        limiter.on_success()
    assert limiter.rate == 40
    assert limiter.learned_limit is None


def test_a_limit_passed_without_throttling_is_learned_higher() -> None:
    limiter = AdaptiveRateLimiter(40, known_limit=20)
    limiter.rate = 25.0
    limiter.on_success()
    assert limiter.learned_limit == pytest.approx(25.002)


async def test_calls_already_waiting_go_at_the_new_rate_after_a_cut() -> None:
    # Given 20 calls waiting for their slots at 100/s
    limiter = AdaptiveRateLimiter(100, slow_start=False)
    started = asyncio.get_running_loop().time()
    times: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        times.append(asyncio.get_running_loop().time() - started)

    tasks = [asyncio.create_task(call()) for _ in range(20)]
    await asyncio.sleep(0.03)
    # When the server throttles (a burst of errors: the rate drops by a fifth, to 80/s, and
    # a second-long window of at most 85 starts applies)
    limiter.on_throttled()
    limiter.rate = 5.0  # as if the server had accepted 5 a second: slots 0.2 s apart
    await asyncio.gather(*tasks)
    # Then the calls that were waiting did not go at the old pace: they were booked again
    late = [t for t in times if t > 0.05]
    assert len(late) >= 10
    assert late[-1] - late[0] > 0.5


def test_once_a_limit_is_known_no_second_holds_more_than_the_limit() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(40, known_limit=10, clock=clock)
    # Ten starts in the same instant, as after a burst: the eleventh waits for the window
    for _ in range(10):
        limiter._take(clock.now)
    limiter._next_slot = clock.now  # even spacing alone would let it go now
    assert limiter._slot_from(clock.now) >= clock.now + 0.99
