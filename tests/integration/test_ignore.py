"""``fwwatch ignore`` against the simulator: an ignored version's offer is no news, the rest is.

Each test counts what a subscriber receives: the JSON-lines notifier's file, one line per
message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fwwatch.cli import main
from fwwatch.simulator import Fleet, FleetChannel, FleetDevice
from tests.integration.conftest import point_cli_at

pytestmark = pytest.mark.integration

PLUG = "plugprod0001"
LAMP = "lampprod0001"
PLUGS = ["plug01", "plug02", "plug03"]


def fleet() -> Fleet:
    plugs = [
        FleetDevice(
            device_id=device_id,
            name=f"Plug {n}",
            product_id=PLUG,
            product_name="Smart Plug",
            category="cz",
            channels=[
                FleetChannel(channel=0, current_version="1.1.0"),
                FleetChannel(channel=9, current_version="1.1.0"),
            ],
        )
        for n, device_id in enumerate(PLUGS, 1)
    ]
    lamp = FleetDevice(
        device_id="lamp01",
        name="Lamp",
        product_id=LAMP,
        product_name="Smart Lamp",
        category="dj",
        channels=[FleetChannel(channel=0, current_version="3.0.0")],
    )
    return Fleet(devices=[*plugs, lamp])


class Env:
    def __init__(self, simulator: Any, news: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.cloud = simulator.cloud
        self.news = news
        self.capsys = capsys
        self._read = 0

    def cli(self, *args: str) -> tuple[int, str, str]:
        """One fwwatch command in this process: (exit status, stdout, stderr)."""
        self.capsys.readouterr()
        status = main(list(args))
        captured = self.capsys.readouterr()
        return status, captured.out, captured.err

    def run(self) -> dict[str, Any]:
        status, out, _ = self.cli("run", "--json")
        assert status == 0, out
        report: dict[str, Any] = json.loads(out)
        return report

    def received(self) -> list[tuple[str, str, int, str, list[str]]]:
        """The messages received since the last call: (type, product, channel, version,
        devices)."""
        lines = self.news.read_text().splitlines() if self.news.exists() else []
        new, self._read = lines[self._read :], len(lines)
        return [
            (m["type"], m["product_id"], m["channel"], m["version"],
             [d["device_id"] for d in m["devices"]])
            for m in map(json.loads, new)
        ]  # fmt: skip


@pytest.fixture
def env(
    make_simulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Env:
    simulator = make_simulator(fleet=fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv("FWWATCH_JSONL", str(tmp_path / "news.jsonl"))
    env = Env(simulator, tmp_path / "news.jsonl", capsys)
    env.run()  # the silent baseline
    assert env.received() == []
    return env


def test_an_ignored_version_on_offer_is_no_news_and_status_marks_it(env: Env) -> None:
    # Given 1.2.0 of the plug ignored
    status, out, _ = env.cli("ignore", PLUG, "1.2.0")
    assert status == 0
    assert f"Ignoring 1.2.0 of product {PLUG} on every channel.\n" in out
    # When the cloud offers it to every plug, and a lamp release comes out too
    env.cloud.publish_release(PLUG, 0, "1.2.0")
    env.cloud.publish_release(LAMP, 0, "3.1.0")
    report = env.run()
    # Then only the lamp's release is news; the plugs' offers are counted as ignored
    assert env.received() == [("update_available", LAMP, 0, "3.1.0", ["lamp01"])]
    assert report["ignored_offers"] == 3
    assert [e["device_id"] for e in report["events"]] == ["lamp01"]
    # And status shows the offers, marked ignored
    status, out, _ = env.cli("status")
    assert "4 updates pending (3 ignored)" in out
    assert out.count("1.2.0 (ignored)") == 3
    assert "3.1.0 (ignored)" not in out
    _, out, _ = env.cli("status", "--json")
    pending = {(p["device_id"], p["ignored"]) for p in json.loads(out)["pending_updates"]}
    assert pending == {("plug01", True), ("plug02", True), ("plug03", True), ("lamp01", False)}


def test_the_run_summary_says_how_many_offers_were_ignored(env: Env) -> None:
    env.cli("ignore", PLUG, "1.2.0")
    env.cloud.publish_release(PLUG, 0, "1.2.0")
    status, out, _ = env.cli("run")
    assert status == 0
    last = out.strip().splitlines()[-1]
    assert "0 new events, 0 notifications sent, 3 update offers ignored" in last


@pytest.mark.parametrize(
    ("happens", "told"),
    [
        (lambda cloud: cloud.mark_installed("plug02", 0), "update_installed"),
        (lambda cloud: cloud.mark_failed("plug02", 0), "update_failed"),
    ],
    ids=["installed", "failed"],
)
def test_an_install_or_a_failure_of_an_ignored_version_is_still_told(
    env: Env, happens: Callable[[Any], object], told: str
) -> None:
    # Given 1.2.0 ignored and on offer, told to nobody
    env.cli("ignore", PLUG, "1.2.0")
    env.cloud.publish_release(PLUG, 0, "1.2.0")
    env.run()
    assert env.received() == []
    # When one plug installs it (or fails to)
    happens(env.cloud)
    env.run()
    # Then that is news
    assert env.received() == [(told, PLUG, 0, "1.2.0", ["plug02"])]


def test_an_ignore_of_one_channel_lets_the_other_channels_offers_through(env: Env) -> None:
    # Given 1.2.0 ignored on the main module only
    env.cli("ignore", PLUG, "1.2.0", "--channel", "0")
    # When it is offered on the main module and on the MCU
    env.cloud.publish_release(PLUG, 0, "1.2.0")
    env.cloud.publish_release(PLUG, 9, "1.2.0")
    env.run()
    # Then only the MCU's offer is news
    assert env.received() == [("update_available", PLUG, 9, "1.2.0", PLUGS)]


def test_removing_an_ignore_announces_the_version_to_the_devices_still_offered_it(
    env: Env,
) -> None:
    # Given 1.2.0 ignored, offered to the three plugs, and one of them installing it
    env.cli("ignore", PLUG, "1.2.0")
    env.cloud.publish_release(PLUG, 0, "1.2.0")
    env.run()
    env.cloud.mark_installed("plug03", 0)
    env.run()
    assert env.received() == [("update_installed", PLUG, 0, "1.2.0", ["plug03"])]
    # When the ignore is removed
    status, out, _ = env.cli("ignore", "--remove", PLUG, "1.2.0")
    assert status == 0
    assert "The next run announces it to the devices still offered it." in out
    # Then the next run tells the offer to the two plugs that still have it, once
    report = env.run()
    assert env.received() == [("update_available", PLUG, 0, "1.2.0", ["plug01", "plug02"])]
    assert report["ignored_offers"] == 0
    env.run()
    assert env.received() == []
    # And status no longer marks it
    _, out, _ = env.cli("status")
    assert "(ignored)" not in out


def test_removing_an_ignore_set_after_the_news_was_told_tells_nothing_twice(env: Env) -> None:
    # Given 1.2.0 offered and told, then ignored
    env.cloud.publish_release(PLUG, 0, "1.2.0")
    env.run()
    assert env.received() == [("update_available", PLUG, 0, "1.2.0", PLUGS)]
    env.cli("ignore", PLUG, "1.2.0")
    env.run()
    # When the ignore is removed
    env.cli("ignore", "--remove", PLUG, "1.2.0")
    env.run()
    # Then the offer is not told again
    assert env.received() == []


def test_list_shows_each_ignore_with_its_offers_and_json(env: Env) -> None:
    # Given two ignores, one of them on offer to the three plugs
    env.cli("ignore", PLUG, "1.2.0")
    env.cli("ignore", LAMP, "3.1.0", "--channel", "0")
    env.cloud.publish_release(PLUG, 0, "1.2.0")
    env.run()
    # When they are listed
    status, out, _ = env.cli("ignore", "--list")
    # Then each is a row of a table, with its product's name and how many channels offer it
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["PRODUCT", "CHANNEL", "VERSION", "ON", "OFFER", "SINCE"]
    assert lines[1].startswith(f"Smart Lamp ({LAMP})  Main module (0)  3.1.0    0")
    assert lines[2].startswith(f"Smart Plug ({PLUG})  every            1.2.0    3")
    _, out, _ = env.cli("ignore", "--list", "--json")
    rows = json.loads(out)
    assert [(r["product_id"], r["channel"], r["version"], r["on_offer"]) for r in rows] == [
        (LAMP, 0, "3.1.0", 0),
        (PLUG, None, "1.2.0", 3),
    ]
    # And once both are removed, the list says so
    env.cli("ignore", "--remove", PLUG, "1.2.0")
    env.cli("ignore", "--remove", LAMP, "3.1.0", "--channel", "0")
    assert env.cli("ignore", "--list")[1] == "No version is ignored.\n"


def test_an_ignore_set_by_one_process_holds_for_the_next(env: Env, tmp_path: Path) -> None:
    # Given 1.2.0 ignored by a `fwwatch ignore` process of its own
    command = [sys.executable, "-m", "fwwatch.cli", "ignore"]
    done = subprocess.run(
        [*command, PLUG, "1.2.0"], env=dict(os.environ), cwd=tmp_path, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    # When another process lists the ignores and this one runs a cycle with 1.2.0 on offer
    listed = subprocess.run(
        [*command, "--list", "--json"], env=dict(os.environ), cwd=tmp_path, capture_output=True
    )
    env.cloud.publish_release(PLUG, 0, "1.2.0")
    env.run()
    # Then both read it from the state file
    assert [r["version"] for r in json.loads(listed.stdout)] == ["1.2.0"]
    assert env.received() == []


def test_ignoring_twice_says_it_already_is(env: Env) -> None:
    env.cli("ignore", PLUG, "1.2.0")
    status, out, _ = env.cli("ignore", PLUG, "1.2.0")
    assert status == 0
    assert out.startswith(f"Already ignoring 1.2.0 of product {PLUG} on every channel (since ")


def test_ignoring_a_product_the_state_does_not_know_warns(env: Env) -> None:
    status, out, _ = env.cli("ignore", "nosuchproduct1", "1.2.0")
    assert status == 0
    assert "no device of product nosuchproduct1 is in the state yet" in out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["../v1.0/token", "1.2.0"], "PRODUCT_ID: product ID '../v1.0/token' may hold only"),
        ([PLUG, "1.2;0"], "VERSION: version '1.2;0' may hold only"),
        ([PLUG], "needs PRODUCT_ID and VERSION"),
        (["--list", PLUG], "--list takes no PRODUCT_ID"),
        ([PLUG, "1.2.0", "--json"], "--json goes with --list"),
        (["--remove", PLUG, "9.9.9"], "is not ignored; `fwwatch ignore --list` shows what is"),
    ],
    ids=["hostile product", "hostile version", "no version", "list with ids", "json", "remove"],
)
def test_a_wrong_ignore_exits_2_saying_what_to_do(env: Env, args: list[str], said: str) -> None:
    status, out, err = env.cli("ignore", *args)
    assert (status, out) == (2, "")
    assert said in err
    assert env.cli("ignore", "--list")[1] == "No version is ignored.\n"


def test_removing_without_the_channel_it_was_set_on_names_the_command_that_works(
    env: Env,
) -> None:
    env.cli("ignore", PLUG, "1.2.0", "--channel", "9")
    status, _, err = env.cli("ignore", "--remove", PLUG, "1.2.0")
    assert status == 2
    assert f"it is ignored as: fwwatch ignore --remove {PLUG} 1.2.0 --channel 9" in err


def test_a_channel_that_is_no_channel_is_refused_by_the_parser(env: Env) -> None:
    with pytest.raises(SystemExit) as exited:
        env.cli("ignore", PLUG, "1.2.0", "--channel", "-3")
    assert exited.value.code == 2
    assert "leave it out for every channel" in env.capsys.readouterr().err
