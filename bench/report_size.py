"""The fleet report of 10,000 devices: how long it takes to build, how big it is, how fast
it opens.

The state is made with the SQLite store's own writes: the simulator's generated fleet of
10,000 devices (its products, versions, about 10 % offered an update and 2 % offline) as
a run stores it, then 120 runs (a month at four a day), each finished as a run finishes
(which tallies the versions): two releases roll out, a few percent of the devices offered
one installing it each run, a few failing. Then ``fwwatch report`` is timed (reading the
state, building the report, writing the page), in its own process, three times; and the
page is opened in headless Chromium (Debian's, when installed) three times, timed to the
load event (the device table drawn by then).

Usage: ``.venv/bin/python bench/report_size.py [--quick]`` (1,000 devices, 20 runs).
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import REPO, machine, table

sys.path.insert(0, str(REPO / "shared"))

from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.simulator import generate_fleet
from fwwatch.state import DEVICE_LEVEL_CHANNEL, ChannelState, StoredError

START = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)
#: The releases that roll out during the month: (product name, channel, version, run).
RELEASES = [("Smart Plug 16A", 0, "1.3.0", 10), ("Zigbee Gateway", 0, "1.7.0", 50)]


def make_state(path: Path, devices: int, runs: int) -> None:
    """A state as ``runs`` runs over a generated fleet of ``devices`` would leave it."""
    fleet = generate_fleet(devices, seed=0)
    rng = random.Random(1)
    states: dict[tuple[str, int], ChannelState] = {}
    for device in fleet.devices:
        names = {
            "device_name": device.name,
            "product_id": device.product_id,
            "product_name": device.product_name,
        }
        error = StoredError(code=device.error, msg="device is offline") if device.error else None
        states[(device.device_id, DEVICE_LEVEL_CHANNEL)] = ChannelState(
            device_id=device.device_id,
            channel=DEVICE_LEVEL_CHANNEL,
            channel_name="device",
            first_seen=START,
            last_changed=START,
            last_error=error,
            **names,
        )
        for channel in device.channels:
            offered = channel.has_update
            states[(device.device_id, channel.channel)] = ChannelState(
                device_id=device.device_id,
                channel=channel.channel,
                channel_name=channel.type_desc,
                current_version=channel.current_version,
                target_version=channel.target_version,
                upgrade_status=channel.upgrade_status,
                update_available=offered,
                first_seen=START,
                last_changed=START,
                **names,
            )
    with SqliteStore(path) as store:
        changed = list(states.values())
        for run in range(runs):
            now = START + timedelta(hours=6 * run)
            for product, number, version, at_run in RELEASES:
                if run == at_run:
                    for key, state in states.items():
                        if state.product_name == product and state.channel == number:
                            states[key] = state.model_copy(
                                update={
                                    "target_version": version,
                                    "upgrade_status": 1,
                                    "update_available": True,
                                    "last_changed": now,
                                }
                            )
                            changed.append(states[key])
            for key, state in states.items():
                if not state.update_available or rng.random() > 0.06:
                    continue
                if rng.random() < 0.1:  # a failed update: the offer stays
                    update = {"upgrade_status": 4, "update_available": False}
                else:
                    update = {
                        "current_version": state.target_version,
                        "target_version": None,
                        "upgrade_status": 3,
                        "update_available": False,
                    }
                states[key] = state.model_copy(update={**update, "last_changed": now})
                changed.append(states[key])
            run_id = f"run{run:04d}"
            store.start_run(run_id, now)
            store.save_batch(
                states=changed,
                events=[],
                checks=[(device.device_id, device.error is None, None) for device in fleet.devices],
                notifiers=[],
                run_id=run_id,
                now=now,
            )
            store.finish_run(run_id, {}, now=now + timedelta(minutes=1))
            changed = []


def time_report(state: Path, out: Path) -> float:
    """``fwwatch report`` in a process of its own; seconds from start to exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "shared")}
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "fwwatch.cli", "report", "--state", str(state), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    return time.monotonic() - started


def time_opening(page: Path, times: int) -> list[float] | None:
    """Milliseconds from navigation to the load event, in headless Chromium (each time a
    fresh page); ``None`` without Chromium or Playwright."""
    executable = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if executable is None:
        return None
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    found: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=args)
        for _ in range(times):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            tab = context.new_page()
            tab.goto(page.as_uri(), wait_until="load")
            found.append(tab.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
            rows = tab.evaluate("document.querySelectorAll('#device-table tbody tr').length")
            assert rows > 0, "the device table was not drawn"
            context.close()
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 devices, 20 runs")
    args = parser.parse_args()
    devices, runs = (1_000, 20) if args.quick else (10_000, 120)
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "state.sqlite3"
        page = Path(folder) / "fwwatch-report.html"
        print(f"report size: a state of {devices} devices and {runs} runs", file=sys.stderr)
        started = time.monotonic()
        make_state(state, devices, runs)
        made_s = time.monotonic() - started
        print(f"   made in {made_s:.0f} s; timing the report", file=sys.stderr)
        builds = [time_report(state, page) for _ in range(3)]
        size = page.stat().st_size
        packed = len(gzip.compress(page.read_bytes()))
        with SqliteStore(state) as store:
            channels = sum(1 for s in store.load_all() if s.channel >= 0)
            tallies = len(store.version_history())
        opened = time_opening(page, 3)
    build_s = statistics.median(builds)
    open_ms = statistics.median(opened) if opened else None
    print("## The fleet report: `fwwatch report`\n")
    print(
        f"A state of {devices:,} generated devices ({channels:,} device channels) and "
        f"{runs} runs of history ({tallies:,} version tallies), made with the SQLite store's "
        "own writes; two releases roll out over the month. `fwwatch report` in its own "
        "process (Python start-up included), median of 3; the page opened in headless "
        f"Chromium, median of 3, to its load event. Machine: {machine()}.\n"
    )
    rows = [
        ("`fwwatch report` (read the state, build, write the page)", f"{build_s:.2f} s"),
        ("page size", f"{size / 1024 / 1024:.2f} MB ({packed / 1024:.0f} KB gzipped)"),
        (
            "opening it in Chromium (to the load event)",
            f"{open_ms:.0f} ms" if open_ms is not None else "not measured (no Chromium)",
        ),
    ]
    print(table(("measure", "figure"), rows))
    if args.quick:
        print("Quick run: the floor (10,000 devices: under 3 MB, open in a second) is not")
        print("evaluated.\n")
        return
    small = size < 3 * 1024 * 1024
    quick = open_ms is not None and open_ms < 1000
    verdict = "met" if small and quick else "not met"
    print(
        f"Floor (10,000 devices: a page under 3 MB that opens in a second): **{verdict}** "
        f"({size / 1024 / 1024:.2f} MB, "
        f"{f'{open_ms:.0f} ms' if open_ms is not None else 'not opened'}).\n"
    )


if __name__ == "__main__":
    main()
