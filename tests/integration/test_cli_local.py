"""``fwwatch run``, ``watch``, ``status`` and ``notify-test`` against the simulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fwwatch.cli import main
from fwwatch.simulator import Fleet
from tests.integration.conftest import point_cli_at
from tests.integration.fleets import LAMP_PRODUCT, lamps

pytestmark = pytest.mark.integration

PRODUCT = LAMP_PRODUCT


def fleet() -> Fleet:
    return lamps(5)


@pytest.fixture
def env(make_simulator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    simulator = make_simulator(fleet=fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    return simulator


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    status = main(["run", "--json", *args])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


def test_run_json_reports_the_cycle(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, baseline, _ = run_json(capsys)
    env.cloud.publish_release(PRODUCT, 0, "3.1.0")
    status, report, console = run_json(capsys)
    assert status == 0
    assert set(report) >= {
        "run_id",
        "devices",
        "checked",
        "failed",
        "events",
        "notifications",
        "duration_s",
        "tuya_requests",
    }
    assert (baseline["events"], report["devices"], report["checked"], report["failed"]) == (
        [],
        5,
        5,
        [],
    )
    assert report["events"][0] == {
        "type": "update_available",
        "device_id": "lamp00",
        "channel": 0,
        "product_id": PRODUCT,
        "previous_version": "3.0.0",
        "current_version": "3.0.0",
        "target_version": "3.1.0",
    }
    assert report["notifications"]["console"]["sent"] == 1
    assert "3.1.0 available - Smart lamp" in console  # the console notifier, on stderr


def test_an_offline_device_is_reported_and_the_run_exits_0(
    env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a device that is offline, as some always are in a real fleet
    env.cloud.set_device_error("lamp03", 2001)
    # When a cron run checks the fleet
    status, report, _ = run_json(capsys)
    # Then the device is reported, and the run succeeded: every device answered
    assert status == 0
    assert report["failed"][0]["device_id"] == "lamp03"
    assert report["failed"][0]["code"] == 2001
    assert report["failed"][0]["outcome"] == "device_error"
    assert (report["device_errors"], report["not_checked"]) == (1, 0)


def test_run_exits_1_when_a_device_could_not_be_checked(
    env: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one device whose answers keep failing for longer than a call's retry budget
    monkeypatch.setenv("TUYA_RETRY_ATTEMPTS", "2")
    env.cloud.faults.inject_http_status(503, count=None, path_contains="lamp03", for_s=30)
    # When the fleet is checked
    status, report, _ = run_json(capsys)
    # Then that device is not checked, with the cause, the others are, and the exit is 1
    assert status == 1
    assert report["checked"] == 4
    assert report["failed"] == [
        {
            "device_id": "lamp03",
            "outcome": "not_checked",
            "code": None,
            "msg": report["failed"][0]["msg"],
        }
    ]
    assert "HTTP 503" in report["failed"][0]["msg"]


def test_run_prints_a_summary_line_for_cron(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("fwwatch run ")
    assert "checked 5 of 5 devices, 0 device errors, 0 not checked, 0 new events" in last


def test_a_hostile_devices_file_is_refused_before_any_request(
    env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = tmp_path / "devices.txt"
    devices.write_text("lamp00\n# a comment\nlamp01\n../v1.0/token\n")
    status = main(["run", "--devices", str(devices)])
    err = capsys.readouterr().err
    assert status == 2
    assert "devices.txt:4" in err
    assert env.cloud.stats.snapshot()["requests"] == 0


def test_devices_given_on_the_command_line_limit_the_run(
    env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status, report, _ = run_json(capsys, "--devices", "lamp01,lamp02")
    assert (status, report["devices"], report["checked"]) == (0, 2, 2)


def test_status_shows_versions_and_pending_updates(
    env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["run"])
    env.cloud.publish_release(PRODUCT, 0, "3.1.0")
    env.cloud.set_device_error("lamp04", 2001)
    main(["run"])
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["devices"] == 5
    assert len(status["pending_updates"]) == 4
    assert [e["device_id"] for e in status["errors"]] == ["lamp04"]
    assert main(["status"]) == 0
    assert "4 updates pending, 1 in error" in capsys.readouterr().out


def test_status_without_state_says_what_to_do(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 2
    assert "fwwatch run" in capsys.readouterr().err


def test_notify_test_says_which_notifiers_worked(
    env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FWWATCH_JSONL", str(tmp_path / "news.jsonl"))
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", "9")  # nothing listens there
    monkeypatch.setenv("NOTIFY_EMAIL_TO", "ops@example.com")
    status = main(["notify-test"])
    out = capsys.readouterr().out
    assert status == 1
    assert "console: ok" in out
    assert "jsonl: ok" in out
    assert "email: FAILED" in out


def test_half_configured_email_is_a_usage_error(
    env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMTP_HOST", "smtp.example.com")
    assert main(["run"]) == 2
    assert "NOTIFY_EMAIL_TO" in capsys.readouterr().err


def test_watch_stops_cleanly_on_sigterm(env: Any, tmp_path: Path) -> None:
    # Given `fwwatch watch` running its cycles in another process
    process = subprocess.Popen(
        [sys.executable, "-m", "fwwatch.cli", "watch", "--every", "10s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("fwwatch run "):
            break
    # When it receives SIGTERM while waiting for the next cycle
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=15)
    # Then it stops at once, cleanly, with its state intact
    assert process.returncode == 0, "".join(lines) + rest
    assert "fwwatch watch: stopped." in rest
    assert main(["status", "--json"]) == 0
