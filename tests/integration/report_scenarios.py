"""A fleet's story for the report tests, told by real runs in both modes.

Three runs: the baseline; firmware 3.1.0 for the lamps (news); then one lamp installs it,
another fails to, and a sensor goes offline. Two lamps are named to attack the page. Local
mode runs ``fwwatch run`` against the simulator; AWS mode runs the stack's handlers on moto
(:class:`~tests.integration.pipeline_harness.Pipeline`).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from fwwatch.cli import main
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice, SimulatedCloud

LAMP = "lampprod0001"
SENSOR = "sensprod0001"
RELEASE = "3.1.0"
HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = '<img src=x onerror="alert(2)">'
#: A product name that would end the page's JSON data and open a comment, if let through.
HOSTILE_PRODUCT = 'Smart lamp</script><!--<svg onload="alert(3)">'

LAMP_NAMES = ["Kitchen lamp", HOSTILE_SCRIPT, HOSTILE_IMG, "Hall lamp"]
SENSOR_NAMES = ["Door sensor", "Window sensor"]


def report_fleet() -> Fleet:
    """Four lamps on 3.0.0 (main module) and two Zigbee sensors on 2.0.0."""
    lamps = [
        FleetDevice(
            device_id=f"lamp{n:02d}",
            name=name,
            product_id=LAMP,
            product_name=HOSTILE_PRODUCT,
            category="dj",
            channels=[FleetChannel(channel=0, current_version="3.0.0")],
        )
        for n, name in enumerate(LAMP_NAMES)
    ]
    sensors = [
        FleetDevice(
            device_id=f"sens{n:02d}",
            name=name,
            product_id=SENSOR,
            product_name="Door sensor Z",
            category="mcs",
            channels=[FleetChannel(channel=3, current_version="2.0.0")],
        )
        for n, name in enumerate(SENSOR_NAMES)
    ]
    return Fleet(devices=[*lamps, *sensors])


def tell_the_story(cloud: SimulatedCloud, run: Callable[[], None]) -> None:
    """The three runs, and what the cloud does between them."""
    run()  # the baseline
    cloud.publish_release(LAMP, 0, RELEASE)
    run()  # the release is news
    cloud.mark_installed("lamp00")
    cloud.mark_failed("lamp01")
    cloud.set_device_error("sens01", 2001)
    run()


def run_locally(capsys: pytest.CaptureFixture[str]) -> None:
    """``fwwatch run`` once (the CLI already pointed at the simulator)."""
    status = main(["run", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report


def run_quietly() -> None:
    """``fwwatch run`` once, its output kept (a module's fixture has no capsys)."""
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        status = main(["run"])
    assert status == 0, said.getvalue()


def write_report(*args: str) -> str:
    """``fwwatch report ARGS``; what it said."""
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        status = main(["report", *args])
    assert status == 0, said.getvalue()
    return said.getvalue()


#: What the state holds after the story, as the report shows it.
EXPECTED_SUMMARY: dict[str, Any] = {
    "devices": 6,
    "products": 2,
    "up_to_date": 2,  # lamp00 (installed) and sens00
    "on_offer": 2,  # lamp02, lamp03
    "updating": 0,
    "failed": 1,  # lamp01
    "offline": 1,  # sens01
    "not_checked": 0,
    "device_errors": 0,
}
EXPECTED_STATUSES = {
    "lamp00": "up to date",
    "lamp01": "failed",
    "lamp02": "update on offer",
    "lamp03": "update on offer",
    "sens00": "up to date",
    "sens01": "offline",
}
