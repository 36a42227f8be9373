"""One cycle, two drivers: the steps that ``fwwatch run`` and the checker Lambda share.

- :func:`discover`: the project's devices from Tuya's listing; an invalid ID is skipped with
  a warning (:func:`listed_device_id`, the rule the scheduler's listing follows too), so one
  odd entry never stops a fleet's run.
- :func:`check_batch`: check devices against the stored state and settle each one under one
  :class:`DeviceRetryPolicy`: checked, device-level answer (recorded), retry (a transient
  failure with attempts left) or gave up (recorded as the device's error).

The drivers differ only in how they keep a settled batch and how they retry:

- ``local/runner.py`` stores the changed states and their news in one SQLite transaction, and
  checks the devices to retry again in-process after :meth:`DeviceRetryPolicy.delay_before`;
- ``aws/checker.py`` writes the changed states to DynamoDB (the differ turns the table's
  stream into the run's news, and the digest tells it)
  and sends the devices to retry back to the queue with the same delay.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from .check import CheckResult, FirmwareSource, Progress, changes_of, check_devices
from .events import FirmwareEvent
from .news import news_from_changes
from .state import (
    DEVICE_LEVEL_CHANNEL,
    ChannelKey,
    ChannelState,
    DeviceInfo,
    StateChange,
    changed,
    next_states,
    utcnow,
)
from .tuya import DeviceSummary, InvalidDeviceIdError, TuyaDeviceError, validate_device_id

__all__ = [
    "DeviceLister",
    "DeviceRetryPolicy",
    "SettledBatch",
    "Settlement",
    "StateReader",
    "check_batch",
    "discover",
    "listed_device_id",
]

logger = logging.getLogger("fwwatch.cycle")


class Settlement(StrEnum):
    """What becomes of a device after one check."""

    CHECKED = "checked"
    DEVICE_ERROR = "device_error"  # offline, not in the project...: a fact, recorded
    RETRY = "retry"  # a transient failure with attempts left: checked again later
    GAVE_UP = "gave_up"  # a transient failure on the last attempt: recorded as not checked


@dataclass(frozen=True, slots=True)
class DeviceRetryPolicy:
    """How many checks a device that fails transiently gets, and how long between them.

    A check already retries each call within the client's budget (seconds); this policy is
    the slower loop around it (minutes), for trouble that outlasts one call's budget.
    """

    max_attempts: int = 3
    delay_s: float = 30.0
    #: SQS holds a message back at most 15 minutes: the same cap for both drivers.
    max_delay_s: float = 900.0

    def settle(self, result: CheckResult, attempt: int) -> Settlement:
        """The settlement of a device's result on check number ``attempt`` (from 1)."""
        if result.error is None:
            return Settlement.CHECKED
        if isinstance(result.error, TuyaDeviceError):
            return Settlement.DEVICE_ERROR
        return Settlement.RETRY if attempt < self.max_attempts else Settlement.GAVE_UP

    def delay_before(self, attempt: int, *, retry_after_s: float | None = None) -> float:
        """Seconds to wait before check number ``attempt`` (2, 3, ...): doubling from
        ``delay_s``, at least what the cloud asked for, at most ``max_delay_s``."""
        delay = self.delay_s * 2.0 ** max(0, attempt - 2)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return min(self.max_delay_s, delay)


class StateReader(Protocol):
    """A state store read by exact keys: DynamoDB and SQLite both implement it."""

    def get_items(self, keys: Iterable[ChannelKey]) -> dict[ChannelKey, ChannelState]:
        """The stored states of these keys (missing keys are absent)."""
        ...


class DeviceLister(Protocol):
    """Anything that lists a project's devices: the Tuya client, or a fake in tests."""

    def list_devices(self) -> AsyncIterator[DeviceSummary]:
        """Every device of the project, page by page."""
        ...


@dataclass
class SettledBatch:
    """One batch checked and settled: what to keep, what to retry, what changed."""

    attempt: int
    now: datetime
    results: list[tuple[CheckResult, Settlement]] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)

    def having(self, *settlements: Settlement) -> list[CheckResult]:
        """The results settled one of these ways, in the order checked."""
        return [result for result, settled in self.results if settled in settlements]

    @property
    def settled(self) -> list[CheckResult]:
        """Every result that is final for this run (all but the retries)."""
        return [result for result, settled in self.results if settled is not Settlement.RETRY]

    @property
    def retry_ids(self) -> list[str]:
        """The devices to check again."""
        return [result.device_id for result in self.having(Settlement.RETRY)]

    @property
    def retry_after_s(self) -> float | None:
        """The longest wait the cloud asked for among the devices to retry, if any."""
        waits = [
            wait
            for result in self.having(Settlement.RETRY)
            if (wait := getattr(result.error, "retry_after_s", None)) is not None
        ]
        return max(waits, default=None)

    @property
    def states(self) -> list[ChannelState]:
        """The states to write: only those that changed."""
        return [new for _, new in self.changes]

    def news(self, *, notify_first_seen: bool = False) -> list[FirmwareEvent]:
        """The news the changes make (the differ makes the same from the table's stream)."""
        return news_from_changes(self.changes, notify_first_seen=notify_first_seen)


async def check_batch(
    source: FirmwareSource,
    device_ids: Sequence[str],
    store: StateReader,
    *,
    attempt: int = 1,
    policy: DeviceRetryPolicy | None = None,
    infos: Mapping[str, DeviceInfo] | None = None,
    concurrency: int = 16,
    on_result: Progress | None = None,
    now: datetime | None = None,
) -> SettledBatch:
    """Check a batch of devices, settle each, and compare the settled ones with the store.

    Raises :class:`~fwwatch.tuya.TuyaFatalError` as soon as one call hits a fatal error:
    nothing of the batch is settled then.
    """
    policy = policy or DeviceRetryPolicy()
    results = await check_devices(source, device_ids, concurrency=concurrency, on_result=on_result)
    batch = SettledBatch(attempt=attempt, now=now or utcnow())
    batch.results = [(result, policy.settle(result, attempt)) for result in results]
    batch.changes = compare_with_store(batch.settled, store, infos=infos, now=now)
    return batch


def compare_with_store(
    results: Sequence[CheckResult],
    store: StateReader,
    *,
    infos: Mapping[str, DeviceInfo] | None = None,
    now: datetime | None = None,
) -> list[StateChange]:
    """What the results change in the store, reading as little as possible.

    First the device items of all devices (one batched read): a device whose device item
    would not change (same channel digest, same error) is unchanged and costs nothing more.
    Only the others have their channel items read.
    """
    infos = infos or {}
    stored = store.get_items((result.device_id, DEVICE_LEVEL_CHANNEL) for result in results)
    candidates: list[CheckResult] = []
    channel_keys: list[ChannelKey] = []
    for result in results:
        old_item = stored.get((result.device_id, DEVICE_LEVEL_CHANNEL))
        observed = now or result.observed_at
        if old_item is not None:
            if old_item.last_changed > observed:
                continue  # a slower, overlapping check: the store knows better already
            fresh = next_states(
                result.device_id,
                firmware=result.firmware,
                error=result.error,
                stored=[old_item],
                info=infos.get(result.device_id),
                now=observed,
            )
            if not changed(old_item, fresh[-1]):
                continue
        candidates.append(result)
        if result.firmware is not None:
            channel_keys += [(result.device_id, c.channel) for c in result.firmware.channels]
    if channel_keys:
        stored.update(store.get_items(channel_keys))
    return changes_of(candidates, stored, infos=infos, now=now)


def listed_device_id(device: DeviceSummary) -> str | None:
    """A listed device's ID, or ``None`` (with a warning that names it) for an entry of the
    listing that is no device ID."""
    try:
        return validate_device_id(device.device_id)
    except InvalidDeviceIdError as exc:
        logger.warning("skipped a listed device: %s", exc)
        return None


async def discover(lister: DeviceLister) -> AsyncIterator[tuple[str, DeviceInfo]]:
    """The project's devices with their names, each once; invalid IDs skipped with a warning."""
    seen: set[str] = set()
    async for device in lister.list_devices():
        device_id = listed_device_id(device)
        if device_id is None or device_id in seen:
            continue
        seen.add(device_id)
        yield device_id, DeviceInfo.from_summary(device)
