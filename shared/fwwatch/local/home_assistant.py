"""Home Assistant over MQTT: after each run, the broker gets what changed in the state.

The messages are :mod:`fwwatch.homeassistant`'s (a discovery config and a JSON state per
device channel, retained). What the broker acknowledged is recorded in the state file, by
broker and topic, a chunk at a time: a broker that is down, or goes away half-way, loses
nothing, and the next cycle publishes what is still different. A run with nothing changed
does not connect at all, unless what the broker holds was given it over
:data:`REPUBLISH_AFTER` ago: then it is all published again, since a broker restarted
without persistence (Mosquitto's default) forgets every retained message, and Home
Assistant would show no entity until each one changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence, Set
from datetime import datetime, timedelta
from typing import Protocol

from ..homeassistant import Retained, retained_changes
from ..ignored import IgnoredVersions
from ..state import ChannelState, utcnow
from .mqtt import (
    MAX_IN_FLIGHT,
    Connect,
    MqttBroker,
    MqttConnection,
    MqttPublishError,
    aiomqtt_connection,
)
from .report import PublishOutcome

__all__ = ["REPUBLISH_AFTER", "HomeAssistantPublisher", "RetainedStore"]

logger = logging.getLogger("fwwatch.local")

#: Messages in flight at once; each chunk is recorded in one transaction.
CHUNK = MAX_IN_FLIGHT
#: How long a retained message is trusted to be on the broker: then it is published again.
REPUBLISH_AFTER = timedelta(hours=1)


class RetainedStore(Protocol):
    """What the publisher needs of the state: every channel, and what a broker was given."""

    def load_all(self) -> list[ChannelState]:
        """Every stored state."""
        ...

    def retained(self, broker: str) -> dict[str, Retained]:
        """What ``broker`` was last given, by topic."""
        ...

    def ignored_versions(self) -> IgnoredVersions:
        """The versions ``fwwatch ignore`` skips."""
        ...

    def record_retained(self, broker: str, messages: Sequence[Retained], now: datetime) -> None:
        """Record what ``broker`` acknowledged."""
        ...


class HomeAssistantPublisher:
    """Publishes each device channel as a Home Assistant update entity (a run's last step)."""

    def __init__(
        self,
        store: RetainedStore,
        broker: MqttBroker,
        *,
        prefix: str,
        connect: Connect = aiomqtt_connection,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.broker = broker
        self.prefix = prefix
        self.connect = connect
        self.clock = clock

    async def publish(self, project: Set[str] | None) -> PublishOutcome:
        """Publish what differs from what the broker was last given; never raises."""
        outcome = PublishOutcome()
        changes = retained_changes(
            self.store.load_all(),
            prefix=self.prefix,
            published=self.store.retained(self.broker.address),
            project=project,
            ignored=self.store.ignored_versions(),
            republish_before=self.clock() - REPUBLISH_AFTER,
        )
        if not changes:
            return outcome
        try:
            async with self.connect(self.broker) as connection:
                for start in range(0, len(changes), CHUNK):
                    await self._publish_chunk(connection, changes[start : start + CHUNK], outcome)
        except MqttPublishError as exc:
            outcome.error = str(exc)
        except Exception as exc:  # a bug here must not cost the run its report
            outcome.error = f"{type(exc).__name__}: {exc}"
            logger.exception("Home Assistant: unexpected error while publishing")
        outcome.pending = len(changes) - outcome.published
        if outcome.error is not None:
            logger.warning(
                "Home Assistant: %d of %d MQTT messages not published (kept for the next "
                "cycle): %s",
                outcome.pending,
                len(changes),
                outcome.error,
            )
        return outcome

    async def _publish_chunk(
        self, connection: MqttConnection, chunk: Sequence[Retained], outcome: PublishOutcome
    ) -> None:
        """Publish a chunk side by side; record what was acknowledged, then raise the first
        failure."""
        results = await asyncio.gather(
            *(connection.publish_retained(message.topic, message.payload) for message in chunk),
            return_exceptions=True,
        )
        taken = [message for message, result in zip(chunk, results, strict=True) if result is None]
        if taken:
            self.store.record_retained(self.broker.address, taken, self.clock())
            outcome.published += len(taken)
            outcome.cleared += sum(message.clears for message in taken)
        for result in results:
            if isinstance(result, BaseException):
                raise result
