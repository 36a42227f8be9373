"""Real ``fwwatch`` processes on one state file, counting what a Slack subscriber receives.

Each test starts ``python -m fwwatch.cli`` in child processes against the simulator, with the
fake Slack webhook on loopback, which can hold a post open: so a process is caught in the
middle of its delivery, deterministically, while a second one starts, or while it is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from fwwatch.cli import main
from fwwatch.simulator import Fleet
from tests.integration.conftest import point_cli_at
from tests.integration.fakes import FakeSlack, serving_fake_slack
from tests.integration.fleets import products

pytestmark = pytest.mark.integration

#: Three products: a release of each makes three messages, posted in this order.
PRODUCTS = {"prodaaaa0001": "Smart plug", "prodbbbb0001": "Smart lamp", "prodcccc0001": "Sensor"}
WAITING = "INFO fwwatch.local: the state file is in use by "


def fleet() -> Fleet:
    return products(PRODUCTS, 2)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with serving_fake_slack("/services/T000/B000/lockedsecret") as fake:
        yield fake


@pytest.fixture
def news(
    make_simulator: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    slack: FakeSlack,
    capsys: pytest.CaptureFixture[str],
) -> list[str]:
    """A baseline run done, then a release of each product: three messages to deliver.

    Returns the products' names, in the order their messages are posted.
    """
    simulator = make_simulator(fleet=fleet())
    point_cli_at(simulator, monkeypatch, tmp_path)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
    assert main(["run"]) == 0  # the first sighting is a silent baseline
    capsys.readouterr()
    for product in PRODUCTS:
        simulator.cloud.publish_release(product, 0, "1.1.0")
    return list(PRODUCTS.values())


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``fwwatch ARGS...`` in a child process (killed at the end if still running)."""
    processes: list[subprocess.Popen[str]] = []

    def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "fwwatch.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=tmp_path,
        )
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()


def read_until(stream: IO[str] | None, prefix: str, timeout_s: float = 60) -> list[str]:
    """Lines of ``stream`` up to the first that starts with ``prefix``."""
    assert stream is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no line starting {prefix!r} in: {''.join(lines)}")


class Lines:
    """A child's stream, read line by line in a thread of its own, so that a test can wait
    for one of several things at once."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def starting(self, prefix: str) -> list[str]:
        return [line for line in self.lines if line.startswith(prefix)]

    def text(self) -> str:
        """All of it, once the stream has ended."""
        self._thread.join(30)
        return "".join(self.lines)


def eventually(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    """Return once ``condition()`` holds; fail, saying ``what``, if it never does."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def posts_per_product(slack: FakeSlack) -> dict[str, int]:
    """How many posts the subscriber received about each product."""
    counts: Counter[str] = Counter()
    for text in slack.texts():
        (name,) = [name for name in PRODUCTS.values() if f"devices of {name}," in text]
        counts[name] += 1
    return dict(counts)


def stop_watch(process: subprocess.Popen[str]) -> str:
    """Wait for the watch's first cycle to report, then stop it; its whole output."""
    lines = read_until(process.stdout, "fwwatch run ")
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, "".join(lines) + rest
    return "".join(lines) + rest


# ---------------------------------------------------------------------- one process per state


@pytest.mark.parametrize("first", ["run", "watch"])
def test_a_second_run_waits_for_the_first_and_each_message_arrives_once(
    news: list[str],
    slack: FakeSlack,
    start: Callable[..., subprocess.Popen[str]],
    first: str,
) -> None:
    # Given a `run` (or a `watch` cycle) caught delivering: Slack holds its first post open
    slack.hold_posts = {1}
    extra = ["--every", "10s", "--jitter", "0"] if first == "watch" else []
    holder = start(first, *extra)
    assert slack.holding.wait(60), "the first process never posted"
    # When a second `run` starts on the same state file, and is either waiting for the
    # first or (were it not made to wait) delivering the same news
    second = start("-v", "run", env={"FWWATCH_LOCK_WAIT_S": "120"})
    err = Lines(second.stderr)
    eventually(
        lambda: bool(err.starting(WAITING)) or len(slack.received) > 1,
        "the second process waiting, or posting",
    )
    slack.release()
    if first == "run":
        holder.communicate(timeout=60)
        assert holder.returncode == 0
    else:
        stop_watch(holder)
    assert second.stdout is not None
    out = second.stdout.read()
    second.wait(60)
    # Then the subscriber received each message once: the second process waited for the
    # first, naming it, and found nothing left to send
    assert posts_per_product(slack) == dict.fromkeys(news, 1)
    (waiting,) = err.starting(WAITING)
    assert f"fwwatch {first} (pid {holder.pid}, since " in waiting
    assert second.returncode == 0, err.text()
    assert "0 new events, 0 notifications sent" in out


def test_without_a_wait_a_second_run_exits_2_naming_the_first(
    news: list[str],
    slack: FakeSlack,
    start: Callable[..., subprocess.Popen[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a run caught delivering
    slack.hold_posts = {1}
    holder = start("run")
    assert slack.holding.wait(60), "the first process never posted"
    # When a second run starts that is told not to wait, and `status` looks at the state
    second = start("run", env={"FWWATCH_LOCK_WAIT_S": "0"})
    _, err = second.communicate(timeout=60)
    status = main(["status", "--json"])
    shown = json.loads(capsys.readouterr().out)
    slack.release()
    holder.communicate(timeout=60)
    # Then the second stops at once, in one line naming the first, and posts nothing;
    # `status` reads without the lock; the subscriber received each message once
    assert second.returncode == 2
    assert err.count("\n") == 1
    assert err.startswith(f"fwwatch: the state file {Path.cwd() / 'state.sqlite3'} is in use by ")
    assert f"fwwatch run (pid {holder.pid}, since " in err
    assert "FWWATCH_LOCK_WAIT_S" in err
    assert "lockedsecret" not in err
    assert (status, shown["devices"]) == (0, 6)
    assert holder.returncode == 0
    assert posts_per_product(slack) == dict.fromkeys(news, 1)


def test_watch_holds_the_lock_only_during_its_cycles(
    news: list[str],
    slack: FakeSlack,
    start: Callable[..., subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a watch whose first cycle delivered the news, now waiting for its next one
    watch = start("watch", "--every", "10s", "--jitter", "0")
    first_cycle = read_until(watch.stdout, "fwwatch run ")
    # When a one-off run starts between its cycles, not willing to wait
    monkeypatch.setenv("FWWATCH_LOCK_WAIT_S", "0")
    status = main(["run"])
    out = capsys.readouterr().out
    watch.send_signal(signal.SIGTERM)
    rest, _ = watch.communicate(timeout=30)
    # Then the run had the state to itself, found the news sent, and sent nothing again
    assert status == 0, out
    assert "6 new events, 6 notifications sent" in first_cycle[-1]  # console and Slack
    assert "0 new events, 0 notifications sent" in out
    assert "fwwatch watch: stopped." in rest
    assert posts_per_product(slack) == dict.fromkeys(news, 1)


# ---------------------------------------------------------------------- kill -9


def test_a_run_killed_during_delivery_costs_at_most_one_duplicate(
    news: list[str],
    slack: FakeSlack,
    start: Callable[..., subprocess.Popen[str]],
) -> None:
    # Given a run that delivered its first message and is in the middle of its second
    slack.hold_posts = {2}
    victim = start("run")
    assert slack.holding.wait(60), "the run never got to its second post"
    # When it is killed there (SIGKILL: no cleanup of any kind), then the next run goes,
    # not waiting for any lock the dead one might have left
    victim.kill()
    victim.communicate(timeout=30)
    slack.release()
    again = start("run", "--json", env={"FWWATCH_LOCK_WAIT_S": "0"})
    out, err = again.communicate(timeout=60)
    report = json.loads(out)
    # Then the message delivered before the kill arrived once, the one cut short twice (it
    # had reached Slack, its delivery was not recorded), the one never tried once
    assert victim.returncode == -signal.SIGKILL
    assert again.returncode == 0, err
    assert report["notifications"]["slack"] == {
        "sent": 2,
        "failed": 0,
        "uncertain": 0,
        "error": None,
    }
    assert posts_per_product(slack) == {news[0]: 1, news[1]: 2, news[2]: 1}
