"""What fwwatch remembers about each device channel, and how a check result becomes state.

One :class:`ChannelState` per device and firmware channel. A new check result is turned
into candidate states; only those that differ from the stored ones (:func:`changed`) are
written, so an unchanged fleet costs no write at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from .tuya import DeviceFirmware, DeviceSummary, TuyaError
from .tuya.models import UpgradeStatusFacts, offered_version

__all__ = [
    "DEVICE_LEVEL_CHANNEL",
    "ChannelKey",
    "ChannelState",
    "DeviceInfo",
    "StateChange",
    "StoredError",
    "changed",
    "channels_digest",
    "next_states",
    "order_key",
    "utcnow",
]

#: The channel number of the device item: device-level facts (last error, digest of channels).
DEVICE_LEVEL_CHANNEL = -1

ChannelKey = tuple[str, int]


def utcnow() -> datetime:
    """Now, in UTC, to the microsecond: observations of one device are ordered by it."""
    return datetime.now(UTC)


def order_key(moment: datetime) -> int:
    """A moment as whole microseconds since the epoch: what stores compare to keep order."""
    return round(moment.timestamp() * 1_000_000)


class StoredError(BaseModel):
    """The last error seen for a device: Tuya's code, message and trace id."""

    model_config = ConfigDict(frozen=True)

    code: int | None = None
    msg: str
    tid: str | None = None
    permanent: bool = False

    @classmethod
    def from_error(cls, error: TuyaError) -> StoredError:
        """Keep the facts of an error (``permanent`` for device errors that won't clear)."""
        return cls(
            code=error.code,
            msg=error.msg,
            tid=error.tid,
            permanent=bool(getattr(error, "permanent", False)),
        )


class DeviceInfo(BaseModel):
    """Names of a device and its product, when the device listing gave them."""

    model_config = ConfigDict(frozen=True)

    device_name: str | None = None
    product_id: str | None = None
    product_name: str | None = None

    @classmethod
    def from_summary(cls, summary: DeviceSummary) -> DeviceInfo:
        """Take the names from a listed device."""
        return cls(
            device_name=summary.name,
            product_id=summary.product_id,
            product_name=summary.product_name,
        )


class ChannelState(UpgradeStatusFacts, BaseModel):
    """The remembered firmware state of one channel of one device."""

    model_config = ConfigDict(frozen=True)

    device_id: str
    channel: int
    channel_name: str = ""
    device_name: str | None = None
    product_id: str | None = None
    product_name: str | None = None
    current_version: str | None = None
    target_version: str | None = None
    upgrade_status: int = 0
    update_available: bool = False
    first_seen: datetime
    #: When the observation this state comes from was made: a store never replaces a state
    #: with one observed earlier (see :func:`order_key`).
    last_changed: datetime
    last_error: StoredError | None = None
    digest: str | None = None  # device item only: fingerprint of the channels
    run_id: str | None = None

    @property
    def key(self) -> ChannelKey:
        """``(device_id, channel)``: the identity of the item."""
        return (self.device_id, self.channel)

    @property
    def offered_version(self) -> str | None:
        """The version on offer: a target other than the installed version, else ``None``."""
        return offered_version(self.current_version, self.target_version)

    def facts(self) -> tuple[Any, ...]:
        """What a change is measured on: everything but the timestamps and trace ids."""
        error = (self.last_error.code, self.last_error.msg) if self.last_error else None
        return (
            self.channel_name,
            self.device_name,
            self.product_id,
            self.product_name,
            self.current_version,
            self.target_version,
            self.upgrade_status,
            self.update_available,
            error,
            self.digest,
        )

    def to_item(self) -> dict[str, Any]:
        """JSON-ready flat form (the shape stored in DynamoDB and SQLite)."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ChannelState:
        """Read the flat form back."""
        return cls.model_validate(item)


#: A state to write, with the one it replaces (``None`` for a first sighting): what a
#: table's stream delivers, and what news is made from in both modes.
StateChange = tuple[ChannelState | None, ChannelState]


def next_states(
    device_id: str,
    *,
    firmware: DeviceFirmware | None,
    error: TuyaError | None,
    stored: Iterable[ChannelState],
    info: DeviceInfo | None = None,
    now: datetime | None = None,
) -> list[ChannelState]:
    """The states a check result leads to, for one device, changed or not.

    A successful check gives one state per reported channel (keeping ``first_seen`` and,
    when nothing changed, ``last_changed``) and the device item. The device item
    (channel :data:`DEVICE_LEVEL_CHANNEL`) holds the device's last error and a digest of its
    channels, so a store can tell an unchanged device from its device item alone. A failed
    check only updates the device item: the channels keep what was last seen.
    """
    now = now or utcnow()
    known = {state.channel: state for state in stored if state.device_id == device_id}
    old_device = known.get(DEVICE_LEVEL_CHANNEL)
    fresh_device = ChannelState(
        device_id=device_id,
        channel=DEVICE_LEVEL_CHANNEL,
        channel_name="device",
        first_seen=now,
        last_changed=now,
        **(info.model_dump() if info else {}),
    )
    if firmware is None:
        assert error is not None, "a check result has firmware or an error"
        base = old_device or fresh_device
        failed = base.model_copy(update={"last_error": StoredError.from_error(error)})
        return [_merge(old_device, failed, now)]
    channels = [
        _merge(known.get(channel.channel), _fresh(device_id, channel, info, now), now)
        for channel in firmware.channels
    ]
    names = {
        field: getattr(channels[0], field)
        for field in ("device_name", "product_id", "product_name")
        if channels
    }
    device = fresh_device.model_copy(update={**names, "digest": channels_digest(channels)})
    return [*channels, _merge(old_device, device, now)]


def channels_digest(channels: Iterable[ChannelState]) -> str:
    """A short fingerprint of what was seen on a device's channels (not timestamps)."""
    facts = sorted((state.channel, state.facts()) for state in channels)
    encoded = json.dumps(facts, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:20]


def _fresh(device_id: str, channel: Any, info: DeviceInfo | None, now: datetime) -> ChannelState:
    return ChannelState(
        device_id=device_id,
        channel=channel.channel,
        channel_name=channel.channel_name,
        current_version=channel.current_version,
        target_version=channel.target_version,
        upgrade_status=channel.upgrade_status,
        update_available=channel.update_available,
        first_seen=now,
        last_changed=now,
        **(info.model_dump() if info else {}),
    )


def _merge(old: ChannelState | None, new: ChannelState, now: datetime) -> ChannelState:
    """Carry over what the check cannot know: first sighting, names, unchanged timestamps."""
    if old is None:
        return new
    names = {
        field: getattr(old, field)
        for field in ("device_name", "product_id", "product_name")
        if getattr(new, field) is None
    }
    merged = new.model_copy(update={"first_seen": old.first_seen, **names})
    if merged.facts() == old.facts():
        return merged.model_copy(
            update={"last_changed": old.last_changed, "last_error": old.last_error}
        )
    return merged.model_copy(update={"last_changed": now})


def changed(old: ChannelState | None, new: ChannelState) -> bool:
    """Whether ``new`` must be written (something other than timestamps differs)."""
    return old is None or old.facts() != new.facts()
