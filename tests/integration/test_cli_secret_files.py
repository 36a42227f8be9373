"""The CLI with its secrets in files, as Docker secrets and systemd credentials give them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fwwatch.cli import main
from fwwatch.simulator import RunningSimulator
from tests.integration.conftest import MakeSimulator, point_cli_at

pytestmark = pytest.mark.integration


@pytest.fixture
def env(make_simulator: MakeSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    simulator = make_simulator()
    point_cli_at(simulator, monkeypatch, tmp_path)
    return simulator


def secret_in_a_file(
    simulator: RunningSimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    path = tmp_path / "tuya_access_secret"
    path.write_text(simulator.access_secret + "\n", encoding="utf-8")
    monkeypatch.delenv("TUYA_ACCESS_SECRET")
    monkeypatch.setenv("TUYA_ACCESS_SECRET_FILE", str(path))
    return path


def test_a_run_signs_with_the_secret_read_from_its_file(
    env: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret_in_a_file(env, monkeypatch, tmp_path)
    assert main(["run"]) == 0  # the simulator verifies every signature
    assert "checked 11 of 12 devices" in capsys.readouterr().out


def test_a_secret_given_both_ways_stops_before_any_request(
    env: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret_in_a_file(env, monkeypatch, tmp_path)
    monkeypatch.setenv("TUYA_ACCESS_SECRET", env.access_secret)
    assert main(["check", "bf3a61c0e2d94f5b8a01c7"]) == 2
    err = capsys.readouterr().err
    assert "TUYA_ACCESS_SECRET and TUYA_ACCESS_SECRET_FILE are both set" in err
    assert env.access_secret not in err
    assert env.cloud.stats.snapshot()["requests"] == 0


def test_an_unreadable_secret_file_is_named_with_its_path(
    env: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD_FILE", str(tmp_path / "missing"))
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert f"SMTP_PASSWORD_FILE: cannot read {tmp_path / 'missing'}" in err
    assert env.cloud.stats.snapshot()["requests"] == 0
