"""How long a 200,000-device run takes on AWS at TuyaQps=20 (the default), listing plus checks.

**Derived from measured parts.** A whole run at 20 requests/s lasts hours, so the parts are
measured side by side for a minute, each with the code and the share of the ceiling the
stack gives it, against the simulator in its own process answering in 100 ms (about what a
Tuya data centre answers from an AWS region near it), all three on one shared token as on
AWS:

- the scheduler's listing (:func:`fwwatch.fanout.fan_out` over the Tuya client, 20 devices
  a page) at the scheduler's share, ``listing_qps(20)``;
- two checker instances (the default ``CheckerMaxConcurrency``), each running the core's
  ``check_batch`` 16 devices at a time at its share, ``CheckerSettings.qps_per_instance``.

The run's time is then derived: the listing keeps ahead of the checks, so the run ends when
the checks end (the checkers' pace over 200,000 devices), and at the earliest when the
last listed message is checked. The scheduler's 300 s invocations, each keeping
``HAND_OFF_S`` plus a page's longest retries in reserve, give the number of listing steps.

Usage: ``.venv/bin/python bench/run_200k.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from _common import ACCESS_ID, ACCESS_SECRET, machine, simulator, table

from fwwatch.aws.settings import HAND_OFF_S, SchedulerSettings, listing_qps
from fwwatch.cycle import check_batch
from fwwatch.fanout import ListingCheckpoint, fan_out
from fwwatch.state import ChannelKey, ChannelState
from fwwatch.tuya import THING_PAGE_SIZE, InMemoryTokenStore, TuyaClient, TuyaSettings

FLEET = 200_000
CEILING = 20.0
CHECKERS = 2  # the template's CheckerMaxConcurrency default
CHECK_CONCURRENCY = 16  # CheckerSettings.check_concurrency default
DEVICES_PER_MESSAGE = 100  # the template's DevicesPerMessage default
LATENCY_MS = 100.0
SCHEDULER_TIMEOUT_S = 300  # template.yaml's SchedulerFunction Timeout
SIMULATED_DEVICES = 6_000  # enough for a minute of listing and of checks, apart


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class NoState:
    """A store that holds nothing: every device is first seen (the Tuya calls are the same)."""

    def get_items(self, keys: Iterable[ChannelKey]) -> dict[ChannelKey, ChannelState]:
        return {}


@dataclass
class Measured:
    """What the three did side by side."""

    seconds: float
    pages: int
    checked: int
    served: int  # requests the simulator answered meanwhile, every API, grants included

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds

    @property
    def checked_per_s(self) -> float:
        return self.checked / self.seconds


async def side_by_side(url: str, ids: list[str], window_s: float) -> tuple[float, int, int]:
    """List and check for ``window_s`` seconds: (seconds, pages listed, devices checked)."""
    tokens = InMemoryTokenStore()  # the control table's shared token, in memory
    checker_qps = (CEILING - listing_qps(CEILING)) / CHECKERS

    def client(qps: float) -> TuyaClient:
        settings = TuyaSettings(
            access_id=ACCESS_ID, access_secret=ACCESS_SECRET, endpoint=url, qps=qps
        )
        return TuyaClient(settings, token_store=tokens)

    start = time.monotonic()
    deadline = start + window_s
    pages = checked = 0

    def another_page() -> bool:
        nonlocal pages
        pages += 1
        return time.monotonic() < deadline

    async def lister() -> None:
        async with client(listing_qps(CEILING)) as tuya:
            await fan_out(
                tuya,
                run_id="bench",
                start=ListingCheckpoint(),
                per_message=DEVICES_PER_MESSAGE,
                send=lambda _: None,
                save=lambda _: None,
                go_on=another_page,
            )

    async def checker(share: list[str]) -> None:
        nonlocal checked
        async with client(checker_qps) as tuya:
            # A message's devices, cut finer so that the window ends on time.
            for first in range(0, len(share), CHECK_CONCURRENCY):
                if time.monotonic() >= deadline:
                    return
                batch = await check_batch(
                    tuya,
                    share[first : first + CHECK_CONCURRENCY],
                    NoState(),
                    concurrency=CHECK_CONCURRENCY,
                )
                checked += len(batch.results)

    half = len(ids) // 2
    await asyncio.gather(lister(), checker(ids[:half]), checker(ids[half:]))
    return time.monotonic() - start, pages, checked


def duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 20 s window instead of 60 s")
    args = parser.parse_args()
    window_s = 20.0 if args.quick else 60.0
    with simulator(SIMULATED_DEVICES, latency_ms=LATENCY_MS) as sim:
        fleet = httpx.get(f"{sim.url}/_sim/fleet", timeout=30).json()
        ids = [str(device["device_id"]) for device in fleet["devices"]]
        # The checkers take devices from the end, the listing starts at the beginning.
        to_check = ids[len(ids) // 2 :]
        log(f"listing and two checkers side by side for {window_s:.0f} s...")
        sim.reset_stats()
        seconds, pages, checked = asyncio.run(side_by_side(sim.url, to_check, window_s))
        served = int(str(sim.stats()["requests"]))
    measured = Measured(seconds, pages, checked, served)

    settings = SchedulerSettings.model_fields
    reserve_s = (
        float(settings["tuya_retry_budget_s"].default)
        + float(settings["tuya_timeout_s"].default)
        + HAND_OFF_S
    )
    total_pages = FLEET // THING_PAGE_SIZE + 1  # and the empty page that ends the listing
    listing_s = total_pages / measured.pages_per_s
    checking_s = FLEET / measured.checked_per_s
    last_message_s = DEVICES_PER_MESSAGE / (measured.checked_per_s / CHECKERS)
    run_s = max(checking_s, listing_s + last_message_s)
    pages_per_step = (SCHEDULER_TIMEOUT_S - reserve_s) * measured.pages_per_s
    steps = math.ceil(total_pages / pages_per_step)
    checker_share = (CEILING - listing_qps(CEILING)) / CHECKERS
    # Before: one invocation listed everything, one page after another at the full
    # ceiling, before it enqueued anything: bound by the answers' latency.
    one_invocation_pages = min(CEILING, 1000 / LATENCY_MS) * SCHEDULER_TIMEOUT_S
    requests_per_1000 = 1000 + 1000 / THING_PAGE_SIZE

    print("## A 200,000-device run at 20 requests/s\n")
    print(
        "**Derived from measured parts**, not a whole run (which lasts hours): the scheduler's "
        "listing and two checker instances ran side by side for "
        f"{measured.seconds:.0f} s against the simulator (its own process, "
        f"{LATENCY_MS:.0f} ms an answer, one shared token), each with the code and the share "
        "of `TuyaQps=20` the stack gives it; the run's time is derived from their paces. "
        f"Machine: {machine()}.\n"
    )
    rows = [
        (
            "listing (scheduler)",
            f"{listing_qps(CEILING):.2f}",
            f"{measured.pages_per_s:.2f} pages/s ({measured.pages_per_s * 20:.1f} devices/s)",
            f"{total_pages:,} pages: {duration(listing_s)}, in {steps} invocations of "
            f"{SCHEDULER_TIMEOUT_S} s ({pages_per_step:.0f} pages each)",
        ),
        (
            f"checks ({CHECKERS} checkers)",
            f"{CHECKERS} x {checker_share:.2f}",
            f"{measured.checked_per_s:.2f} devices/s",
            f"{FLEET:,} devices: {duration(checking_s)}",
        ),
        (
            "all requests (grants included)",
            f"{CEILING:.0f}",
            f"{measured.served / measured.seconds:.2f} requests/s answered",
            f"{requests_per_1000:,.0f} Tuya requests per 1,000 devices",
        ),
    ]
    print(table(("part", "share of 20 req/s", "measured", "at 200,000 devices"), rows))
    print(
        f"The run takes about **{duration(run_s)}** (the checks end last; the listing is done "
        f"{duration(max(0.0, checking_s - listing_s))} before them), each device checked once. "
        "Before, one scheduler invocation listed the whole project a page after another "
        f"(at most {one_invocation_pages:,.0f} pages, {one_invocation_pages * 20:,.0f} "
        f"devices, within its {SCHEDULER_TIMEOUT_S} s) before it enqueued anything: a "
        "200,000-device run timed out and was lost."
    )


if __name__ == "__main__":
    main()
