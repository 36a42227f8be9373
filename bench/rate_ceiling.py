"""How close fwwatch gets to a server-side rate limit it was not told about.

The simulator (its own process, 50 ms per answer) allows 20 requests per second per API, in a
sliding one-second window (the token grant is another API with its own window). fwwatch is
configured for twice that (``TuyaSettings(qps=40)``, default backoff) and checks N devices at
concurrency 16: it has to find the real limit from the 1110 answers and settle under it.

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


async def check_under_limit(url: str, ids: list[str]) -> Run:
    settings = TuyaSettings(
        access_id=ACCESS_ID,
        access_secret=ACCESS_SECRET,
        endpoint=url,
        qps=CLIENT_QPS,
        max_connections=CONCURRENCY,
    )
    run = Run(seconds=0.0)
    async with TuyaClient(settings) as client:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 devices instead of 1,000")
    args = parser.parse_args()
    devices = 300 if args.quick else 1000

    with simulator(devices, latency_ms=LATENCY_MS, rate_limit=SERVER_LIMIT) as sim:
        fleet = httpx.get(f"{sim.url}/_sim/fleet", timeout=30).json()
        ids = [str(device["device_id"]) for device in fleet["devices"]]
        log(f"simulator {sim.url}: {len(ids)} devices, {SERVER_LIMIT:.0f} requests/s per API")
        sim.reset_stats()
        log(f"checking at qps={CLIENT_QPS:.0f} (about {len(ids) / SERVER_LIMIT:.0f} s)...")
        run = asyncio.run(check_under_limit(sim.url, ids))
        server: dict[str, Any] = sim.stats()
    log(f"done in {run.seconds:.1f} s; simulator: {server}")

    by_api: dict[str, int] = dict(server.get("by_api", {}))
    by_code: dict[str, int] = dict(server.get("by_code", {}))
    firmware_requests = by_api.get(FIRMWARE_API, 0)
    rejected = int(server.get("rejected", 0))
    answered = len(run.answered_at)
    overall = answered / run.seconds
    steady_span = run.seconds - WARMUP_S
    steady = answered_between(run, WARMUP_S, run.seconds) / steady_span if steady_span > 0 else 0
    rejected_share = rejected / firmware_requests if firmware_requests else 0.0
    codes = ", ".join(f"{code}: {count}" for code, count in sorted(by_code.items()))
    offline = ", ".join(f"{count} x {code}" for code, count in sorted(run.device_errors.items()))

    summary: list[list[object]] = [
        ["devices", len(ids)],
        ["run time", f"{run.seconds:.1f} s"],
        ["answered firmware calls / s, whole run",
         f"{overall:.2f} ({overall / SERVER_LIMIT:.1%} of {SERVER_LIMIT:.0f}/s)"],
        [f"answered firmware calls / s, after the first {WARMUP_S:.0f} s",
         f"{steady:.2f} ({steady / SERVER_LIMIT:.1%} of {SERVER_LIMIT:.0f}/s)"],
        ["firmware requests the simulator received", firmware_requests],
        ["rejected by the simulator (`rejected`)",
         f"{rejected} ({rejected_share:.1%} of firmware requests)"],
        ["simulator outcomes (`by_code`)", codes],
        ["grants", server.get("grants", 0)],
        ["devices checked", run.checked],
        ["device-level answers (the fleet's offline devices)", offline or "0"],
        ["devices failed (retries ran out, or any other error)", len(run.failed)],
        ["client retries by reason", ", ".join(f"{k}: {v}" for k, v in run.retries.items()) or "0"],
        ["limiter: throttle signals / final `limiter.rate`",
         f"{run.throttle_events} / {run.final_rate:.2f} per s"],
    ]  # fmt: skip
    trace_every = 2.5 if args.quick else 5.0
    met = overall >= 0.9 * SERVER_LIMIT and rejected_share < 0.05 and not run.failed
    misses = []
    if overall < 0.9 * SERVER_LIMIT:
        misses.append(f"{overall / SERVER_LIMIT:.1%} of the ceiling")
    if rejected_share >= 0.05:
        misses.append(f"{rejected_share:.1%} rejected")
    if run.failed:
        misses.append(f"{len(run.failed)} devices failed")

    out = [
        "## Rate ceiling: an unannounced 20 requests/s limit",
        "",
        f"The simulator (own process, {LATENCY_MS:.0f} ms per answer) allows "
        f"{SERVER_LIMIT:.0f} firmware requests per second (sliding one-second window; the "
        "token grant is counted apart) and answers 1110 beyond; fwwatch runs "
        f"`check_devices(TuyaClient(TuyaSettings(qps={CLIENT_QPS:.0f}, "
        f"max_connections={CONCURRENCY})), ids, concurrency={CONCURRENCY})` with the default "
        "backoff and must find the limit itself. An answered call is one the server let "
        "through: a firmware, or the 2001 of an offline device (both count against the "
        "limit). The rate is measured over the whole run and after the first "
        f"{WARMUP_S:.0f} s; rejections come from the simulator's own stats. Measured on "
        f"{machine()}.",
        "",
        table(["measure", "value"], summary),
        f"The limiter over time (sampled every {SAMPLE_EVERY_S} s, shown every "
        f"{trace_every:g} s; `limiter.rate` at the end of each span):",
        "",
        table(
            ["seconds", "limiter.rate", "answered / s", "1110 answers"],
            trace_rows(run, trace_every),
        ),
        'The limiter\'s cuts (each time a 1110 answer lowered `limiter.rate`; "answered" is '
        "what the server let through in the second before): "
        + "; ".join(
            f"at {cut.t:.1f} s {cut.before:.2f} -> {cut.after:.2f} "
            f"(answered {answered_between(run, cut.t - 1.0, cut.t)})"
            for cut in run.cuts
        )
        + ("." if run.cuts else "none."),
        "",
        f"Floor (>= 90% of the {SERVER_LIMIT:.0f}/s ceiling over the whole run, < 5% rejected, "
        f"no device failed): **{'met' if met else 'not met'}**"
        + (f" ({'; '.join(misses)})." if misses else "."),
    ]
    if run.failed:
        out.append("")
        out.append("Failed devices: " + "; ".join(f"{k}: {v}" for k, v in run.failed.items()))
    print("\n".join(out))


if __name__ == "__main__":
    main()
