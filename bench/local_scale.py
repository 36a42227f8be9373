"""Local scale: `fwwatch run` over 10,000 and 50,000 simulated devices.

Each run is the real command in its own process (its peak memory measured by the kernel),
against the simulator in another process: 20 ms latency, no rate limit, TUYA_QPS=100000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, simulator, table, tuya_env


def run_once(url: str, state: Path) -> dict[str, float]:
    env = tuya_env(url, TUYA_QPS="100000", FWWATCH_STATE=str(state))
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "fwwatch.cli", "run", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, _, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    report = json.loads(output)
    return {
        "devices": report["devices"],
        "checked": report["checked"],
        "failed": len(report["failed"]),
        "wall_s": wall,
        "peak_mib": usage.ru_maxrss / 1024,
        "requests_per_device": report["tuya_requests"] / report["devices"],
        "devices_per_s": report["devices"] / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 and 3,000 devices")
    args = parser.parse_args()
    sizes = [(1_000, True), (3_000, False)] if args.quick else [(10_000, True), (50_000, False)]
    rows = []
    for size, again in sizes:
        print(f"local scale: {size} devices", file=sys.stderr)
        with simulator(size, latency_ms=20) as sim, tempfile.TemporaryDirectory() as folder:
            state = Path(folder) / "state.sqlite3"
            runs = [("first run (baseline: every item stored)", run_once(sim.url, state))]
            if again:
                runs.append(("second run (unchanged fleet)", run_once(sim.url, state)))
        for label, figures in runs:
            rows.append(
                (
                    f"{size:,}",
                    label,
                    f"{figures['wall_s']:.1f}",
                    f"{figures['devices_per_s']:.0f}",
                    f"{figures['peak_mib']:.0f}",
                    f"{figures['requests_per_device']:.3f}",
                    f"{figures['checked']:.0f} / {figures['failed']:.0f}",
                )
            )
    print("## Local scale: `fwwatch run`\n")
    print(
        "The real `fwwatch run --json` in its own process against the simulator in another "
        "(20 ms latency, no rate limit; `TUYA_QPS=100000`, default concurrency (from "
        "`TUYA_QPS`: 256), SQLite state in a temporary folder). The generated fleets have "
        "about 2 % offline devices (Tuya code 2001), reported as device errors. "
        f"Machine: {machine()}.\n"
    )
    print(
        table(
            (
                "devices",
                "run",
                "wall time (s)",
                "devices/s",
                "peak memory (MiB)",
                "Tuya requests per device",
                "checked / failed",
            ),
            rows,
        )
    )
    if args.quick:
        print("Quick run: the floor (10,000 devices well under a minute) is not evaluated.\n")
        return
    first = rows[0]
    verdict = "met" if float(first[2]) < 60 else "NOT met"
    print(f"Floor (10,000 devices well under a minute): **{verdict}** ({first[2]} s).\n")


if __name__ == "__main__":
    main()
