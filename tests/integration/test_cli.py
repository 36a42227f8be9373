"""The ``fwwatch`` command against the simulator: output, JSON shape and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fwwatch.cli import build_parser, main
from fwwatch.simulator import DEFAULT_ACCESS_ID, DEFAULT_ACCESS_SECRET, demo_fleet

pytestmark = pytest.mark.integration


@pytest.fixture
def demo(make_simulator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    simulator = make_simulator(fleet=demo_fleet())
    for name in list(__import__("os").environ):
        if name.startswith("TUYA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TUYA_ENDPOINT", simulator.url)
    monkeypatch.setenv("TUYA_ACCESS_ID", DEFAULT_ACCESS_ID)
    monkeypatch.setenv("TUYA_ACCESS_SECRET", DEFAULT_ACCESS_SECRET)
    return simulator


def healthy_ids(simulator: Any) -> list[str]:
    return [d.device_id for d in simulator.cloud.fleet.devices if d.error is None]


def failing_id(simulator: Any) -> str:
    return next(d.device_id for d in simulator.cloud.fleet.devices if d.error is not None)


def test_check_json_lists_devices_in_the_order_given(
    demo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = list(reversed(healthy_ids(demo)))[:4]
    status = main(["check", "--json", *ids])
    printed = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [entry["device_id"] for entry in printed] == ids
    first = printed[0]
    assert first["error"] is None
    channel = first["channels"][0]
    for key in (
        "channel",
        "channel_name",
        "current_version",
        "target_version",
        "upgrade_status",
        "update_available",
    ):
        assert key in channel


def test_check_exits_1_when_a_device_failed_and_reports_it(
    demo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = failing_id(demo)
    status = main(["check", "--json", healthy_ids(demo)[0], bad])
    printed = json.loads(capsys.readouterr().out)
    assert status == 1
    assert printed[1]["device_id"] == bad
    assert set(printed[1]["error"]) == {"code", "msg", "tid"}
    assert printed[1]["error"]["code"] == 2001


def test_check_is_not_stopped_by_notifier_settings_it_does_not_use(
    demo: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given e-mail half configured (for `run`; `check` sends nothing)
    monkeypatch.setenv("SMTP_HOST", "mail.example.com")
    monkeypatch.delenv("NOTIFY_EMAIL_TO", raising=False)
    monkeypatch.setenv("FWWATCH_STATE", str(tmp_path / "state.sqlite3"))
    # When a device is checked
    status = main(["check", healthy_ids(demo)[0]])
    # Then it is checked all the same
    assert status == 0
    assert "Checked 1 of 1 devices" in capsys.readouterr().out


def test_check_table_shows_versions_and_a_summary(
    demo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["check", *healthy_ids(demo)])
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0].split() == [
        "DEVICE",
        "CHANNEL",
        "INSTALLED",
        "OFFERED",
        "STATUS",
        "UPDATE",
    ]
    assert "Checked" in out.splitlines()[-1]
    assert "with an update available" in out


def test_an_invalid_device_id_is_a_usage_error_before_any_request(
    demo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["check", healthy_ids(demo)[0], "../v1.0/token"])
    err = capsys.readouterr().err
    assert status == 2
    assert "invalid device ID" in err
    assert demo.cloud.stats.snapshot()["requests"] == 0


def test_missing_configuration_names_the_variable(
    demo: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TUYA_ACCESS_SECRET")
    status = main(["check", "abc"])
    assert status == 2
    assert "TUYA_ACCESS_SECRET is not set" in capsys.readouterr().err


def test_a_wrong_secret_exits_2_with_the_fix_and_without_the_secret(
    demo: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TUYA_ACCESS_SECRET", "wrong-secret-value-123")
    status = main(["check", *healthy_ids(demo)])
    captured = capsys.readouterr()
    assert status == 2
    assert "TUYA_ACCESS_SECRET" in captured.err
    assert "wrong-secret-value-123" not in captured.err + captured.out


def test_devices_lists_the_project(demo: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["devices", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert status == 0
    assert {d["device_id"] for d in printed} == {d.device_id for d in demo.cloud.fleet.devices}
    assert set(printed[0]) == {
        "device_id",
        "name",
        "product_id",
        "product_name",
        "category",
        "online",
    }


def test_help_of_every_command_reads_well() -> None:
    for command in ([], ["check"], ["devices"], ["simulate"]):
        shown = subprocess.run(
            [sys.executable, "-m", "fwwatch.cli", *command, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert shown.startswith("usage: fwwatch")
        assert "TUYA_ACCESS_ID" in shown or command == ["simulate"]


def test_the_report_s_help_says_what_the_page_shows_and_what_it_reads() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "fwwatch.cli", "report", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.startswith("usage: fwwatch report")
    for option in ("--out FILE", "--state PATH", "--json", "--aws-table NAME", "--aws-region R"):
        assert option in shown
    assert "FWWATCH_STATE" in shown
    assert "dynamodb:Scan" in shown
    assert max(len(line) for line in shown.splitlines()) <= 88


def test_simulate_takes_the_fleet_size_and_still_the_old_devices_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the parser / When simulate is given a fleet size, by its name and by the old one
    parser = build_parser()
    by_name = parser.parse_args(["simulate", "--fleet-size", "7"])
    by_old_name = parser.parse_args(["simulate", "--devices", "5"])
    # Then both generate a fleet of that size, and the old name says it is deprecated
    assert (by_name.fleet_size, by_old_name.fleet_size) == (7, 5)
    assert "'--devices' is deprecated" in capsys.readouterr().err
    # and only the new name is shown in the help
    shown = subprocess.run(
        [sys.executable, "-m", "fwwatch.cli", "simulate", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--fleet-size N" in shown
    assert "--devices" not in shown
