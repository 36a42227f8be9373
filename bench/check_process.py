"""`fwwatch check` as a user runs it, whole process, against the official SDK's plain loop.

The simulator (its own process) answers after 100 ms, with no rate limit; fwwatch is told
its quota is 1,000 requests a second (``TUYA_QPS=1000``) and has no learned limit (a fresh
state file): it slow-starts at a quarter of that and sizes its connections from it. The
time is the whole ``python -m fwwatch.cli check --json ID...`` process, interpreter start
and imports included. The SDK's loop (``TuyaOpenAPI.connect()``, then one ``get()`` per
device) also runs as a process of its own; it is linear in the devices, so it checks the
first 300 of them and its rate is devices over its whole process time.

Usage: ``.venv/bin/python bench/check_process.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import ACCESS_ID, ACCESS_SECRET, machine, simulator, table, tuya_env

LATENCY_MS = 100.0
QPS = "1000"
FLOOR = 30.0

SDK_LOOP = """
import sys
from tuya_connector import TuyaOpenAPI
url, access_id, secret, *ids = sys.argv[1:]
api = TuyaOpenAPI(url, access_id, secret)
api.connect()
answered = 0
for device_id in ids:
    answer = api.get(f"/v2.0/cloud/thing/{device_id}/firmware")
    if answer and (answer.get("success") or answer.get("code") == 2001):
        answered += 1
print(answered)
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{command[:4]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 devices, SDK on 100")
    args = parser.parse_args()
    devices = 300 if args.quick else 1000
    sdk_devices = 100 if args.quick else 300
    rounds = 1 if args.quick else 3

    with simulator(devices, latency_ms=LATENCY_MS) as sim:
        fleet = httpx.get(f"{sim.url}/_sim/fleet", timeout=30).json()
        ids = [str(device["device_id"]) for device in fleet["devices"]]
        fw_runs = []
        for round_no in range(1, rounds + 1):
            with tempfile.TemporaryDirectory() as state:
                env = tuya_env(sim.url, TUYA_QPS=QPS, FWWATCH_STATE=str(Path(state) / "s.db"))
                sim.reset_stats()
                seconds, out = timed(
                    [sys.executable, "-m", "fwwatch.cli", "check", "--json", *ids], env
                )
            report = json.loads(out)
            answered = sum(1 for item in report if item["outcome"] != "not_checked")
            fw_runs.append((seconds, answered, sim.stats()))
            log(f"round {round_no}: fwwatch check: {answered} devices in {seconds:.2f} s")
        sim.reset_stats()
        sdk_seconds, sdk_out = timed(
            [sys.executable, "-c", SDK_LOOP, sim.url, ACCESS_ID, ACCESS_SECRET, *ids[:sdk_devices]]
        )
        sdk_answered = int(sdk_out.strip() or 0)
        log(f"SDK loop: {sdk_answered} devices in {sdk_seconds:.1f} s")

    fw_runs.sort(key=lambda run: run[0])
    seconds, answered, stats = fw_runs[len(fw_runs) // 2]  # the median run
    fw_rate = answered / seconds
    sdk_rate = sdk_answered / sdk_seconds
    ratio = fw_rate / sdk_rate
    times = ", ".join(f"{run[0]:.2f}" for run in fw_runs)
    rows = [
        ["`fwwatch check --json` (TUYA_QPS=1000)", answered, f"{seconds:.2f} ({times})",
         f"{fw_rate:.0f}", f"{ratio:.1f}x"],
        ["SDK plain loop", sdk_answered, f"{sdk_seconds:.2f}", f"{sdk_rate:.1f}", "1x"],
    ]  # fmt: skip
    requests = stats.get("requests", 0)
    out = [
        "## `fwwatch check`, whole process, against the SDK's plain loop",
        "",
        f"{devices} simulated devices (simulator in its own process, {LATENCY_MS:.0f} ms per "
        "answer, no rate limit). fwwatch: `python -m fwwatch.cli check --json` with all "
        f"{devices} IDs, `TUYA_QPS=1000`, a fresh state file (no learned limit), timed as a "
        f"whole process, median of {rounds}. The SDK: `connect()` then one `get()` per device, "
        f"as a process of its own over the first {sdk_devices} devices (its rate does not "
        "depend on the fleet's size). Answered devices count (firmware, or the 2001 of an "
        f"offline device). fwwatch sent {requests} requests for {devices} devices. "
        f"Measured on {machine()}.",
        "",
        table(["contender", "devices answered", "seconds", "devices/s", "vs SDK loop"], rows),
        f"Floor (>= {FLOOR:.0f}x the SDK's plain loop, whole process): "
        f"**{'met' if ratio >= FLOOR else 'not met'}** ({ratio:.1f}x).",
    ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
