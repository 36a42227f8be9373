"""From two states to news: the events fwwatch tells people about, and their grouping.

:func:`diff` compares the stored and the new state of one device channel (the same
function serves the local runner and the DynamoDB stream), and :func:`group_events` folds
a batch of events into one message per (event type, product, channel, version), so 500
devices getting 2.0.0 make one notification, not 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from .state import DEVICE_LEVEL_CHANNEL, ChannelState, order_key
from .tuya.models import update_on_offer

__all__ = [
    "NEWS_DEDUPE_WINDOW",
    "EventGroup",
    "EventType",
    "FirmwareEvent",
    "diff",
    "group_events",
    "release_of",
]

#: How long both modes remember news told (its :attr:`FirmwareEvent.dedupe_key`): the local
#: outbox forgets older keys, the differ's ledger expires them. Keys are per change, so the
#: window only has to outlast replays of one change: a stream keeps records 24 hours, SQS
#: messages 14 days.
NEWS_DEDUPE_WINDOW = timedelta(days=35)


class EventType(StrEnum):
    """The kinds of news."""

    UPDATE_AVAILABLE = "update_available"
    UPDATE_INSTALLED = "update_installed"
    UPDATE_FAILED = "update_failed"


class FirmwareEvent(BaseModel):
    """One piece of news about one channel of one device."""

    model_config = ConfigDict(frozen=True)

    type: EventType
    device_id: str
    device_name: str | None = None
    channel: int
    channel_name: str = ""
    product_id: str | None = None
    product_name: str | None = None
    previous_version: str | None = None
    current_version: str | None = None
    target_version: str | None = None
    upgrade_status: int = 0
    occurred_at: datetime

    @property
    def version(self) -> str:
        """The version the news is about: the one installed, or the one on offer."""
        if self.type is EventType.UPDATE_INSTALLED:
            return self.current_version or "?"
        return self.target_version or "?"

    @property
    def dedupe_key(self) -> str:
        """One change of one device channel: ``device#channel#type#from>to@observed``.

        A replay of the same change (a stream batch delivered again, a batch stored again)
        has the same key and is not told twice; the same versions again later (a re-offer
        after a rollback) are a new change, and news again.
        """
        change = f"{self.previous_version or ''}>{self.version}@{order_key(self.occurred_at)}"
        return f"{self.device_id}#{self.channel}#{self.type.value}#{change}"

    def as_dict(self) -> dict[str, Any]:
        """The event as the run report and the JSON bodies show it."""
        return {
            "type": self.type.value,
            "device_id": self.device_id,
            "device_name": self.device_name,
            "channel": self.channel,
            "channel_name": self.channel_name,
            "product_id": self.product_id,
            "product_name": self.product_name,
            "previous_version": self.previous_version,
            "current_version": self.current_version,
            "target_version": self.target_version,
        }


def diff(
    old: ChannelState | None, new: ChannelState, *, notify_first_seen: bool = False
) -> list[FirmwareEvent]:
    """The news between two states of one device channel (none for a first sighting).

    - ``update_available``: a version is on offer that was not on offer before.
    - ``update_installed``: the installed version changed.
    - ``update_failed``: the update status became failed or timed out.

    A first sighting is a silent baseline, unless ``notify_first_seen`` is set, when an
    update already on offer is announced.
    """
    if new.channel == DEVICE_LEVEL_CHANNEL:
        return []
    on_offer = update_on_offer(new.current_version, new.target_version, new.upgrade_status)
    if old is None:
        if notify_first_seen and on_offer:
            return [_event(EventType.UPDATE_AVAILABLE, new, previous=new.current_version)]
        return []
    events: list[FirmwareEvent] = []
    if old.current_version and new.current_version and old.current_version != new.current_version:
        events.append(_event(EventType.UPDATE_INSTALLED, new, previous=old.current_version))
    if on_offer and new.offered_version != old.offered_version:
        events.append(_event(EventType.UPDATE_AVAILABLE, new, previous=new.current_version))
    if new.update_failed and not old.update_failed:
        events.append(_event(EventType.UPDATE_FAILED, new, previous=new.current_version))
    return events


def _event(kind: EventType, state: ChannelState, *, previous: str | None) -> FirmwareEvent:
    return FirmwareEvent(
        type=kind,
        device_id=state.device_id,
        device_name=state.device_name,
        channel=state.channel,
        channel_name=state.channel_name,
        product_id=state.product_id,
        product_name=state.product_name,
        previous_version=previous,
        current_version=state.current_version,
        target_version=state.target_version,
        upgrade_status=state.upgrade_status,
        occurred_at=state.last_changed,
    )


class EventGroup(BaseModel):
    """Events of one type for one product, channel and version: one notification."""

    model_config = ConfigDict(frozen=True)

    type: EventType
    product_id: str | None
    product_name: str | None
    channel: int
    channel_name: str
    version: str
    events: tuple[FirmwareEvent, ...]

    @property
    def device_count(self) -> int:
        """How many devices the news concerns."""
        return len(self.events)

    @property
    def previous_versions(self) -> list[str]:
        """The versions the devices came from, most common first."""
        counts: dict[str, int] = {}
        for event in self.events:
            if event.previous_version:
                counts[event.previous_version] = counts.get(event.previous_version, 0) + 1
        return sorted(counts, key=lambda version: (-counts[version], version))

    @property
    def occurred_at(self) -> datetime:
        """When the news was first seen."""
        return min(event.occurred_at for event in self.events)

    def split(self, max_devices: int) -> list[EventGroup]:
        """The same group cut into parts of at most ``max_devices`` devices."""
        if self.device_count <= max_devices:
            return [self]
        return [
            self.model_copy(update={"events": self.events[start : start + max_devices]})
            for start in range(0, self.device_count, max_devices)
        ]


ReleaseKey = tuple[str, str, int, str]


def release_of(event: FirmwareEvent) -> ReleaseKey:
    """The release an event belongs to: (type, product, channel, version), one message."""
    return (event.type.value, event.product_id or "", event.channel, event.version)


def group_events(events: Iterable[FirmwareEvent]) -> list[EventGroup]:
    """Fold events into groups per release, each device channel once (its latest news),
    devices sorted."""
    buckets: dict[ReleaseKey, list[FirmwareEvent]] = {}
    for event in events:
        buckets.setdefault(release_of(event), []).append(event)
    groups = []
    for (_, _, channel, version), members in sorted(buckets.items()):
        latest: dict[tuple[str, int], FirmwareEvent] = {}
        for event in sorted(members, key=lambda event: event.occurred_at):
            latest[(event.device_id, event.channel)] = event
        ordered = tuple(sorted(latest.values(), key=lambda event: event.device_id))
        first = ordered[0]
        groups.append(
            EventGroup(
                type=first.type,
                product_id=first.product_id,
                product_name=first.product_name,
                channel=channel,
                channel_name=first.channel_name,
                version=version,
                events=ordered,
            )
        )
    return groups
