"""``FWWATCH_HEARTBEAT_URL``: each cycle tells a monitor how it went, and never more than that."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fwwatch.cli import main
from fwwatch.simulator import Fleet
from tests.integration.conftest import point_cli_at
from tests.integration.fakes import HeartbeatMonitor, serving_heartbeat_monitor
from tests.integration.fleets import lamps

pytestmark = pytest.mark.integration

#: The check's key, as healthchecks.io puts it in the URL: it must never be logged.
KEY = "5f0c2f9e-8a1b-4c3d-9e7f-0a1b2c3d4e5f"


def fleet() -> Fleet:
    return lamps(4)


@pytest.fixture
def env(make_simulator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    simulator = make_simulator(fleet=fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    return simulator


@pytest.fixture
def monitor(monkeypatch: pytest.MonkeyPatch, env: Any) -> Iterator[HeartbeatMonitor]:
    with serving_heartbeat_monitor(f"/ping/{KEY}") as monitor:
        monkeypatch.setenv("FWWATCH_HEARTBEAT_URL", monitor.url)
        yield monitor


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_run_that_checked_every_device_pings_the_url(monitor: HeartbeatMonitor) -> None:
    assert main(["run"]) == 0
    assert monitor.requests == [("GET", f"/ping/{KEY}")]


def test_a_run_with_devices_it_could_not_check_pings_fail(
    env: Any, monitor: HeartbeatMonitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one device whose answers keep failing for longer than its retries
    monkeypatch.setenv("TUYA_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("FWWATCH_MAX_ATTEMPTS", "1")
    env.cloud.faults.inject_http_status(503, count=None, path_contains="lamp02", for_s=30)
    # When the fleet is checked
    status = main(["run"])
    # Then the run exits 1, and the monitor hears of a failure
    assert status == 1
    assert monitor.requests == [("GET", f"/ping/{KEY}/fail")]


def test_a_run_that_failed_pings_fail(
    monitor: HeartbeatMonitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a wrong secret: the cycle stops at its first request
    monkeypatch.setenv("TUYA_ACCESS_SECRET", "not-the-secret")
    assert main(["run"]) == 2
    assert monitor.requests == [("GET", f"/ping/{KEY}/fail")]


@pytest.mark.parametrize("trouble", ["answers 404", "is down"])
def test_a_heartbeat_that_fails_is_logged_without_its_key_and_changes_nothing(
    trouble: str,
    monitor: HeartbeatMonitor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="httpx")  # its log of each request, as with -vv
    if trouble == "is down":
        where = f"http://127.0.0.1:{a_closed_port()}"
        monkeypatch.setenv("FWWATCH_HEARTBEAT_URL", f"{where}/ping/{KEY}")
    else:
        monitor.status = 404
        where = monitor.url.removesuffix(f"/ping/{KEY}")
    # When a run that checked every device cannot tell the monitor
    status = main(["-vv", "run"])
    # Then it exits as it would have, with a warning naming the monitor's host only
    assert status == 0
    (warning,) = [r for r in caplog.records if r.name == "fwwatch.local.heartbeat"]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().startswith(f"the heartbeat to {where} was not received: ")
    captured = capsys.readouterr()
    assert KEY not in caplog.text + captured.out + captured.err
    if trouble == "answers 404":
        assert "HTTP 404" in warning.getMessage()
        assert f"{where}/<hidden heartbeat>" in caplog.text  # httpx's line, its path hidden


def test_watch_pings_after_each_cycle(monitor: HeartbeatMonitor, tmp_path: Path) -> None:
    # Given `fwwatch watch` in another process
    process = subprocess.Popen(
        [sys.executable, "-m", "fwwatch.cli", "watch", "--every", "10s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    try:
        # When its first cycle is over
        received = monitor.received.wait(30)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    # Then the monitor heard of its success, and the watch stopped cleanly
    assert received, output
    assert monitor.requests == [("GET", f"/ping/{KEY}")]
    assert process.returncode == 0, output
    assert KEY not in output


@pytest.mark.parametrize(
    ("spelling", "query"),
    [
        pytest.param(lambda url: url.replace("127.0.0.1", "LOCALHOST"), "", id="host in capitals"),
        pytest.param(lambda url: url + "?note=every hour", "?note=every%20hour", id="a space"),
    ],
)
def test_httpx_logs_no_key_however_the_url_is_spelled(
    spelling: Callable[[str], str],
    query: str,
    monitor: HeartbeatMonitor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a URL that httpx rewrites before it logs it (host in lower case, a space escaped)
    caplog.set_level(logging.INFO, logger="httpx")  # its log of each request, as with -vv
    monkeypatch.setenv("FWWATCH_HEARTBEAT_URL", spelling(monitor.url))
    # When a run pings it
    assert main(["-vv", "run"]) == 0
    # Then the monitor heard, and httpx's line of the request shows no key
    assert monitor.requests == [("GET", f"/ping/{KEY}{query}")]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert "<hidden heartbeat>" in line
    assert KEY not in caplog.text
