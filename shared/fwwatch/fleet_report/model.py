"""What the fleet report says: its models, the same in both modes (``--json`` writes them).

The text in it is Tuya's, as stored: names are chosen by whoever owns a device, and every
renderer escapes them for its own medium (:mod:`fwwatch.fleet_report.page` for HTML).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "AdoptionPoint",
    "DeviceRow",
    "DeviceStatus",
    "FleetReport",
    "ProductChannel",
    "Release",
    "Summary",
    "VersionShare",
    "VersionTally",
    "natural_order",
    "version_order",
]

OFFLINE_CODE = 2001


class DeviceStatus(StrEnum):
    """A device channel's status in the report, in the order that needs attention first."""

    FAILED = "failed"  # the last update failed or timed out
    OFFLINE = "offline"  # the cloud answered that the device is offline
    NOT_CHECKED = "not checked"  # the last check got no answer (busy, unreachable), or none yet
    DEVICE_ERROR = "device error"  # another answer for the device: not in the project...
    UPDATING = "updating"  # an update is under way
    ON_OFFER = "update on offer"
    UP_TO_DATE = "up to date"

    @property
    def rank(self) -> int:
        """Its place in the attention order (0 first)."""
        return _RANKS[self]


_RANKS = {status: rank for rank, status in enumerate(DeviceStatus)}


@dataclass(frozen=True, slots=True)
class VersionTally:
    """At the end of one run: device channels of a product and channel on a version
    (``installed``) and offered it (``offered``)."""

    run_id: str
    at: datetime
    product_id: str
    channel: int
    version: str
    installed: int
    offered: int


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class DeviceRow(_Model):
    """One device channel as the device table shows it (``channel`` is ``None`` for a device
    no check has given a channel of yet)."""

    device_id: str
    device_name: str | None = None
    product_id: str | None = None
    product_name: str | None = None
    channel: int | None = None
    channel_name: str = ""
    installed: str | None = None
    offered: str | None = None
    #: The offered version is one `fwwatch ignore` skips.
    ignored: bool = False
    status: DeviceStatus
    #: The device's last error, as ``[code] message``.
    error: str | None = None
    #: When the device was last checked (local mode), or last seen changing (AWS).
    last_checked: datetime | None = None


class VersionShare(_Model):
    """Of one product and channel: device channels on a version, and offered it."""

    version: str | None
    installed: int
    offered: int


class ProductChannel(_Model):
    """One product's firmware channel across the fleet: who is on which version."""

    product_id: str | None
    product_name: str | None
    channel: int
    channel_name: str
    device_channels: int
    #: Newest version first; a version on offer that no device has yet is listed too.
    versions: list[VersionShare]

    @property
    def offers(self) -> list[VersionShare]:
        """The versions on offer, newest first."""
        return [share for share in self.versions if share.offered]


class AdoptionPoint(_Model):
    """Device channels on a release (and offered it, when known) from this moment on."""

    at: datetime
    installed: int
    offered: int | None = None


class Release(_Model):
    """A version offered to a product's channel, and how far it has got."""

    product_id: str | None
    product_name: str | None
    channel: int
    channel_name: str
    version: str
    #: When it was first seen on offer or installed.
    first_seen: datetime
    installed: int
    offered: int
    #: Device channels of the product and channel now: what adoption is measured against.
    device_channels: int
    #: Only the moments its figures changed, oldest first; each holds until the next.
    points: list[AdoptionPoint]
    #: The points come from the states' timestamps, not from a history of runs (AWS).
    estimated: bool = False


class Summary(_Model):
    """The fleet in figures: devices, and updates (one per device channel)."""

    devices: int
    products: int
    #: Devices whose every channel is up to date.
    up_to_date: int
    on_offer: int
    updating: int
    failed: int
    offline: int
    not_checked: int
    device_errors: int
    #: The latest check (local) or latest change recorded (AWS).
    last_check: datetime | None
    #: Device channels per status, in attention order.
    statuses: dict[DeviceStatus, int]

    @property
    def up_to_date_share(self) -> float:
        """Devices up to date, as a fraction of all devices (1.0 for no device)."""
        return self.up_to_date / self.devices if self.devices else 1.0


class FleetReport(_Model):
    """The whole report: ``fwwatch report --json`` writes it, the page shows it."""

    generated_at: datetime
    mode: Literal["local", "aws"]
    #: Where the state was read: a file, or a table and its region.
    source: str
    #: When each device was last checked is known (local mode).
    checks_known: bool
    #: Adoption comes from a history of runs; else it is estimated from the states.
    history_kept: bool
    #: The first run of that history.
    history_since: datetime | None
    summary: Summary
    products: list[ProductChannel]
    releases: list[Release]
    #: Every device channel, those needing attention first.
    devices: list[DeviceRow]


_VERSION_PART = re.compile(r"(\d{1,18})")


def version_order(version: str | None) -> tuple[tuple[int, int | str], ...]:
    """A sort key that puts ``1.10.0`` after ``1.9.2`` (numbers compared as numbers)."""
    if not version:
        return ()
    # The split puts each run of digits at an odd place: only those are numbers ("²" is a
    # digit to str.isdigit, not to int); a run is cut at 18 digits, as int() of a very long
    # one is refused.
    return tuple(
        (0, int(part)) if odd else (1, part)
        for odd, part in ((n % 2 == 1, part) for n, part in enumerate(_VERSION_PART.split(version)))
        if part
    )


def natural_order(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key for names as people sort them: ``Plug 9`` before ``Plug 10``, any case."""
    return version_order(text.casefold())
