"""Fixtures that serve the Tuya Cloud simulator over real HTTP on loopback.

`make_simulator(fleet=..., **cloud_kwargs)` starts one simulator per call (all stopped at the
end of the test); `simulator` is one with the demo fleet, or with what an indirect
parametrisation asks for:

    @pytest.mark.parametrize("simulator", [{"fleet": generate_fleet(500), "token_ttl_s": 30}],
                             indirect=True)
    def test_x(simulator): ...

`make_mosquitto(users=..., tls=..., start=True)` is a real Mosquitto broker on loopback
(`mosquitto` is one, started), and `subscribe(broker)` a subscriber to all of its topics
(see tests/integration/mosquitto.py); both are stopped at the end of the test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from fwwatch.simulator import (
    DEFAULT_ACCESS_ID,
    DEFAULT_ACCESS_SECRET,
    Fleet,
    RunningSimulator,
    SimulatedCloud,
    demo_fleet,
    running_simulator,
)
from tests.integration.mosquitto import BrokerTls, Mosquitto, Subscriber

MakeSimulator = Callable[..., RunningSimulator]
MakeMosquitto = Callable[..., Mosquitto]
Subscribe = Callable[..., Subscriber]


@pytest.fixture
def make_simulator() -> Iterator[MakeSimulator]:
    """A factory: `make_simulator(fleet=None, **SimulatedCloud kwargs)` -> a running simulator.

    The fleet defaults to `demo_fleet()`, credentials to the simulator's defaults. The result
    has `.url`, `.cloud`, `.access_id` and `.access_secret`.
    """
    with ExitStack() as stack:

        def factory(fleet: Fleet | None = None, **cloud_kwargs: Any) -> RunningSimulator:
            cloud_kwargs.setdefault("access_id", DEFAULT_ACCESS_ID)
            cloud_kwargs.setdefault("access_secret", DEFAULT_ACCESS_SECRET)
            cloud = SimulatedCloud(fleet if fleet is not None else demo_fleet(), **cloud_kwargs)
            return stack.enter_context(running_simulator(cloud))

        yield factory


@pytest.fixture
def simulator(request: pytest.FixtureRequest, make_simulator: MakeSimulator) -> RunningSimulator:
    """A running simulator with the demo fleet, or the kwargs of an indirect parametrisation."""
    params: dict[str, Any] = dict(getattr(request, "param", None) or {})
    return make_simulator(**params)


@pytest.fixture
def make_mosquitto(tmp_path: Path) -> Iterator[MakeMosquitto]:
    """A factory: `make_mosquitto(users={name: password}, tls=BrokerTls, start=True)`."""
    brokers: list[Mosquitto] = []

    def factory(
        *, users: dict[str, str] | None = None, tls: BrokerTls | None = None, start: bool = True
    ) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"mosquitto-{len(brokers)}", users=users, tls=tls)
        brokers.append(broker)
        if start:
            broker.start()
        return broker

    try:
        yield factory
    finally:
        for broker in brokers:
            broker.stop()


@pytest.fixture
def mosquitto(make_mosquitto: MakeMosquitto) -> Mosquitto:
    """A running broker, anonymous, without TLS."""
    return make_mosquitto()


@pytest.fixture
def subscribe() -> Iterator[Subscribe]:
    """A factory: `subscribe(broker, username=..., password=..., tls_ca=...)`."""
    subscribers: list[Subscriber] = []

    def factory(broker: Mosquitto, **options: Any) -> Subscriber:
        subscriber = Subscriber(broker, **options)
        subscribers.append(subscriber)
        return subscriber

    try:
        yield factory
    finally:
        for subscriber in subscribers:
            subscriber.close()


@pytest.fixture(autouse=True)
def _close_pipelines() -> Iterator[None]:
    """After each test, end the Lambda containers (event loops) its pipelines kept."""
    yield
    harness = sys.modules.get("tests.integration.pipeline_harness")
    if harness is not None:
        harness.close_all()


def point_cli_at(
    simulator: RunningSimulator, monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    """Set up the environment so that ``fwwatch`` commands talk to ``simulator``.

    Every fwwatch, Tuya and notifier variable of the real environment is removed, the
    working directory is ``workdir`` (no stray .env file) and the state lives there.
    """
    for name in list(os.environ):
        if name.startswith(("TUYA_", "SMTP_", "SLACK_", "FWWATCH_", "NOTIFY_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("TUYA_ENDPOINT", simulator.url)
    monkeypatch.setenv("TUYA_ACCESS_ID", simulator.access_id)
    monkeypatch.setenv("TUYA_ACCESS_SECRET", simulator.access_secret)
    monkeypatch.setenv("FWWATCH_STATE", str(workdir / "state.sqlite3"))
    # A device that fails transiently is checked again at once (the policy's doubling wait
    # is the unit tests' business; a retry still waits for the outage breaker's probe).
    monkeypatch.setenv("FWWATCH_RETRY_DELAY_S", "0")
