"""``make run``: a cycle on the real fleet when Tuya credentials are set, else the demo.

The demo needs no account, no network beyond loopback and no AWS: it starts the simulator
in-process with a demo fleet, runs a first cycle (the silent baseline), publishes a
firmware release in the simulator, and runs a second cycle that shows the notification,
a third through a bad moment and, once two plugs installed the release and one failed to,
a fourth; then it writes the fleet report of what the four runs stored.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from ..local.runner import RunReport, run_cycle
from ..local.store_sqlite import SqliteStore
from ..notify import ConsoleNotifier
from ..tuya import TuyaClient, TuyaSettings
from . import main as cli_main
from .check import render_check_table
from .common import environment
from .report import local_fleet_report, write_report

#: The variables that make credentials, each as one of its ways (the secret may be a file).
CREDENTIALS = (("TUYA_ACCESS_ID",), ("TUYA_ACCESS_SECRET", "TUYA_ACCESS_SECRET_FILE"))


def has_credentials(env: dict[str, str]) -> bool:
    """Whether ``env`` gives Tuya credentials, the secret as a value or as a file."""
    return all(any(env.get(name, "").strip() for name in ways) for ways in CREDENTIALS)


async def _cycle(settings: TuyaSettings, store: SqliteStore, out: TextIO) -> RunReport:
    async with TuyaClient(settings) as tuya:
        return await run_cycle(tuya, store, [ConsoleNotifier(out)])


#: Where ``make run`` writes the demo's fleet report (in the current directory).
DEMO_REPORT = Path("fwwatch-report.html")


def run_demo(out: TextIO, report_path: Path = DEMO_REPORT) -> int:
    """Baseline, release, second cycle with its notification, a bad moment, installs and a
    failure; then the fleet report, written to ``report_path``. All against the simulator."""
    from ..check import check_devices
    from ..simulator import SimulatedCloud, demo_fleet, running_simulator

    fleet = demo_fleet()
    cloud = SimulatedCloud(fleet)
    cloud.faults.set_latency(0.02)
    plug = next(device for device in fleet.devices if device.channels[0].channel == 0)
    plugs = [
        device
        for device in fleet.devices
        if device.product_id == plug.product_id and device.error is None
    ]
    with running_simulator(cloud) as simulator, tempfile.TemporaryDirectory() as folder:
        settings = TuyaSettings(
            access_id=simulator.access_id,
            access_secret=simulator.access_secret,
            endpoint=simulator.url,
        )
        out.write(f"Simulated Tuya cloud on {simulator.url}: {len(fleet.devices)} devices.\n\n")
        with SqliteStore(Path(folder) / "state.sqlite3") as store:
            out.write("$ fwwatch run            # first cycle: a silent baseline\n")
            out.write(asyncio.run(_cycle(settings, store, out)).summary_line() + "\n\n")

            channel = plug.channels[0]
            version = _next_version(channel.current_version)
            cloud.publish_release(plug.product_id, channel.channel, version)
            out.write(
                f"(the simulator publishes firmware {version} for {plug.product_name}, "
                f"channel {channel.channel})\n\n"
            )
            out.write("$ fwwatch run            # second cycle: the release is news\n")
            report = asyncio.run(_cycle(settings, store, out))
            out.write(report.summary_line() + "\n\n")

            out.write(
                "(a bad moment: every Tuya endpoint answers 503 for 2 s, and the token is "
                "revoked)\n\n"
            )
            cloud.revoke_tokens()
            cloud.faults.inject_http_status(503, count=None, for_s=2.0)
            out.write("$ fwwatch run            # third cycle: retried, nothing lost\n")
            report = asyncio.run(_cycle(settings, store, out))
            out.write(report.summary_line() + "\n\n")

            ids = [device.device_id for device in fleet.devices][:6]
            out.write("$ fwwatch check " + " ".join(ids[:2]) + " ...\n")

            async def check() -> str:
                async with TuyaClient(settings) as tuya:
                    return render_check_table(await check_devices(tuya, ids))

            out.write(asyncio.run(check()))

            installed, failed = plugs[:2], plugs[2:3]
            for device in installed:
                cloud.mark_installed(device.device_id)
            for device in failed:
                cloud.mark_failed(device.device_id)
            out.write(
                f"\n({' and '.join(d.name for d in installed)} install {version}; "
                f"{' and '.join(d.name for d in failed)} fails to)\n\n"
            )
            out.write("$ fwwatch run            # fourth cycle: the installs and the failure\n")
            report = asyncio.run(_cycle(settings, store, out))
            out.write(report.summary_line() + "\n\n")

            size = write_report(report_path, local_fleet_report(store))
    out.write(
        "One device of the demo fleet is offline on purpose: it is reported, never fatal.\n"
        "Next: `fwwatch simulate` serves this cloud on a port for your own experiments;\n"
        "with TUYA_ACCESS_ID, TUYA_ACCESS_SECRET and TUYA_REGION set (or in .env),\n"
        "`make run` runs a cycle on your real fleet.\n\n"
    )
    out.write(
        f"$ fwwatch report --out {report_path}    # the fleet report of the four runs\n"
        f"Wrote {report_path} ({size // 1024} KB): the fleet's versions, the release's "
        "adoption, the failed update and the offline device, in one page.\n"
        f"Open {report_path.resolve().as_uri()}\n"
    )
    return 0


def _next_version(version: str) -> str:
    parts = version.split(".")
    if parts and parts[-1].isdigit():
        parts[-1] = str(int(parts[-1]) + 1)
        return ".".join(parts)
    return version + ".1"


def main() -> int:
    """Entry point of ``python -m fwwatch.cli.demo`` (``make run``)."""
    env = environment()
    if has_credentials(env):
        print("Tuya credentials found: running a cycle on the real fleet (fwwatch run).")
        return cli_main(["run"])
    print("No Tuya credentials (TUYA_ACCESS_ID/TUYA_ACCESS_SECRET): running the demo.")
    return run_demo(sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
