"""A routine Tuya fault never stops the watch: the CLI and the cycle against a misbehaving cloud.

Every test runs the real commands (in-process ``main``, or ``fwwatch watch`` in a child
process) against the simulator over loopback HTTP, with the faults the simulator plays:
periodic token revocation, throttling and 5xx, a skewed clock, outages of every endpoint,
slow-drip answers and decompression bombs, grants refused, snake_case listings.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fwwatch.check import check_devices
from fwwatch.cli import main
from fwwatch.local.runner import run_cycle
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice, RunningSimulator
from fwwatch.tuya import TuyaClient, TuyaFatalError, TuyaSettings
from tests.integration.conftest import point_cli_at
from tests.integration.fakes import RecordingNotifier

pytestmark = pytest.mark.integration

PRODUCT = "plugprod0001"
OFFLINE = ("plug007", "plug021")


def fleet(size: int = 30) -> Fleet:
    return Fleet(
        devices=[
            FleetDevice(
                device_id=f"plug{i:03d}",
                name=f"Plug {i}",
                custom_name=f"Kitchen plug {i}",
                product_id=PRODUCT,
                product_name="Smart plug",
                category="cz",
                online=i % 2 == 0,
                channels=[FleetChannel(channel=0, current_version="1.0.0")],
            )
            for i in range(size)
        ]
    )


@pytest.fixture
def sim(
    make_simulator: Callable[..., RunningSimulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> RunningSimulator:
    simulator = make_simulator(fleet=fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv("TUYA_QPS", "200")
    return simulator


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def bad_day(sim: RunningSimulator) -> None:
    """Tokens revoked every 13th request, 1199 every 9th, 502 every 17th, clock 7 min off."""
    faults = sim.cloud.faults
    sim.cloud.revoke_tokens_every(13)
    faults.inject_error(1199, count=None, every=9, for_s=300, calls="any")
    faults.inject_http_status(502, count=None, every=17, for_s=300)
    faults.clock_offset_s = 420


@pytest.mark.parametrize("with_offline", [False, True], ids=["all online", "two offline"])
def test_check_json_on_a_bad_day_reports_every_device(
    sim: RunningSimulator, capsys: pytest.CaptureFixture[str], with_offline: bool
) -> None:
    # Given a cloud having a bad day, and maybe two devices that are offline
    bad_day(sim)
    if with_offline:
        for device_id in OFFLINE:
            sim.cloud.set_device_error(device_id, 2001)
    ids = [f"plug{i:03d}" for i in range(30)]
    # When 30 devices are checked
    status, out, err = run_cli(capsys, "check", "--json", *ids)
    # Then there is one object per device: each reachable one checked, the offline ones
    # answered a device error, and the exit status says only that
    report = json.loads(out)
    assert [item["device_id"] for item in report] == ids
    outcomes = {item["device_id"]: item["outcome"] for item in report}
    offline = set(OFFLINE) if with_offline else set()
    assert {d for d, o in outcomes.items() if o == "device_error"} == offline
    assert {d for d, o in outcomes.items() if o == "checked"} == set(ids) - offline
    assert status == (1 if with_offline else 0)
    assert "Traceback" not in err
    stats = sim.cloud.stats.snapshot()["by_code"]
    assert stats["1199"] > 0
    assert stats["http_502"] > 0
    assert stats["1010"] > 0  # the revocations really happened
    assert stats["1013"] > 0  # and the clock was really off


def test_run_on_a_bad_day_checks_every_device_and_exits_0(
    sim: RunningSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a baseline, then a release and a cloud having a bad day with two devices offline
    assert run_cli(capsys, "run")[0] == 0
    sim.cloud.publish_release(PRODUCT, 0, "1.1.0")
    bad_day(sim)
    for device_id in OFFLINE:
        sim.cloud.set_device_error(device_id, 2001)
    # When the cron run goes
    status, out, err = run_cli(capsys, "run", "--json")
    report = json.loads(out)
    # Then every device answered (offline ones count as answered), and the news went out
    assert status == 0, report
    assert (report["checked"], report["device_errors"], report["not_checked"]) == (28, 2, 0)
    assert {e["device_id"] for e in report["events"]} == {f"plug{i:03d}" for i in range(30)} - set(
        OFFLINE
    )
    assert "Traceback" not in err


def test_run_during_an_outage_of_every_endpoint_ends_with_a_report_and_exit_1(
    sim: RunningSimulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fleet known from a baseline run, and calls that may retry for 2 s each
    assert run_cli(capsys, "run")[0] == 0
    monkeypatch.setenv("TUYA_RETRY_BUDGET_S", "2")
    # When every endpoint (grant, listing, firmware) answers 503 for 10 s, during the run
    sim.cloud.faults.inject_http_status(503, count=None, for_s=10)
    status, out, err = run_cli(capsys, "run", "--json")
    report = json.loads(out)
    # Then the run ends with a report: the listing failed, the known devices were tried
    # and are reported not checked with the cause, and the exit status is 1
    assert status == 1
    assert "HTTP 503" in report["listing_error"]
    assert (report["devices"], report["checked"], report["not_checked"]) == (30, 0, 30)
    assert all("HTTP 503" in item["msg"] for item in report["failed"])
    assert "Traceback" not in err
    # And the requests stayed few: the first calls spent their budget, the rest failed fast
    assert sim.cloud.stats.snapshot()["requests"] < 100


@pytest.mark.parametrize(
    "call", ["/v1.0/token", "/v2.0/cloud/thing/device", "/firmware"], ids=lambda c: c
)
def test_a_burst_longer_than_a_retry_budget_on_one_kind_of_call_never_ends_in_a_traceback(
    sim: RunningSimulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    call: str,
) -> None:
    # Given one kind of call failing with 500 for longer than a call's budget of 3 tries
    assert run_cli(capsys, "run")[0] == 0
    monkeypatch.setenv("TUYA_RETRY_ATTEMPTS", "3")
    sim.cloud.faults.inject_http_status(500, count=None, path_contains=call, for_s=60)
    # When the cron run and a check go
    status, out, err = run_cli(capsys, "run", "--json")
    check_status, check_out, check_err = run_cli(capsys, "check", "--json", "plug000", "plug001")
    # Then both end with a report and no traceback; what the failing call blocks is
    # reported not checked (a failed listing: the devices known from earlier runs are
    # checked all the same)
    report = json.loads(out)
    assert status == 1
    firmware_works = call == "/v2.0/cloud/thing/device"
    assert bool(report["listing_error"]) is (call != "/firmware")
    assert report["not_checked"] == (0 if firmware_works else 30)
    expected = "checked" if firmware_works else "not_checked"
    assert [item["outcome"] for item in json.loads(check_out)] == [expected] * 2
    assert check_status == (0 if firmware_works else 1)
    assert "Traceback" not in err + check_err


def test_a_grant_refused_with_1106_is_one_fatal_error(
    sim: RunningSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a project that lacks the permission to take tokens
    sim.cloud.faults.inject_error(1106, count=None, calls="token", for_s=60, msg="permission deny")
    sim.cloud.stats.reset()
    # When a run starts
    status, _, err = run_cli(capsys, "run")
    # Then it stops at once with one clear line, and no device was marked anything
    assert status == 2
    assert err.count("\n") == 1
    assert "refuses this project a token (permission deny)" in err
    assert sim.cloud.stats.snapshot()["by_api"] == {"GET /v1.0/token": 1}


def test_slow_drip_and_decompression_bomb_answers_are_bounded(
    sim: RunningSimulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a timeout of 1 s, one answer dripping a byte every 50 ms (about 10 s for it),
    # one answer that inflates to 1 GiB, and one device whose answers always drip
    monkeypatch.setenv("TUYA_TIMEOUT_S", "1")
    monkeypatch.setenv("TUYA_RETRY_ATTEMPTS", "3")
    faults = sim.cloud.faults
    faults.inject_drip(0.05, count=1, path_contains="plug001/")
    faults.inject_bomb(2**30, count=1, path_contains="plug002/")
    faults.inject_drip(0.05, count=100, path_contains="plug003/")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # When those devices are checked
    ids = ("plug000", "plug001", "plug002", "plug003")
    status, out, err = run_cli(capsys, "check", "--json", *ids)
    peak_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    # Then the drip and the bomb cost one retry each, and the always-dripping device is
    # not checked, with the cause; memory did not grow by the bomb's size
    outcomes = {item["device_id"]: item for item in json.loads(out)}
    assert [outcomes[d]["outcome"] for d in ("plug000", "plug001", "plug002")] == ["checked"] * 3
    assert outcomes["plug003"]["outcome"] == "not_checked"
    assert "no whole answer within 1 s" in outcomes["plug003"]["error"]["msg"]
    assert status == 1
    assert "Traceback" not in err
    assert peak_growth_mib < 200
    assert sim.cloud.stats.snapshot()["by_code"]["bomb"] == 1


def test_ten_thousand_devices_against_a_dead_endpoint_end_in_a_few_requests() -> None:
    # Given an endpoint where nothing listens, and the default retry policy
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        settings = TuyaSettings(
            access_id="id",
            access_secret="secret",
            endpoint=f"http://127.0.0.1:{refusing.getsockname()[1]}",
        )
        ids = [f"dev{i:05d}" for i in range(10_000)]

        async def check() -> tuple[list[Any], int]:
            async with TuyaClient(settings) as tuya:
                results = await check_devices(tuya, ids, concurrency=tuya.connections)
                return results, tuya.stats.requests

        results, requests = asyncio.run(check())
    # Then every device is reported not checked, and the grant was tried a handful of
    # times in all, not 6 times per device
    assert len(results) == 10_000
    assert all(not r.ok and not r.answered for r in results)
    assert "cannot connect" in str(results[0].error)
    assert requests < 30


async def test_two_runs_at_once_on_one_access_id_both_check_every_device(
    make_simulator: Callable[..., RunningSimulator], tmp_path: Path
) -> None:
    # Given a cloud where each grant revokes the other process's token, and two machines
    # running `fwwatch run` at the same moment with the same Access ID
    sim = make_simulator(fleet=fleet(60), revoke_on_grant=True)
    sim.cloud.faults.set_latency(0.01)
    settings = TuyaSettings(
        access_id=sim.access_id, access_secret=sim.access_secret, endpoint=sim.url, qps=100
    )

    async def one(name: str) -> Any:
        with SqliteStore(tmp_path / f"{name}.sqlite3") as store:
            async with TuyaClient(settings) as tuya:
                return await run_cycle(tuya, store, [RecordingNotifier()])

    first, second = await asyncio.gather(one("a"), one("b"))
    # Then neither gives up the fleet: every device of both runs answered
    assert (first.checked + len(first.device_errors), first.not_checked) == (60, [])
    assert (second.checked + len(second.device_errors), second.not_checked) == (60, [])
    assert sim.cloud.stats.snapshot()["by_code"].get("1010", 0) > 0  # they did collide


@pytest.mark.parametrize("spelling", ["camelCase", "snake_case"])
def test_the_listing_is_read_in_both_spellings(
    sim: RunningSimulator, capsys: pytest.CaptureFixture[str], spelling: str
) -> None:
    sim.cloud.set_listing_fields(spelling)  # type: ignore[arg-type]
    status, out, _ = run_cli(capsys, "devices", "--json")
    devices = json.loads(out)
    assert status == 0
    assert devices[0] == {
        "device_id": "plug000",
        "name": "Plug 0",
        "product_id": PRODUCT,
        "product_name": "Smart plug",
        "category": "cz",
        "online": True,
    }
    assert devices[1]["online"] is False


def test_the_learned_rate_limit_is_kept_and_can_be_forgotten(
    sim: RunningSimulator,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a cloud that allows 10 requests a second, and a client told it may send 40
    sim.cloud.set_rate_limit(10)
    monkeypatch.setenv("TUYA_QPS", "40")
    ids = [f"plug{i:03d}" for i in range(30)]
    # When a first check runs, it finds the limit and keeps it in the state file
    assert run_cli(capsys, "check", "--json", *ids)[0] == 0
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        learned = store.learned_rate(sim.url, sim.access_id)
    assert learned is not None
    assert 5 <= learned <= 12
    # And --forget-rate drops it (one request finds no limit, so nothing new is kept)
    assert run_cli(capsys, "check", "--forget-rate", "plug000")[0] == 0
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        assert store.learned_rate(sim.url, sim.access_id) is None


async def test_a_fatal_answer_ends_a_long_run_at_once(
    make_simulator: Callable[..., RunningSimulator], tmp_path: Path
) -> None:
    # Given a run over many batches, and a subscription that lapsed before it
    sim = make_simulator(fleet=fleet())
    sim.cloud.faults.inject_error(28841002, count=None, for_s=60)
    settings = TuyaSettings(
        access_id=sim.access_id, access_secret=sim.access_secret, endpoint=sim.url, qps=200
    )
    ids = [f"dev{i:05d}" for i in range(2500)]
    # When it meets the fatal answer, then it stops with it, not waiting on its own queue
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        async with TuyaClient(settings) as tuya:
            with pytest.raises(TuyaFatalError, match="subscription has expired"):
                await asyncio.wait_for(
                    run_cycle(tuya, store, [RecordingNotifier()], device_ids=ids, batch_size=100),
                    timeout=30,
                )


def test_a_locked_state_file_does_not_cost_the_check_its_report(
    sim: RunningSimulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given another process holding the state file locked (a `watch` writing, say)
    import sqlite3

    sim.cloud.set_rate_limit(10)  # so that a limit is learned and its save is tried
    SqliteStore(tmp_path / "state.sqlite3").close()
    holder = sqlite3.connect(tmp_path / "state.sqlite3", timeout=0.1)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # When devices are checked
        ids = [f"plug{i:03d}" for i in range(30)]
        status, out, err = run_cli(capsys, "check", "--json", *ids)
    finally:
        holder.rollback()
        holder.close()
    # Then the report is whole, and only the learned limit was not kept
    assert status == 0
    assert len(json.loads(out)) == 30
    assert "Traceback" not in err


def test_a_state_file_that_cannot_be_opened_is_one_line_for_run(
    sim: RunningSimulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "state-dir").mkdir()
    status, _, err = run_cli(capsys, "run", "--state", str(tmp_path / "state-dir"))
    assert status == 2
    assert err.startswith("fwwatch: the state file cannot be used (unable to open database")
    assert err.count("\n") == 1


# ---------------------------------------------------------------------- watch


@pytest.fixture
def watch(sim: RunningSimulator, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []

    def start(*extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "fwwatch.cli", "watch", "--every", "10s", "--jitter", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=tmp_path,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def read_until(process: subprocess.Popen[str], prefix: str, timeout_s: float = 60) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no line starting {prefix!r} in: {''.join(lines)}")


def test_watch_survives_an_outage_of_every_endpoint_and_runs_its_next_cycle_normally(
    sim: RunningSimulator, watch: Callable[..., subprocess.Popen[str]]
) -> None:
    # Given every endpoint answering 503 for 10 s as the watch starts, with calls that may
    # retry for 2 s each
    sim.cloud.faults.inject_http_status(503, count=None, for_s=10)
    process = watch(env={"TUYA_RETRY_BUDGET_S": "2"})
    # When its first cycle meets the outage
    first = read_until(process, "fwwatch run ")
    # Then it reports it and goes on: the next cycle, after the outage, checks every device
    second = read_until(process, "fwwatch run ")
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=15)
    output = "".join(first + second) + rest
    assert "device listing failed: " in "".join(first)
    assert "checked 30 of 30 devices" in second[-1]
    assert "Traceback" not in output
    assert "fwwatch watch: stopped." in rest


def test_watch_logs_a_failed_cycle_in_one_line_and_carries_on(
    sim: RunningSimulator, watch: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    # Given a state file that cannot be opened (a directory stands in its place)
    (tmp_path / "state-dir").mkdir()
    process = watch(env={"FWWATCH_STATE": str(tmp_path / "state-dir")})
    # When a cycle fails on it
    lines = read_until(process, "fwwatch watch: the cycle failed")
    # Then one line says why and when the next cycle runs, and the watch is still there
    assert "unable to open database file" in lines[-1]
    assert "the next one runs at " in lines[-1]
    time.sleep(0.5)
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=15)
    assert "Traceback" not in "".join(lines) + rest
