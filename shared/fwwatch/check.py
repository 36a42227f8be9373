"""Check many devices concurrently, and compare what was found with what is stored.

A device-level failure is kept with its device and never stops the others; a fatal error
(bad credentials, wrong data centre, lapsed account) stops the whole check at once, since
every other device would fail the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .state import ChannelKey, ChannelState, DeviceInfo, StateChange, changed, next_states, utcnow
from .tuya import DeviceFirmware, TuyaDeviceError, TuyaError, TuyaFatalError

__all__ = ["CheckResult", "FirmwareSource", "Progress", "changes_of", "check_devices"]


class FirmwareSource(Protocol):
    """Anything that can fetch a device's firmware: the Tuya client, or a fake in tests."""

    async def get_firmware(self, device_id: str) -> DeviceFirmware: ...


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome for one device: its firmware, or the error that stopped it."""

    device_id: str
    firmware: DeviceFirmware | None = None
    error: TuyaError | None = None
    #: When the answer arrived: the time of the observation, and of the state it leads to.
    observed_at: datetime = field(default_factory=utcnow)

    @property
    def ok(self) -> bool:
        """The device was checked."""
        return self.error is None

    @property
    def answered(self) -> bool:
        """The cloud answered for this device: its firmware, or a device-level error."""
        return self.error is None or isinstance(self.error, TuyaDeviceError)

    @property
    def outcome(self) -> str:
        """``checked``, ``device_error`` (offline, not found...) or ``not_checked`` (transient)."""
        if self.error is None:
            return "checked"
        return "device_error" if self.answered else "not_checked"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"device_id", "outcome", "channels": [...], "error": null | {...}}``."""
        channels = self.firmware.channels if self.firmware else ()
        return {
            "device_id": self.device_id,
            "outcome": self.outcome,
            "channels": [channel.model_dump(mode="json") for channel in channels],
            "error": self.error.as_dict() if self.error else None,
        }


Progress = Callable[[CheckResult], None]


async def check_devices(
    source: FirmwareSource,
    device_ids: Sequence[str],
    *,
    concurrency: int = 16,
    on_result: Progress | None = None,
) -> list[CheckResult]:
    """Check every device, at most ``concurrency`` at a time; results in the order given.

    Raises :class:`~fwwatch.tuya.TuyaFatalError` as soon as one call hits a fatal error.
    """
    results: list[CheckResult | None] = [None] * len(device_ids)
    next_index = 0

    async def check_one(index: int) -> None:
        device_id = device_ids[index]
        try:
            result = CheckResult(device_id, firmware=await source.get_firmware(device_id))
        except TuyaFatalError:
            raise
        except TuyaError as exc:
            result = CheckResult(device_id, error=exc)
        results[index] = result
        if on_result is not None:
            on_result(result)

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(device_ids):
            index = next_index
            next_index += 1
            await check_one(index)

    # A fixed pool of workers rather than one task per device: 100,000 devices cost
    # ``concurrency`` tasks, and a fatal error cancels the pool through the task group.
    workers = min(max(1, concurrency), len(device_ids))
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
    except* TuyaFatalError as fatal:
        raise fatal.exceptions[0] from None
    return [result for result in results if result is not None]


def changes_of(
    results: Sequence[CheckResult],
    stored: Mapping[ChannelKey, ChannelState],
    *,
    infos: Mapping[str, DeviceInfo] | None = None,
    now: datetime | None = None,
) -> list[StateChange]:
    """What check results change: ``(old, new)`` for every state that must be written.

    The pairs are what a table's stream delivers, so news is made from them the same way in
    both modes (:func:`fwwatch.news.news_from_changes`). A result observed before the stored
    state of its device (an overlapping, slower check) changes nothing: it is stale.
    ``now`` stands in for the results' own observation times (tests replaying a history).
    """
    by_device: dict[str, list[ChannelState]] = {}
    for state in stored.values():
        by_device.setdefault(state.device_id, []).append(state)
    changes: list[StateChange] = []
    for result in results:
        observed = now or result.observed_at
        known = by_device.get(result.device_id, ())
        if any(state.last_changed > observed for state in known):
            continue
        candidates = next_states(
            result.device_id,
            firmware=result.firmware,
            error=result.error,
            stored=known,
            info=(infos or {}).get(result.device_id),
            now=observed,
        )
        for new in candidates:
            old = stored.get(new.key)
            if changed(old, new):
                changes.append((old, new))
    return changes
