"""``fwwatch report`` and ``watch --report`` on states made by real runs, in both modes."""

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

import boto3
import pytest

from fwwatch.cli import main
from tests.aws.provision import REGION
from tests.integration.conftest import point_cli_at
from tests.integration.pipeline_harness import Pipeline
from tests.integration.report_scenarios import (
    EXPECTED_STATUSES,
    EXPECTED_SUMMARY,
    HOSTILE_SCRIPT,
    LAMP,
    RELEASE,
    report_fleet,
    run_locally,
    tell_the_story,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def local_story(
    make_simulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Any:
    simulator = make_simulator(fleet=report_fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    tell_the_story(simulator.cloud, lambda: run_locally(capsys))
    return simulator


def report_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    status = main(["report", "--json", *args])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    data: dict[str, Any] = json.loads(captured.out)
    return data


def test_the_report_s_data_holds_what_the_runs_stored(
    local_story: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a state made by three runs: a baseline, a release, an install and a failure
    # When the report's data is asked for
    data = report_json(capsys)
    # Then its summary counts the fleet as the runs left it
    summary = data["summary"]
    assert {key: summary[key] for key in EXPECTED_SUMMARY} == EXPECTED_SUMMARY
    assert summary["last_check"] is not None
    assert {row["device_id"]: row["status"] for row in data["devices"]} == EXPECTED_STATUSES
    # and the devices needing attention come first: the failed update, then the offline one
    assert [row["device_id"] for row in data["devices"][:2]] == ["lamp01", "sens01"]
    # and each product's channel has its versions, the release on offer
    lamps = next(p for p in data["products"] if p["product_id"] == LAMP)
    assert lamps["versions"] == [
        {"version": RELEASE, "installed": 1, "offered": 3},
        {"version": "3.0.0", "installed": 3, "offered": 0},
    ]
    # and the release's adoption per run: offered to all four in run 2, on one in run 3
    (release,) = data["releases"]
    assert (release["version"], release["installed"], release["device_channels"]) == (
        RELEASE,
        1,
        4,
    )
    assert [(p["installed"], p["offered"]) for p in release["points"]] == [(0, 4), (1, 3)]
    assert data["history_kept"]
    assert data["checks_known"]
    # and the names are Tuya's, unchanged (the page escapes them)
    assert HOSTILE_SCRIPT in {row["device_name"] for row in data["devices"]}


def test_report_writes_the_page_in_the_working_directory_and_says_where(
    local_story: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = main(["report"])
    said = capsys.readouterr().out
    page = tmp_path / "fwwatch-report.html"
    assert status == 0
    assert "Wrote fwwatch-report.html (" in said
    assert page.resolve().as_uri() in said
    assert "6 devices, 2 products" in said
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert text.rstrip().endswith("</html>")
    assert HOSTILE_SCRIPT not in text
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_report_json_can_go_to_a_file(
    local_story: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["report", "--json", "--out", str(tmp_path / "fleet.json")]) == 0
    assert "Wrote" in capsys.readouterr().out
    assert json.loads((tmp_path / "fleet.json").read_text())["summary"]["devices"] == 6


def test_report_without_a_state_says_to_run_first(
    make_simulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    point_cli_at(make_simulator(fleet=report_fleet()), monkeypatch, tmp_path)
    assert main(["report"]) == 2
    assert "run `fwwatch run` first" in capsys.readouterr().err
    assert not (tmp_path / "fwwatch-report.html").exists()


def test_watch_rewrites_the_report_after_each_cycle(
    make_simulator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given `fwwatch watch --report` in another process
    simulator = make_simulator(fleet=report_fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    page = tmp_path / "site" / "fleet.html"
    page.parent.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "fwwatch.cli", "watch", "--every", "10s", "--report", str(page)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        # When its first cycle is done, and the release comes out before the second
        lines += wait_for_line(process.stdout, "fwwatch run ")
        simulator.cloud.publish_release(LAMP, 0, RELEASE)
        lines += wait_for_line(process.stdout, "fwwatch run ")
        # (the report follows the cycle's line: wait until it tells the release)
        deadline = time.monotonic() + 20
        while RELEASE not in page.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=20)
    # Then the report was rewritten after the second cycle, whole, with nothing left over
    assert process.returncode == 0, "".join(lines) + rest
    text = page.read_text(encoding="utf-8")
    assert RELEASE in text
    assert text.rstrip().endswith("</html>")
    assert sorted(p.name for p in page.parent.iterdir()) == ["fleet.html"]


def test_watch_refuses_a_report_in_a_folder_that_does_not_exist(
    make_simulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    simulator = make_simulator(fleet=report_fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    assert main(["watch", "--report", str(tmp_path / "nowhere" / "fleet.html")]) == 2
    assert "no folder" in capsys.readouterr().err
    assert simulator.cloud.stats.snapshot()["requests"] == 0


def wait_for_line(stream: Any, prefix: str, timeout_s: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        lines.append(line)
        if line.startswith(prefix):
            return lines
        if not line:  # the process ended
            break
    raise AssertionError("".join(lines))


# ---------------------------------------------------------------------- AWS


@pytest.fixture
def aws_story(make_simulator: Callable[..., Any], make_aws_stack: Callable[..., Any]) -> Any:
    simulator = make_simulator(fleet=report_fleet())
    stack = make_aws_stack(
        parameters={"TuyaEndpoint": simulator.url},
        tuya_secret={"access_id": simulator.access_id, "access_secret": simulator.access_secret},
    )
    pipeline = Pipeline(stack, overrides={"RETRY_DELAY_S": "0"})
    tell_the_story(simulator.cloud, pipeline.cycle)
    return stack


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS operation boto3's default session makes (the CLI's clients use it)."""
    calls: list[str] = []
    session = boto3.session.Session()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)

    def record(event_name: str, **_: Any) -> None:
        calls.append(event_name.removeprefix("before-call."))

    session.events.register("before-call", record)
    return calls


def test_the_aws_report_comes_from_a_scan_of_the_state_table_alone(
    aws_story: Any, aws_calls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the state table after the same story, told by the stack's functions on moto
    table = aws_story.table_name("StateTable")
    # When the report's data is built from it
    data = report_json(capsys, "--aws-table", table, "--aws-region", REGION)
    # Then only Scan of that table was called, and it holds what the runs stored
    assert set(aws_calls) == {"dynamodb.Scan"}
    summary = data["summary"]
    assert {key: summary[key] for key in EXPECTED_SUMMARY} == EXPECTED_SUMMARY
    assert {row["device_id"]: row["status"] for row in data["devices"]} == EXPECTED_STATUSES
    assert data["source"] == f"AWS table {table} ({REGION})"
    # and, with no history of runs, the release's adoption is an estimate
    (release,) = data["releases"]
    assert (release["version"], release["installed"], release["offered"]) == (RELEASE, 1, 3)
    assert release["estimated"]
    assert not data["history_kept"]
    assert not data["checks_known"]


def test_the_aws_report_names_a_table_that_does_not_exist(
    aws_story: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--aws-table", "no-such-table", "--aws-region", REGION]) == 2
    said = capsys.readouterr().err
    assert f"no table no-such-table in {REGION}" in said
    assert "StateTableName" in said


def test_the_aws_report_refuses_a_table_that_holds_no_states(
    aws_story: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run_table = aws_story.table_name("RunTable")
    assert main(["report", "--aws-table", run_table, "--aws-region", REGION]) == 2
    assert "not channel states" in capsys.readouterr().err
