"""The publisher over a real SQLite state and a fake broker connection that can fail half-way.

What a broker acknowledged is recorded, and only that: a connection lost after some
messages costs the next cycle the rest, never a message twice nor one lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fwwatch.local.home_assistant import CHUNK, REPUBLISH_AFTER, HomeAssistantPublisher
from fwwatch.local.mqtt import MqttBroker, MqttConnection, MqttPublishError
from fwwatch.local.store_sqlite import SqliteStore
from fwwatch.state import ChannelState

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BROKER = MqttBroker(host="broker.lan", port=1883, tls=False)
DEVICES = 50  # one channel each: 100 messages, two chunks


class FakeBroker:
    """Takes messages until told to drop the connection after ``accept`` more."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}
        self.received: list[str] = []
        self.connections = 0
        self.accept: int | None = None

    @asynccontextmanager
    async def connect(self, broker: MqttBroker) -> AsyncIterator[MqttConnection]:
        assert broker == BROKER
        self.connections += 1
        yield self

    async def publish_retained(self, topic: str, payload: str) -> None:
        if self.accept is not None:
            if self.accept == 0:
                raise MqttPublishError("connection lost")
            self.accept -= 1
        self.received.append(topic)
        self.held[topic] = payload


class BrokenBroker(FakeBroker):
    async def publish_retained(self, topic: str, payload: str) -> None:
        raise KeyError("a bug")


def channel(number: int, version: str = "1.0.0") -> ChannelState:
    return ChannelState(
        device_id=f"dev{number:03d}",
        channel=0,
        channel_name="Main module",
        current_version=version,
        target_version=version,
        first_seen=NOW,
        last_changed=NOW,
    )


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "state.sqlite3")
    store.save_batch(
        states=[channel(n) for n in range(DEVICES)],
        events=[],
        checks=[],
        notifiers=[],
        run_id="r1",
        now=NOW,
    )
    return store


def publisher(
    store: SqliteStore, broker: FakeBroker, clock: Callable[[], datetime] | None = None
) -> HomeAssistantPublisher:
    more = {} if clock is None else {"clock": clock}
    return HomeAssistantPublisher(
        store, BROKER, prefix="homeassistant", connect=broker.connect, **more
    )


async def test_a_connection_lost_half_way_costs_the_next_cycle_only_the_rest(
    store: SqliteStore,
) -> None:
    # Given a broker that drops the connection after the first chunk and 6 more messages
    broker = FakeBroker()
    broker.accept = CHUNK + 6

    # When a cycle publishes the 100 messages of 50 channels
    first = await publisher(store, broker).publish(None)

    # Then what was taken is recorded, the rest is pending, and the cause is said
    assert (first.published, first.pending) == (CHUNK + 6, 2 * DEVICES - CHUNK - 6)
    assert first.error == "connection lost"
    assert len(store.retained(BROKER.address)) == CHUNK + 6

    # When the next cycle finds the broker well
    broker.accept = None
    second = await publisher(store, broker).publish(None)

    # Then it publishes exactly the rest: each message once in all
    assert (second.published, second.pending, second.error) == (2 * DEVICES - CHUNK - 6, 0, None)
    assert sorted(broker.received) == sorted(broker.held)
    assert len(broker.held) == 2 * DEVICES


async def test_nothing_changed_means_no_connection(store: SqliteStore) -> None:
    # Given everything published once
    broker = FakeBroker()
    await publisher(store, broker).publish(None)

    # When a cycle finds nothing changed
    outcome = await publisher(store, broker).publish(None)

    # Then it does not even connect (a broker that is down then costs nothing)
    assert (outcome.published, outcome.error, broker.connections) == (0, None, 1)


async def test_a_broker_that_lost_its_retained_messages_has_them_back_in_time(
    store: SqliteStore,
) -> None:
    # Given everything published once, then a broker restarted without persistence: it
    # holds nothing, and Home Assistant has no entity left
    broker = FakeBroker()
    published_at = datetime.now(UTC)
    await publisher(store, broker, clock=lambda: published_at).publish(None)
    broker.held.clear()
    broker.received.clear()

    # When a cycle comes soon after, then it publishes nothing (an unchanged fleet)
    soon = publisher(store, broker, clock=lambda: published_at + timedelta(minutes=5))
    assert (await soon.publish(None)).published == 0

    # When a cycle comes once REPUBLISH_AFTER has passed
    later = publisher(store, broker, clock=lambda: published_at + REPUBLISH_AFTER)
    outcome = await later.publish(None)

    # Then every config and state is published again, and the broker holds them all
    assert outcome.published == 2 * DEVICES
    assert len(broker.held) == 2 * DEVICES
    # And the next cycle counts from then: nothing again
    again = publisher(store, broker, clock=lambda: published_at + REPUBLISH_AFTER * 1.5)
    assert (await again.publish(None)).published == 0


async def test_a_changed_state_publishes_that_state_only(store: SqliteStore) -> None:
    broker = FakeBroker()
    await publisher(store, broker).publish(None)
    store.save_batch(
        states=[channel(7, "1.1.0").model_copy(update={"last_changed": datetime.now(UTC)})],
        events=[],
        checks=[],
        notifiers=[],
        run_id="r2",
        now=NOW,
    )
    broker.received.clear()

    outcome = await publisher(store, broker).publish(None)

    assert broker.received == ["fwwatch/dev007/0/state"]
    assert outcome.published == 1
    assert '"installed_version":"1.1.0"' in broker.held["fwwatch/dev007/0/state"]


async def test_a_bug_in_a_connection_is_reported_not_raised(store: SqliteStore) -> None:
    outcome = await publisher(store, BrokenBroker()).publish(None)
    assert outcome.error == "KeyError: 'a bug'"
    assert (outcome.published, outcome.pending) == (0, 2 * DEVICES)
    assert store.retained(BROKER.address) == {}
