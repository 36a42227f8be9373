"""The serverless pipeline's steps, as plain functions over small interfaces.

scheduler: :func:`plan_messages` fans device IDs out into check messages.
checker:   :func:`check_message` checks one message's devices and writes only what changed.
differ:    :func:`news_from_changes` and :func:`publish_news` turn state changes into
           grouped, deduplicated notifications.

Nothing here knows Lambda or boto3: the AWS adapters implement the interfaces, and tests
pass fakes or the adapters over moto.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from .check import CheckResult, Comparison, FirmwareSource, check_devices, compare_results
from .events import EventGroup, FirmwareEvent, diff, group_events
from .state import DEVICE_LEVEL_CHANNEL, ChannelKey, ChannelState, DeviceInfo, changed, next_states
from .tuya import TuyaDeviceError, TuyaError, validate_device_id

__all__ = [
    "CheckMessage",
    "KeyedStateStore",
    "MessageOutcome",
    "NewsLedger",
    "PublishOutcome",
    "Publisher",
    "check_message",
    "compare_with_store",
    "news_from_changes",
    "plan_messages",
    "publish_news",
]


class CheckMessage(BaseModel):
    """One SQS message: a slice of a run's devices, and how many times it was tried."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str = Field(min_length=1, max_length=64)
    device_ids: tuple[str, ...] = Field(min_length=1, max_length=500)
    attempt: int = Field(default=1, ge=1)
    infos: dict[str, DeviceInfo] = Field(default_factory=dict)

    def model_post_init(self, __context: object) -> None:
        for device_id in self.device_ids:
            validate_device_id(device_id)


def plan_messages(
    run_id: str,
    device_ids: Sequence[str],
    *,
    per_message: int,
    infos: Mapping[str, DeviceInfo] | None = None,
) -> list[CheckMessage]:
    """Cut a run's devices into messages of ``per_message`` device IDs each."""
    infos = infos or {}
    return [
        CheckMessage(
            run_id=run_id,
            device_ids=tuple(chunk),
            infos={device_id: infos[device_id] for device_id in chunk if device_id in infos},
        )
        for chunk in (
            device_ids[start : start + per_message]
            for start in range(0, len(device_ids), per_message)
        )
    ]


class KeyedStateStore(Protocol):
    """A state store read by exact keys (DynamoDB's shape)."""

    def get_items(self, keys: Iterable[ChannelKey]) -> dict[ChannelKey, ChannelState]:
        """The stored states of these keys (missing keys are absent)."""
        ...

    def put_items(self, states: Sequence[ChannelState]) -> None:
        """Write these states."""
        ...


def compare_with_store(
    results: Sequence[CheckResult],
    store: KeyedStateStore,
    *,
    infos: Mapping[str, DeviceInfo] | None = None,
    now: datetime | None = None,
) -> Comparison:
    """Compare check results with a keyed store, reading as little as possible.

    First the device items of all devices (one batched read); a device whose device item
    would not change (same channel digest, same error) is unchanged and costs nothing more.
    Only the others have their channel items read.
    """
    infos = infos or {}
    device_keys = [(result.device_id, DEVICE_LEVEL_CHANNEL) for result in results]
    stored = store.get_items(device_keys)
    candidates: list[CheckResult] = []
    channel_keys: list[ChannelKey] = []
    for result in results:
        old_item = stored.get((result.device_id, DEVICE_LEVEL_CHANNEL))
        fresh = next_states(
            result.device_id,
            firmware=result.firmware,
            error=result.error,
            stored=[old_item] if old_item else [],
            info=infos.get(result.device_id),
            now=now,
        )
        if old_item is not None and not changed(old_item, fresh[-1]):
            continue
        candidates.append(result)
        if result.firmware is not None:
            channel_keys += [(result.device_id, c.channel) for c in result.firmware.channels]
    if channel_keys:
        stored.update(store.get_items(channel_keys))
    return compare_results(candidates, stored, infos=infos, now=now)


@dataclass
class MessageOutcome:
    """What checking one message did."""

    checked: int = 0
    updates_available: int = 0
    written: int = 0
    retry: list[str] = field(default_factory=list)
    gave_up: dict[str, TuyaError] = field(default_factory=dict)
    device_errors: dict[str, TuyaError] = field(default_factory=dict)


def _transient(error: TuyaError) -> bool:
    # Device-level answers (offline, not found, no permission) are facts about the device:
    # recorded, and asked again next run. Anything else may clear on a retry.
    return not isinstance(error, TuyaDeviceError)


async def check_message(
    message: CheckMessage,
    source: FirmwareSource,
    store: KeyedStateStore,
    *,
    max_attempts: int = 3,
    concurrency: int = 16,
    now: datetime | None = None,
) -> MessageOutcome:
    """Check a message's devices, write what changed, and say which devices to retry.

    Devices that failed transiently are returned in ``retry`` (for a new message with only
    them), or in ``gave_up`` on the last attempt, when their error is also recorded.
    """
    results = await check_devices(source, message.device_ids, concurrency=concurrency)
    outcome = MessageOutcome()
    settled: list[CheckResult] = []
    for result in results:
        if result.error is None:
            outcome.checked += 1
            settled.append(result)
            if result.firmware is not None and result.firmware.update_available:
                outcome.updates_available += 1
        elif not _transient(result.error):
            outcome.device_errors[result.device_id] = result.error
            settled.append(result)
        elif message.attempt < max_attempts:
            outcome.retry.append(result.device_id)
        else:
            outcome.gave_up[result.device_id] = result.error
            settled.append(result)
    comparison = compare_with_store(settled, store, infos=message.infos, now=now)
    if comparison.changed_states:
        store.put_items(comparison.changed_states)
    outcome.written = len(comparison.changed_states)
    return outcome


# ---------------------------------------------------------------------- differ


def news_from_changes(
    changes: Iterable[tuple[ChannelState | None, ChannelState]], *, notify_first_seen: bool
) -> list[FirmwareEvent]:
    """The events of a batch of (old, new) state pairs, as a table's stream delivers them."""
    events: list[FirmwareEvent] = []
    for old, new in changes:
        events.extend(diff(old, new, notify_first_seen=notify_first_seen))
    return events


class NewsLedger(Protocol):
    """Remembers which news was published, so that none is published twice."""

    def published(self, keys: Sequence[str]) -> set[str]:
        """Which of these dedupe keys were already published."""
        ...

    def record(self, keys: Sequence[str]) -> None:
        """Remember these dedupe keys as published."""
        ...


class Publisher(Protocol):
    """Publishes one group of news (one message)."""

    def publish(self, group: EventGroup) -> None:
        """Publish, or raise."""
        ...


@dataclass
class PublishOutcome:
    """What :func:`publish_news` did."""

    published: list[EventGroup] = field(default_factory=list)
    duplicates: int = 0
    failed: list[FirmwareEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def publish_news(
    events: Sequence[FirmwareEvent], ledger: NewsLedger, publisher: Publisher
) -> PublishOutcome:
    """Group the events, drop news already published, publish the rest, remember it.

    A group that fails to publish is not recorded: its events come back in ``failed`` so the
    caller can have the batch retried; news published before the failure is recorded and
    will not be sent again.
    """
    outcome = PublishOutcome()
    unique = {event.dedupe_key: event for event in events}
    seen = ledger.published(list(unique))
    outcome.duplicates = len(events) - len(unique) + len(seen)
    fresh = [event for key, event in unique.items() if key not in seen]
    for group in group_events(fresh):
        try:
            publisher.publish(group)
        except Exception as exc:  # any publish failure: keep the news for the retry
            outcome.failed.extend(group.events)
            outcome.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        ledger.record([event.dedupe_key for event in group.events])
        outcome.published.append(group)
    return outcome
