"""How close fwwatch gets to a server-side rate limit it was not told about, and how much
of it a second run, starting from the limit the first one learned, still gets rejected.

The simulator (its own process, 50 ms per answer) allows 20 requests per second per API, in a
sliding one-second window (the token grant is another API with its own window). fwwatch is
configured for twice that (``TuyaSettings(qps=40)``, default backoff) and checks N devices at
concurrency 16: the first run slow-starts and finds the real limit from the 1110 answers; the
second run starts from ``client.learned_rate_limit`` of the first (``known_rate_limit``), as
``fwwatch run`` does with the limit kept in its state. Both for 300 and 1,000 devices.

A side task samples ``client.limiter.rate`` every 0.5 s; every answered firmware call (a
firmware, or the 2001 of an offline device: both passed the server's limit) is timestamped
through ``check_devices``'s ``on_result``.

Usage: ``.venv/bin/python bench/rate_ceiling.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from _common import ACCESS_ID, ACCESS_SECRET, machine, simulator, table

from fwwatch.check import CheckResult, check_devices
from fwwatch.tuya import TuyaClient, TuyaDeviceError, TuyaSettings

SERVER_LIMIT = 20.0
CLIENT_QPS = 40.0
CONCURRENCY = 16
LATENCY_MS = 50.0
WARMUP_S = 5.0
SAMPLE_EVERY_S = 0.5
FIRMWARE_API = "GET /v2.0/cloud/thing/{device_id}/firmware"
THROTTLE_CODE = 1110


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Sample:
    """The client's state at one moment of the run."""

    t: float
    rate: float
    requests: int
    throttled: int


@dataclass
class Cut:
    """One time the limiter lowered its rate after a throttled answer."""

    t: float
    before: float
    after: float


@dataclass
class Run:
    """What one checking run did, seen from the client."""

    seconds: float
    answered_at: list[float] = field(default_factory=list)  # seconds since the start
    checked: int = 0
    device_errors: Counter[int] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)  # device -> why (not device-level)
    samples: list[Sample] = field(default_factory=list)
    cuts: list[Cut] = field(default_factory=list)
    final_rate: float = 0.0
    throttle_events: int = 0
    client_requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    learned: float | None = None
    server: dict[str, Any] = field(default_factory=dict)

    @property
    def firmware_requests(self) -> int:
        return int(dict(self.server.get("by_api", {})).get(FIRMWARE_API, 0))

    @property
    def rejected(self) -> int:
        return int(self.server.get("rejected", 0))

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.firmware_requests if self.firmware_requests else 0.0


async def check_under_limit(url: str, ids: list[str], known_limit: float | None = None) -> Run:
    settings = TuyaSettings(
        access_id=ACCESS_ID,
        access_secret=ACCESS_SECRET,
        endpoint=url,
        qps=CLIENT_QPS,
        max_connections=CONCURRENCY,
    )
    run = Run(seconds=0.0)
    async with TuyaClient(settings, known_rate_limit=known_limit) as client:
        start = time.monotonic()

        def sample() -> None:
            run.samples.append(
                Sample(
                    t=time.monotonic() - start,
                    rate=client.limiter.rate,
                    requests=client.stats.requests,
                    throttled=client.stats.error_codes[THROTTLE_CODE],
                )
            )

        async def sampler() -> None:
            while True:
                sample()
                await asyncio.sleep(SAMPLE_EVERY_S)

        def on_result(result: CheckResult) -> None:
            if result.ok or isinstance(result.error, TuyaDeviceError):
                run.answered_at.append(time.monotonic() - start)
            if result.ok:
                run.checked += 1
            elif isinstance(result.error, TuyaDeviceError):
                run.device_errors[result.error.code or 0] += 1
            elif result.error is not None:
                run.failed[result.device_id] = f"{type(result.error).__name__}: {result.error}"

        # Watch (not change) the limiter's reaction to each throttled answer.
        limiter = client.limiter
        react = limiter.on_throttled

        def on_throttled() -> None:
            before = limiter.rate
            react()
            if limiter.rate < before:
                run.cuts.append(Cut(time.monotonic() - start, before, limiter.rate))

        limiter.on_throttled = on_throttled  # type: ignore[method-assign]
        sampling = asyncio.create_task(sampler())
        try:
            await check_devices(client, ids, concurrency=CONCURRENCY, on_result=on_result)
        finally:
            sampling.cancel()
        run.seconds = time.monotonic() - start
        sample()
        run.final_rate = client.limiter.rate
        run.throttle_events = client.limiter.throttle_events
        run.client_requests = client.stats.requests
        run.retries = Counter(client.stats.retries)
        run.learned = client.learned_rate_limit
    return run


def answered_between(run: Run, start: float, end: float) -> int:
    return bisect.bisect_right(run.answered_at, end) - bisect.bisect_right(run.answered_at, start)


def sample_at(run: Run, t: float) -> Sample:
    """The last sample taken at or before ``t`` (the first one if none)."""
    times = [sample.t for sample in run.samples]
    return run.samples[max(0, bisect.bisect_right(times, t + 1e-6) - 1)]


def trace_rows(run: Run, every_s: float) -> list[list[object]]:
    """Per span of ``every_s`` seconds: the limiter's rate at its end, what the server let
    through meanwhile, and the 1110 answers the client got."""
    rows: list[list[object]] = []
    begin = 0.0
    while begin < run.seconds - 1e-6:
        end = min(begin + every_s, run.seconds)
        first, last = sample_at(run, begin), sample_at(run, end)
        accepted = answered_between(run, begin, end) / (end - begin)
        rows.append([
            f"{begin:.1f}-{end:.1f}", f"{last.rate:.2f}", f"{accepted:.1f}",
            last.throttled - first.throttled if begin > 0 else last.throttled,
        ])  # fmt: skip
        begin = end
    return rows


def measured_run(sim: Any, ids: list[str], known_limit: float | None) -> Run:
    """One run with fresh simulator stats, after the server's window has emptied."""
    time.sleep(1.5)
    sim.reset_stats()
    run = asyncio.run(check_under_limit(sim.url, ids, known_limit))
    run.server = sim.stats()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 300 devices")
    args = parser.parse_args()
    sizes = (100, 300) if args.quick else (300, 1000)

    runs: dict[tuple[int, str], Run] = {}
    with simulator(max(sizes), latency_ms=LATENCY_MS, rate_limit=SERVER_LIMIT) as sim:
        fleet = httpx.get(f"{sim.url}/_sim/fleet", timeout=30).json()
        all_ids = [str(device["device_id"]) for device in fleet["devices"]]
        log(f"simulator {sim.url}: {len(all_ids)} devices, {SERVER_LIMIT:.0f} requests/s per API")
        for size in sizes:
            ids = all_ids[:size]
            log(f"{size} devices, first run at qps={CLIENT_QPS:.0f} (about {size / 20:.0f} s)...")
            first = runs[(size, "first")] = measured_run(sim, ids, None)
            log(f"  {first.rejected} rejected, learned {first.learned}")
            second = runs[(size, "second")] = measured_run(sim, ids, first.learned)
            log(f"  second run: {second.rejected} rejected")

    rows: list[list[object]] = []
    for (size, which), run in runs.items():
        answered = len(run.answered_at)
        overall = answered / run.seconds
        learned = f"{run.learned:.2f}" if run.learned is not None else "none"
        rows.append([
            size, which, f"{run.seconds:.1f}",
            f"{overall:.2f} ({overall / SERVER_LIMIT:.1%})",
            f"{run.rejected} of {run.firmware_requests} ({run.rejected_share:.2%})",
            len(run.failed), learned,
        ])  # fmt: skip
    big = max(sizes)
    run = runs[(big, "first")]
    trace_every = 2.5 if args.quick else 5.0
    first_ok = all(runs[(size, "first")].rejected_share < 0.02 for size in sizes)
    second_ok = all(
        runs[(size, "second")].rejected_share <= runs[(size, "first")].rejected_share
        and runs[(size, "second")].rejected_share < 0.01
        for size in sizes
    )
    failed = sum(len(r.failed) for r in runs.values())
    steady_span = run.seconds - WARMUP_S
    steady = answered_between(run, WARMUP_S, run.seconds) / steady_span if steady_span > 0 else 0

    out = [
        "## Rate ceiling: an unannounced 20 requests/s limit, first and second run",
        "",
        f"The simulator (own process, {LATENCY_MS:.0f} ms per answer) allows "
        f"{SERVER_LIMIT:.0f} firmware requests per second (sliding one-second window; the "
        "token grant is counted apart) and answers 1110 beyond; fwwatch runs "
        f"`check_devices(TuyaClient(TuyaSettings(qps={CLIENT_QPS:.0f}, "
        f"max_connections={CONCURRENCY}), known_rate_limit=...), ids, "
        f"concurrency={CONCURRENCY})` with the default backoff. The first run knows nothing "
        "and slow-starts; the second starts from the limit the first learned "
        "(`client.learned_rate_limit`), as `fwwatch run` does with the limit kept in its "
        "state. An answered call is one the server let through: a firmware, or the 2001 of "
        "an offline device (both count against the limit). Rejections come from the "
        f"simulator's own stats, reset before each run. Measured on {machine()}.",
        "",
        table(
            [
                "devices",
                "run",
                "seconds",
                "answered / s (of 20/s)",
                "rejected",
                "devices failed",
                "limit learned (/s)",
            ],
            rows,
        ),
        f"The first {big}-device run after its first {WARMUP_S:.0f} s: {steady:.2f} answered "
        f"calls/s ({steady / SERVER_LIMIT:.1%} of the limit). Its limiter over time (sampled "
        f"every {SAMPLE_EVERY_S} s, shown every {trace_every:g} s; `limiter.rate` at the end "
        "of each span):",
        "",
        table(
            ["seconds", "limiter.rate", "answered / s", "1110 answers"],
            trace_rows(run, trace_every),
        ),
        'Its cuts (each time a 1110 answer lowered `limiter.rate`; "answered" is what the '
        "server let through in the second before): "
        + "; ".join(
            f"at {cut.t:.1f} s {cut.before:.2f} -> {cut.after:.2f} "
            f"(answered {answered_between(run, cut.t - 1.0, cut.t)})"
            for cut in run.cuts
        )
        + ("." if run.cuts else "none."),
        "",
        f"Floors: first run under 2 % rejected: **{'met' if first_ok else 'not met'}**; "
        f"second run under 1 % and no more than the first: "
        f"**{'met' if second_ok else 'not met'}**; devices failed: {failed}.",
    ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
