"""``make run``: check the real fleet when Tuya credentials are set, else a simulated one.

Without credentials it starts the simulator in-process with a demo fleet, lists its devices
and checks them all, so a newcomer sees fwwatch's real output in seconds, with no account
and no network beyond loopback.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import TextIO

from .check import check_devices
from .cli.check import check_summary, render_check_table
from .cli.common import load_settings
from .tuya import TuyaClient, TuyaError, TuyaSettings

CREDENTIALS = ("TUYA_ACCESS_ID", "TUYA_ACCESS_SECRET")


async def show_fleet(settings: TuyaSettings, out: TextIO) -> int:
    """List the project's devices and check every one of them; exit status as ``check``."""
    started = time.monotonic()
    async with TuyaClient(settings) as tuya:
        devices = [device async for device in tuya.list_devices()]
        out.write(f"$ fwwatch devices\n{len(devices)} devices in the project\n\n")
        out.write(f"$ fwwatch check <the {len(devices)} device IDs>\n")
        results = await check_devices(tuya, [device.device_id for device in devices])
        requests = tuya.stats.requests
    out.write(render_check_table(results))
    out.write(check_summary(results, requests, time.monotonic() - started) + "\n")
    return 0 if all(result.ok for result in results) else 1


def run_demo(out: TextIO) -> int:
    """Start the simulator with the demo fleet, then list and check it."""
    from .simulator import (
        DEFAULT_ACCESS_ID,
        DEFAULT_ACCESS_SECRET,
        SimulatedCloud,
        demo_fleet,
        running_simulator,
    )

    fleet = demo_fleet()
    cloud = SimulatedCloud(fleet, access_id=DEFAULT_ACCESS_ID, access_secret=DEFAULT_ACCESS_SECRET)
    cloud.faults.set_latency(0.02)
    with running_simulator(cloud) as simulator:
        out.write(f"Simulated Tuya cloud on {simulator.url} with {len(fleet.devices)} devices.\n\n")
        settings = TuyaSettings(
            access_id=DEFAULT_ACCESS_ID,
            access_secret=DEFAULT_ACCESS_SECRET,
            endpoint=simulator.url,
        )
        status = asyncio.run(show_fleet(settings, out))
    out.write(
        "\nOne device is offline on purpose (exit status 1 means: some device failed).\n"
        "Try it yourself: `fwwatch simulate` in one terminal, the exports it prints and\n"
        "`fwwatch devices` / `fwwatch check ID...` in another. With TUYA_ACCESS_ID,\n"
        "TUYA_ACCESS_SECRET and TUYA_REGION set, `make run` checks your real fleet.\n"
    )
    return status


def main() -> int:
    """Entry point of ``python -m fwwatch.demo``."""
    if all(os.environ.get(name) for name in CREDENTIALS):
        print("Tuya credentials found: checking the real fleet.", flush=True)
        try:
            return asyncio.run(show_fleet(load_settings(), sys.stdout))
        except TuyaError as exc:
            print(f"fwwatch: {exc}", file=sys.stderr)
            return 2
    missing = " and ".join(CREDENTIALS)
    print(f"No Tuya credentials ({missing} unset): running the demo on a simulated cloud.")
    run_demo(sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
